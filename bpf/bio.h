/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The block I/O records and histograms, shared by bpf/bio.bpf.c and
 * agent/tracers/bio.c.
 */
#ifndef PS_BIO_H
#define PS_BIO_H

#ifndef __VMLINUX_H__ /* user space; BPF gets the types from vmlinux.h */
#include <linux/types.h>
#endif

#define BIO_DISK_NAME_LEN	32	/* DISK_NAME_LEN */
#define BIO_HIST_SLOTS		27	/* log2 buckets of usecs: the last holds 2^26 us (67 s) and up */
#define BIO_HIST_ENTRIES_DEF	4096	/* (cgroup, disk, op) histograms per interval */
#define BIO_HIST_ENTRIES_CAP	65536
#define BIO_MIN_US_DEF		10000	/* per-request records only for requests this slow */
#define BIO_INTERVAL_DEF	10	/* seconds between histogram records (--interval, shared with cache) */

/* bio_event.attribution: where cgroup_id came from */
enum bio_attrib {
	BIO_A_NONE = 0,		/* no submitter seen (flush sequence, passthrough, started before us) */
	BIO_A_SUBMITTER = 1,	/* the task that submitted the request */
	BIO_A_BLKCG = 2,	/* the bio's blkcg on cgroup v2 (cgroup writeback, I/O done on another's behalf) */
};

/* bio_event.method: the hooks that produced the record */
enum bio_method {
	BIO_M_IO_START = 1,	/* tp_btf block_io_start + rq_insert/issue/complete (6.5+) */
	BIO_M_GETRQ = 2,	/* tp_btf block_getrq + rq_insert/issue/complete */
	BIO_M_IO_START_RAW = 3,	/* the same as raw_tp */
	BIO_M_GETRQ_RAW = 4,
};
/* every method follows request merges with block_rq_merge, as tp_btf or raw_tp like the rest */

/* The operation class histograms are kept by. */
enum bio_op {
	BIO_OP_READ = 0,
	BIO_OP_WRITE = 1,
	BIO_OP_DISCARD = 2,	/* discard and secure erase */
	BIO_OP_FLUSH = 3,
	BIO_OP_OTHER = 4,	/* write zeroes, zone management, driver-private */
	BIO_OP_MAX,
};

/* bio_event.op_flags, decoded from the kernel's REQ_* bits */
#define BIO_OPF_SYNC		(1u << 0)
#define BIO_OPF_META		(1u << 1)
#define BIO_OPF_FUA		(1u << 2)
#define BIO_OPF_PREFLUSH	(1u << 3)
#define BIO_OPF_RAHEAD		(1u << 4)
#define BIO_OPF_SECURE		(1u << 5)	/* REQ_OP_SECURE_ERASE */

/* bio_event.flags */
#define BIO_F_QUEUED		(1u << 0) /* an insert was seen: queue_ns is the time queued */
#define BIO_F_NO_ISSUE		(1u << 1) /* no issue seen: latency_ns counts from the start */
#define BIO_F_BLKCG_V1		(1u << 2) /* the bio's blkcg is on a cgroup v1 hierarchy: ignored */
#define BIO_F_MERGED		(1u << 3) /* merged into another request before issue, completed with it */
/*
 * The tracer saw no completion: the request was accounted when a new request
 * took its address (the block layer frees a request only once it completed or
 * was merged), or when the agent stopped with it in flight. ts_ns is then, and
 * latency_ns is unknown (0): it is in no histogram.
 */
#define BIO_F_UNSEEN		(1u << 4)
/* struct bio_rq.flags only: a merged request that is not selected (its bytes leave the other's) */
#define BIO_RQ_F_SKIP		(1u << 7)

/* One finished request. Fixed size. */
struct bio_event {
	__u64 ts_ns;		/* completion, CLOCK_BOOTTIME */
	__u64 cgroup_id;	/* cgroup v2 id the I/O is charged to; 0 when unknown */
	__u64 mntns_id;		/* submitter's mount namespace; 0 unless attribution is submitter */
	__u64 sector;
	__u64 queue_ns;		/* insert -> issue (BIO_F_QUEUED) */
	__u64 latency_ns;	/* issue -> complete */
	__u64 blkcg_id;		/* cgroup v2 id of the bio's blkcg, 0 if none or on v1 */
	__u32 bytes;
	__u32 dev;		/* kernel dev_t of the disk: major << 20 | minor */
	__u32 pid;		/* submitter; 0 when unknown */
	__u32 tid;
	__s32 status;		/* blk_status_t: 0 is success */
	__u8 op;		/* enum bio_op */
	__u8 op_flags;		/* BIO_OPF_* */
	__u8 attribution;	/* enum bio_attrib */
	__u8 method;		/* enum bio_method */
	__u32 flags;		/* BIO_F_* */
	__u32 pad;
	char comm[16];		/* submitter's */
	char disk[BIO_DISK_NAME_LEN];
};
_Static_assert(sizeof(struct bio_event) == 136, "bio_event layout");

struct bio_hist_key {
	__u64 cgroup_id;
	__u32 dev;
	__u32 op;		/* enum bio_op */
};
_Static_assert(sizeof(struct bio_hist_key) == 16, "bio_hist_key layout");

/* Device time (issue -> complete) of one interval; slot i holds 2^i .. 2^(i+1)-1 us (0 .. 1 for i = 0). */
struct bio_hist_val {
	__u64 slots[BIO_HIST_SLOTS];
	__u64 count;
	__u64 sum_ns;
	__u64 merged;		/* of count: requests merged into another, completed with it */
	char disk[BIO_DISK_NAME_LEN];
};
_Static_assert(sizeof(struct bio_hist_val) == 8 * BIO_HIST_SLOTS + 24 + BIO_DISK_NAME_LEN,
	       "bio_hist_val layout");

/*
 * What is known of a request between its start and its completion: the value
 * of the in-flight maps, which the agent sweeps by start_ns (CLOCK_MONOTONIC).
 */
struct bio_rq {
	__u64 start_ns;
	__u64 insert_ns;
	__u64 issue_ns;
	__u64 cgroup_id;
	__u64 mntns_id;
	__u64 blkcg_id;
	__u64 sector;
	__u64 disk;		/* struct gendisk *: where its merged parts are keyed */
	__u32 dev;		/* as bio_event.dev */
	__u8 op;		/* as bio_event.op and op_flags */
	__u8 op_flags;
	__u16 pad2;
	__u32 bytes;
	__u32 pid;
	__u32 tid;
	__u8 attribution;
	__u8 flags;
	__u16 pad;
	char comm[16];
};

/*
 * A request merged into another (block_rq_merge) waits for that one's
 * completion, keyed by the disk and the sector where its own part of the
 * merged range ends: walking back from the merged request's end finds every
 * part, however the merges nested.
 */
struct bio_merge_key {
	__u64 disk;		/* struct gendisk * */
	__u64 sector;
};
#define BIO_MERGE_WALK		32	/* parts looked for per merged request */

#endif /* PS_BIO_H */
