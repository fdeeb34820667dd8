/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Records <-> protobuf (podsnoop.v1, proto/podsnoop/v1/). One explicit
 * function per record type in each direction, field by field, next to each
 * other so that a field added on one side shows on the other:
 *
 *   pbconv_<type>()       view (pointing into the ring buffer) -> message,
 *                         used by the shipper for every record;
 *   pbconv_<type>_view()  message -> view, used by the collector to write
 *                         NDJSON with the agent's own writer (ndjson.c).
 *
 * Nothing is allocated: a message is built in a caller-provided buffer
 * (struct pb_<type>_buf, usually on the stack) and points at the view's
 * bytes, so it is valid only while the view is.
 *
 * Adding a record type: its message in records.proto, a pb_<type>_buf and
 * the two functions here, one sink function in ship.c, one case in
 * collector/collector.c (tests/unit/test_ship_policy.c fails until ship.c
 * has it).
 */
#ifndef PS_PBCONV_H
#define PS_PBCONV_H

#include "podsnoop/v1/batch.pb-c.h"
#include "lib/records.h"

/* The shared Task sub-message (process fields, cgroup, mntns, pod). */
struct pb_task_buf {
	Podsnoop__V1__Task task;
	Podsnoop__V1__Pod pod;
};

/*
 * Fill b->task. comm may be NULL (aggregated records); pod NULL when the
 * record has no pod. Returns &b->task.
 */
Podsnoop__V1__Task *pbconv_task(struct pb_task_buf *b, uint32_t pid, uint32_t tid, uint32_t ppid,
				uint32_t uid, uint32_t gid, const char *comm, size_t comm_size,
				uint64_t cgroup_id, uint64_t mntns_id, const struct pod_ref *pod);
/* The reverse: pod_ref pointing into the message (NULL when absent). */
const struct pod_ref *pbconv_pod_ref(const Podsnoop__V1__Task *t, struct pod_ref *out);

struct pb_exec_buf {
	Podsnoop__V1__Record rec;
	Podsnoop__V1__Exec exec;
	struct pb_task_buf task;
	ProtobufCBinaryData args[EXEC_ARGC_CAP];
};

const Podsnoop__V1__Record *pbconv_exec(struct pb_exec_buf *b, const struct exec_view *v);

/* Storage a view built from a message points into (besides the message). */
struct exec_view_buf {
	struct exec_event e;	/* header fields; buf holds the arguments */
	struct pod_ref pod;
};

/* -EINVAL when the message does not fit what the agent can produce. */
int pbconv_exec_view(const Podsnoop__V1__Exec *m, struct exec_view_buf *b, struct exec_view *v);

/* open */
struct pb_open_buf {
	Podsnoop__V1__Record rec;
	Podsnoop__V1__Open open;
	struct pb_task_buf task;
};
const Podsnoop__V1__Record *pbconv_open(struct pb_open_buf *b, const struct open_view *v);
struct open_view_buf {
	struct open_event e;	/* the header; path points into the message */
	struct pod_ref pod;
};
int pbconv_open_view(const Podsnoop__V1__Open *m, struct open_view_buf *b, struct open_view *v);

/* bio */
struct pb_bio_buf {
	Podsnoop__V1__Record rec;
	Podsnoop__V1__Bio bio;
	struct pb_task_buf task;
};
const Podsnoop__V1__Record *pbconv_bio(struct pb_bio_buf *b, const struct bio_view *v);
struct bio_view_buf {
	struct bio_event e;
	struct pod_ref pod;
};
int pbconv_bio_view(const Podsnoop__V1__Bio *m, struct bio_view_buf *b, struct bio_view *v);

/* bio_hist */
struct pb_bio_hist_buf {
	Podsnoop__V1__Record rec;
	Podsnoop__V1__BioHist hist;
	struct pb_task_buf task;
	Podsnoop__V1__BioHist__Bucket buckets[BIO_HIST_SLOTS];
	Podsnoop__V1__BioHist__Bucket *bucket_ptrs[BIO_HIST_SLOTS];
};
const Podsnoop__V1__Record *pbconv_bio_hist(struct pb_bio_hist_buf *b,
					    const struct bio_hist_view *v);
struct bio_hist_view_buf {
	__u64 slots[BIO_HIST_SLOTS];
	char op[8];
	struct pod_ref pod;
};
int pbconv_bio_hist_view(const Podsnoop__V1__BioHist *m, struct bio_hist_view_buf *b,
			 struct bio_hist_view *v);

/* fs */
struct pb_fs_buf {
	Podsnoop__V1__Record rec;
	Podsnoop__V1__Fs fs;
	struct pb_task_buf task;
};
const Podsnoop__V1__Record *pbconv_fs(struct pb_fs_buf *b, const struct fs_view *v);
struct fs_view_buf {
	struct fs_event e;	/* the header; file and path point into the message */
	struct pod_ref pod;
};
int pbconv_fs_view(const Podsnoop__V1__Fs *m, struct fs_view_buf *b, struct fs_view *v);

/* cache */
struct pb_cache_buf {
	Podsnoop__V1__Record rec;
	Podsnoop__V1__Cache cache;
	struct pb_task_buf task;
};
const Podsnoop__V1__Record *pbconv_cache(struct pb_cache_buf *b, const struct cache_view *v);
struct cache_view_buf {
	struct pod_ref pod;
};
int pbconv_cache_view(const Podsnoop__V1__Cache *m, struct cache_view_buf *b,
		      struct cache_view *v);

#endif
