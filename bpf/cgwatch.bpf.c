// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cgroup_mkdir / cgroup_rmdir: every cgroup created or removed, in every
 * hierarchy, with its id and path. Rare events (container starts), so each
 * wakes the reader at once. BTF-typed tracepoints where the kernel has them,
 * the classic tracepoints otherwise; the agent disables the other pair.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "cgwatch.h"

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} cgw_rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CGW_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} cgw_stats SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&cgw_stats, &which);

	if (v)
		(*v)++;
}

static __always_inline int emit(__u64 id, int root, int level, __u32 op, const char *path)
{
	struct cgw_event *e;
	long n;

	count(CGW_STAT_SEEN);
	e = bpf_ringbuf_reserve(&cgw_rb, sizeof(*e), 0);
	if (!e) {
		count(CGW_STAT_LOST);
		return 0;
	}
	e->id = id;
	e->root = root;
	e->level = level;
	e->op = op;
	e->flags = 0;
	n = bpf_probe_read_kernel_str(e->path, sizeof(e->path), path);
	if (n < 0)
		e->path[0] = '\0';
	else if (n == sizeof(e->path))
		e->flags |= CGW_F_TRUNCATED; /* could also be exactly full: resolved again */
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline int from_cgroup(struct cgroup *cgrp, const char *path, __u32 op)
{
	return emit(BPF_CORE_READ(cgrp, kn, id), BPF_CORE_READ(cgrp, root, hierarchy_id),
		    BPF_CORE_READ(cgrp, level), op, path);
}

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(ps_cgw_mkdir_btf, struct cgroup *cgrp, const char *path)
{
	return from_cgroup(cgrp, path, CGW_MKDIR);
}

SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(ps_cgw_rmdir_btf, struct cgroup *cgrp, const char *path)
{
	return from_cgroup(cgrp, path, CGW_RMDIR);
}

/* The classic tracepoint carries root, level, id and the path as __data_loc. */
static __always_inline int from_tp(struct trace_event_raw_cgroup *ctx, __u32 op)
{
	__u32 loc = BPF_CORE_READ(ctx, __data_loc_path);

	return emit(BPF_CORE_READ(ctx, id), BPF_CORE_READ(ctx, root), BPF_CORE_READ(ctx, level),
		    op, (const char *)ctx + (loc & 0xffff));
}

SEC("tracepoint/cgroup/cgroup_mkdir")
int ps_cgw_mkdir_tp(struct trace_event_raw_cgroup *ctx)
{
	return from_tp(ctx, CGW_MKDIR);
}

SEC("tracepoint/cgroup/cgroup_rmdir")
int ps_cgw_rmdir_tp(struct trace_event_raw_cgroup *ctx)
{
	return from_tp(ctx, CGW_RMDIR);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
