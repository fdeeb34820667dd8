// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * What the parts of a traced open() cost on this machine, one at a time:
 * each program does one thing podsnoop's open tracer does per record and is
 * attached alone (tp_floor FILE PROGRAM) to sys_enter_getppid, a syscall that
 * does almost nothing itself, so a getppid() loop (sysloop.c) shows the part's
 * cost as the difference to p_empty. bench/parts_bench.py runs them.
 *
 * Results go to per-CPU memory, never to a global, so that no part pays for
 * a cache line shared between CPUs that the real programs do not share.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "open.h"

/* a record's worth of memory, as the open tracer's per-CPU heap */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct open_event);
} heap SEC(".maps");

/* tp_floor drains it on a timer, as the agent does */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64[6]);	/* the size of the open tracer's per-call state */
} store SEC(".maps");

static __always_inline struct open_event *heap_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&heap, &zero);
}

/* the hook and a per-CPU lookup: what every part below also pays */
SEC("tracepoint/syscalls/sys_enter_getppid")
int p_empty(void *ctx)
{
	struct open_event *e = heap_get();

	if (e)
		e->ret = 0;
	return 0;
}

/* one call of any helper (the cheapest: no work behind it) */
SEC("tracepoint/syscalls/sys_enter_getppid")
int p_helper(void *ctx)
{
	struct open_event *e = heap_get();

	if (e)
		e->pid = bpf_get_current_pid_tgid() >> 32;
	return 0;
}

/* a timestamp: open takes two, at entry and at return (the latency) */
SEC("tracepoint/syscalls/sys_enter_getppid")
int p_clock(void *ctx)
{
	struct open_event *e = heap_get();

	if (e)
		e->ts_ns = bpf_ktime_get_boot_ns();
	return 0;
}

/*
 * The path read: a short string from user memory into the record, with
 * open's limit. The loop's argv[0] (its own path, ~30 bytes) stands in for
 * the path open() was given.
 */
SEC("tracepoint/syscalls/sys_enter_getppid")
int p_user_read(void *ctx)
{
	struct open_event *e = heap_get();

	if (e)
		e->ret = bpf_probe_read_user_str(e->path, OPEN_PATH_READ,
						 (void *)bpf_get_current_task_btf()->mm->arg_start);
	return 0;
}

/* the same string read from kernel memory (the task's comm): no user access */
SEC("tracepoint/syscalls/sys_enter_getppid")
int p_kernel_read(void *ctx)
{
	struct open_event *e = heap_get();

	if (e)
		e->ret = bpf_probe_read_kernel_str(e->path, OPEN_PATH_READ,
						   bpf_get_current_task_btf()->comm);
	return 0;
}

/* the task's identity through trusted pointers: the loads of fill_header() in bpf/open.bpf.c */
SEC("tracepoint/syscalls/sys_enter_getppid")
int p_task_fields(void *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct open_event *e = heap_get();

	if (!e)
		return 0;
	e->cgroup_id = t->cgroups->dfl_cgrp->kn->id;
	e->pid = t->tgid;
	e->tid = t->pid;
	e->uid = t->cred->uid.val;
	e->mntns_id = t->nsproxy->mnt_ns->ns.inum;
	__builtin_memcpy(e->comm, t->comm, sizeof(e->comm));
	return 0;
}

/* the per-call state: open's entry gets (creating) and fills it */
SEC("tracepoint/syscalls/sys_enter_getppid")
int p_task_storage(void *ctx)
{
	__u64 *a = bpf_task_storage_get(&store, bpf_get_current_task_btf(), 0,
					 BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (a)
		a[0] = 1;
	return 0;
}

/* a record of a short path (header + 32 bytes) copied into the ring */
SEC("tracepoint/syscalls/sys_enter_getppid")
int p_ring_output(void *ctx)
{
	struct open_event *e = heap_get();

	if (e)
		bpf_ringbuf_output(&rb, e, OPEN_EVENT_HDR_SIZE + 32, BPF_RB_NO_WAKEUP);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
