/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The cache tracer's per-cgroup counters (cachestat, per pod), shared by
 * bpf/cache.bpf.c and agent/tracers/cache.c. The kernel only counts; the agent
 * reads the map every --interval and turns differences into records.
 */
#ifndef PS_CACHE_H
#define PS_CACHE_H

#ifndef __VMLINUX_H__ /* user space; BPF gets the types from vmlinux.h */
#include <linux/types.h>
#endif

#define CACHE_MAX_CGROUPS 10240	/* rows (cgroup, mount namespace) in the kernel map */

/* Cache methods, for records (cache_method_name()). */
enum cache_method {
	CACHE_M_FENTRY = 1,	/* fentry on folio_mark_accessed, filemap_add_folio, ... */
	CACHE_M_KPROBE = 2,	/* kprobes on the same */
	CACHE_M_TP_BTF = 3,	/* BTF tracepoints; accesses estimated */
	CACHE_M_TRACEPOINT = 4,	/* classic tracepoints; accesses estimated */
};

struct cache_key {
	__u64 cgroup_id;
	__u64 mntns_id;
};
_Static_assert(sizeof(struct cache_key) == 16, "cache_key layout");

/*
 * Cumulative counts, one per-CPU slot each. Pages, except buf_dirtied
 * (buffer heads). With the fentry/kprobe methods `accessed` is the pages of
 * the folios marked accessed (bcc cachestat's "total"); with the tracepoint
 * methods it is the estimate described in docs/hooks.md (pages each read asked
 * the page cache for).
 */
struct cache_val {
	__u64 accessed;
	__u64 added;		/* pages inserted into the page cache */
	__u64 dirtied;		/* pages dirtied (accounted as dirty) */
	__u64 buf_dirtied;	/* mark_buffer_dirty calls */
};
_Static_assert(sizeof(struct cache_val) == 32, "cache_val layout");

#endif /* PS_CACHE_H */
