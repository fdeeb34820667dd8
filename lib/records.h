/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The records, as the agent's tracers decode them and the collector rebuilds
 * them from protobuf: one view per record type, pointing into the bytes it
 * was decoded from (a ring buffer record, a protobuf message), so nothing is
 * copied or allocated. Each output (NDJSON, text, protobuf) has one explicit
 * function per record type, taking these views (struct sink_ops).
 */
#ifndef PS_LIB_RECORDS_H
#define PS_LIB_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/bio.h"
#include "bpf/cache.h"
#include "bpf/exec.h"
#include "bpf/fs.h"
#include "bpf/open.h"

/*
 * The Kubernetes identity of a record's task or I/O, from the metadata cache.
 * Records carry NULL when it is unknown (host tasks, no metadata source).
 */
struct pod_ref {
	const char *namespace_;
	const char *pod;
	const char *pod_uid;
	const char *container;
	const char *container_id;
	const char *runtime;
};

struct exec_view {
	const struct exec_event *e;
	const struct pod_ref *pod;	/* set by out_exec() */
	uint64_t wall_ns;
	const char *filename;
	size_t filename_len;	/* without the NUL */
	const char *args;	/* argc NUL-terminated strings, back to back */
	size_t args_len;
	uint32_t argc;
	bool args_truncated;
};

struct open_view {
	const struct open_event *e;
	const struct pod_ref *pod;	/* set by out_open() */
	uint64_t wall_ns;
	const char *path;
	size_t path_len;	/* without the NUL */
	bool truncated;
};

struct bio_view {
	const struct bio_event *e;
	const struct pod_ref *pod;	/* set by out_bio() */
	uint64_t wall_ns;
	const char *disk;
	size_t disk_len;
	char op[8];		/* blktrace-style: R W D F N, then F(UA) A(head) S(ync) M(eta) */
};

/* One latency histogram of one interval: a cgroup's requests to one disk, one op. */
struct bio_hist_view {
	uint64_t cgroup_id;
	const struct pod_ref *pod;	/* set by out_bio_hist() */
	uint64_t wall_ns;		/* end of the interval */
	uint64_t interval_ns;
	uint32_t dev;			/* kernel dev_t: major << 20 | minor */
	const char *disk;
	size_t disk_len;
	const char *op;			/* R, W, D, F or N */
	const __u64 *slots;		/* BIO_HIST_SLOTS log2 buckets of usecs */
	uint64_t count;
	uint64_t sum_ns;
	uint64_t merged;		/* of count: requests merged into another */
};

/* An fs operation slower than --fs-min-us (agent/tracers/fs.c decodes it). */
struct fs_view {
	const struct fs_event *e;
	const struct pod_ref *pod;	/* set by out_fs() */
	uint64_t wall_ns;
	const char *path;	/* from the task's root; without the leading '/' if truncated */
	size_t path_len;
	const char *name;	/* the last component */
	size_t name_len;
	bool path_truncated;
};

/* One row of cachestat: a (cgroup, mount namespace) over one interval. */
struct cache_view {
	uint64_t wall_ns;	/* end of the interval */
	uint64_t interval_ns;
	uint64_t cgroup_id;
	uint64_t mntns_id;
	const struct pod_ref *pod;	/* set by out_cache() */
	uint32_t method;	/* enum cache_method */
	bool accesses_known;	/* false: this kernel gives the method no access count */
	bool estimated;		/* accesses (and so hits, ratio) are an estimate */
	bool ratio_known;	/* hits + misses > 0 */
	uint64_t accesses;
	uint64_t hits;
	uint64_t misses;
	uint64_t dirtied;
	uint64_t added;
	uint64_t buf_dirtied;
	double hit_ratio;	/* hits / (hits + misses) */
	uint64_t host_buffers_kb;	/* /proc/meminfo, node-wide as cachestat prints */
	uint64_t host_cached_kb;
};

struct loss_rec {
	uint64_t wall_ns;
	const char *tracer;
	const char *stage;	/* kernel_ringbuf, kernel_map_full, ... */
	uint64_t count;		/* since the previous loss record of this kind */
	uint64_t total;		/* since start (rate_limited: since the cgroup's bucket was made) */
	/* rate_limited: whose records they were; without: buckets evicted before being read */
	bool has_cgroup;
	uint64_t cgroup_id;
	const struct pod_ref *pod;	/* set by out_loss() */
};

/* A record writer: every member may be NULL (that writer takes no records of the type). */
struct sink_ops {
	void (*exec)(void *priv, const struct exec_view *v);
	void (*open)(void *priv, const struct open_view *v);
	void (*bio)(void *priv, const struct bio_view *v);
	void (*bio_hist)(void *priv, const struct bio_hist_view *v);
	void (*loss)(void *priv, const struct loss_rec *l);
	void (*fs)(void *priv, const struct fs_view *v);
	void (*cache)(void *priv, const struct cache_view *v);
	void (*flush)(void *priv);
};

/* Names of the enums records carry, as NDJSON and text print them. */
const char *exec_method_name(uint32_t method);
const char *open_method_name(uint32_t method);
const char *open_syscall_name(uint32_t syscall);
const char *bio_method_name(uint32_t method);
const char *bio_attrib_name(uint32_t attribution);
/* Bucket i of a log2 histogram holds values lo..hi (bcc's convention). */
void bio_hist_bounds(unsigned int i, uint64_t *lo, uint64_t *hi);
const char *fs_op_name(uint32_t op);
const char *fs_type_name(uint32_t fs);
const char *fs_method_name(uint32_t method);
const char *cache_method_name(uint32_t method);

#endif
