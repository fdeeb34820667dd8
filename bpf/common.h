/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Definitions shared by every tracer's BPF object and the agent: the in-kernel
 * filter configuration and the per-tracer counters. Fixed-width types only;
 * the size asserts catch a layout drifting on one side.
 */
#ifndef PS_COMMON_H
#define PS_COMMON_H

#ifndef __VMLINUX_H__ /* user space; BPF gets the types from vmlinux.h */
#include <linux/types.h>
#endif

/* Selection flags in struct ps_filter_cfg.flags. */
#define PS_F_CGROUP		(1u << 0) /* cgroup selection active */
#define PS_F_MNTNS		(1u << 1) /* mount-namespace selection active */
#define PS_F_EXCLUDE_HOST	(1u << 2) /* drop tasks in the host mount namespace */

/*
 * Cgroup selection matches a task when one of its cgroup v2 ancestors (or its
 * own cgroup) is in the id set. Only the levels present in cgroup_levels are
 * looked at, walking up from the task's cgroup (ps_cgroup_walk_selected in
 * common.bpf.h); an id is compared with the inline ids, or looked up in the
 * hash when more are selected. Levels are 0 (root) .. 31.
 */
#define PS_CGROUP_MAX_LEVEL	32

/* Entries in the shared id sets; the agent refuses to select more. */
#define PS_FILTER_MAX_IDS	16384

/*
 * While no more cgroups than this are selected, their ids are also copied
 * into the configuration and compared there: a few instructions instead of a
 * hash lookup, paid by every event of every task (bench/README.md).
 */
#define PS_FILTER_INLINE_IDS	8

struct ps_filter_cfg {
	__u32 flags;
	__u32 cgroup_levels;	/* bit L set: some selected cgroup is at level L */
	__u64 host_mntns;	/* inode of the agent's mount namespace */
	__u32 n_inline;		/* 0: look ids up in the hash; else the set is the n non-zero
				   ids of inline_ids, in any slots (the others hold 0) */
	__u32 pad;
	__u64 inline_ids[PS_FILTER_INLINE_IDS];
};
_Static_assert(sizeof(struct ps_filter_cfg) == 24 + 8 * PS_FILTER_INLINE_IDS,
	       "ps_filter_cfg layout");

/* Per-tracer counters, one per-CPU slot each, summed by the agent. */
enum ps_stat {
	PS_STAT_SEEN,		/* hook fired for a candidate event */
	PS_STAT_FILTERED,	/* dropped by the cgroup/mntns/other filters */
	PS_STAT_EMITTED,	/* written to the ring buffer */
	PS_STAT_LOST,		/* ring buffer full: reserve/output failed */
	PS_STAT_MAP_FULL,	/* an auxiliary map (in-flight state, histograms) was full */
	PS_STAT_READ_ERR,	/* a bpf_probe_read failed; event emitted with a flag */
	PS_STAT_RATE_LIMITED,	/* refused by the cgroup's token bucket (--rate-limit) */
	PS_STAT_SHED,		/* refused for the ring's sake: above the cgroup's fair share (--shed) */
	PS_STAT_MAX,
};

struct ps_stats {
	__u64 v[PS_STAT_MAX];
};
_Static_assert(sizeof(struct ps_stats) == 8 * PS_STAT_MAX, "ps_stats layout");

/*
 * --rate-limit: a token bucket per (cgroup, tracer) in front of the ring
 * buffer (ps_rl_admit in common.bpf.h). Each tracer object has its own LRU
 * hash keyed by cgroup id, so the tracer is implicit in the map. Entries are
 * bounded: a cgroup evicted while throttled loses its own count, never the
 * tracer's (PS_STAT_RATE_LIMITED).
 */
#define PS_RL_ENTRIES		1024

/*
 * The bucket as GCRA keeps it, all in ns of bpf_ktime_get_ns(): tat_ns, the
 * "theoretical arrival time", is when the bucket would be full again; a
 * record is admitted while tat_ns + period <= now + burst * period. Whole
 * numbers only: the rate lives in the period (ns per record). idle_ns, the
 * time the bucket spent full (tokens that overflowed), lets a test check the
 * bucket against its own clock: tat_ns == first_ns + idle_ns + passed * period.
 */
struct ps_rl_val {
	__u64 tat_ns;
	__u64 first_ns;		/* the entry's first record */
	__u64 last_ns;		/* its latest record, admitted or not */
	__u64 idle_ns;
	__u64 passed;		/* records admitted */
	__u64 dropped;		/* records refused: the per-cgroup loss count */
	__u64 noted_ns;		/* last ps_rl_note sent for it */
	__u64 shed;		/* records refused for the ring's sake (--shed) */
	__u64 fair_win;		/* the window fair_n counts in (PS_FAIR_WIN_SHIFT) */
	__u64 fair_n;		/* records offered while the ring was high, halved per window */
};
_Static_assert(sizeof(struct ps_rl_val) == 80, "ps_rl_val layout");

/*
 * --shed: when the reader falls behind anyway and a ring buffer is more than
 * PS_FAIR_HIGH_NUM/PS_FAIR_HIGH_DEN full, a record is written only if its
 * cgroup offered fewer than its fair share of the records offered lately
 * (ps_fair_admit in common.bpf.h): the flooders are refused, the room left
 * goes to the quiet. "Lately" is a window of 2^PS_FAIR_WIN_SHIFT ns, the
 * counts halved at each new one, so that a window's start forgets nothing
 * at once. What is refused is counted in the cgroup's bucket (shed).
 */
#define PS_FAIR_HIGH_NUM	3
#define PS_FAIR_HIGH_DEN	4
#define PS_FAIR_WIN_SHIFT	27	/* about 134 ms */

/* Per tracer object: the records all cgroups offered lately, and how many cgroups. */
struct ps_fair {
	__u64 win;		/* the window total and joined count in */
	__u64 total;		/* records offered while the ring was high, halved per window */
	__u64 joined;		/* cgroups that offered one in window win */
	__u64 joined_prev;	/* in the window before it */
};
_Static_assert(sizeof(struct ps_fair) == 32, "ps_fair layout");

/*
 * "This cgroup is being throttled" (or shed): sent at its first refusal, then at most
 * once per PS_RL_NOTE_NS, into a small ring every tracer shares, so that the
 * agent reports a throttled pod at once rather than at the next interval.
 */
#define PS_RL_NOTE_NS		1000000000ull
#define PS_RL_NOTES_BYTES	(16 << 10)

struct ps_rl_note {
	__u64 cgroup_id;
	__u32 tracer;		/* index in the agent's tracer table */
	__u32 pad;
};
_Static_assert(sizeof(struct ps_rl_note) == 16, "ps_rl_note layout");

#endif /* PS_COMMON_H */
