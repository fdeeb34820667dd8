// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * open tracer: every open/openat/openat2 with its path, flags, mode, result
 * and latency.
 *
 * Entry keeps only the arguments (a pointer for the path) in the thread's
 * task storage, and only for selected tasks, so a filtered-out call costs
 * the selection check and, at return, one empty storage lookup. Return
 * reads the path while the caller's memory is still there and emits one
 * variable-length record: the header and the bytes of the path, nothing
 * more. The costs behind these choices are measured in bench/README.md.
 *
 * Hooks in order of preference (agent/tracers/open.c): fentry/fexit on
 * do_sys_openat2 where the kernel has BPF trampolines, the syscall
 * tracepoints, kprobe/kretprobe on do_sys_openat2. The agent enables one set
 * before load.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "common.bpf.h"
#include "open.h"
#include "sysraw.bpf.h"

/* --open-failed: keep only calls that returned an error */
const volatile bool targ_failed_only = false;
/*
 * Kernels before 5.11 have neither task storage nor trusted task pointers:
 * the agent then turns ps_open_args into a hash by thread id.
 */
const volatile bool targ_legacy = false;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); /* resized by the agent */
} ps_open_rb SEC(".maps");

/* What entry saw, kept until return; ts_ns 0 when nothing is pending. */
struct open_args {
	__u64 ts_ns;
	__u64 fname;		/* user pointer to the path */
	__u64 flags;
	__u32 mode;
	__s32 dirfd;
	__u16 syscall;
	__u8 rflags;
	__u8 method;
	__u32 pad;
};

/*
 * The call in progress, per thread: task storage, a few times cheaper than
 * a hash update and delete per call (the element lives as long as the
 * thread). On legacy kernels a preallocated hash by thread id, where
 * more threads blocked inside open than entries count as map_full.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct open_args);
} ps_open_args SEC(".maps");

/* The record is built here, then copied into the ring buffer at its real size. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct open_event);
} ps_open_heap SEC(".maps");

static __always_inline void set_args(struct open_args *a, __u16 syscall, __u8 method,
				     __u8 rflags, int dirfd, const char *fname, __u64 flags,
				     __u32 mode)
{
	a->ts_ns = bpf_ktime_get_boot_ns();
	a->fname = (__u64)(unsigned long)fname;
	a->flags = flags;
	a->mode = mode;
	a->dirfd = dirfd;
	a->syscall = syscall;
	a->rflags = rflags;
	a->method = method;
	a->pad = 0;
}

static __always_inline int open_enter(__u16 syscall, __u8 method, __u8 rflags, int dirfd,
				      const char *fname, __u64 flags, __u32 mode)
{
	struct task_struct *t = targ_legacy ? NULL : ps_current_task_btf();
	struct ps_stats *s = ps_stats_get();
	struct open_args *a, tmp;
	__u32 tid;

	ps_count(s, PS_STAT_SEEN);
	if (ps_is_self(t) || !ps_selected(t)) {
		ps_count(s, PS_STAT_FILTERED);
		return 0;
	}
	if (targ_legacy) {
		set_args(&tmp, syscall, method, rflags, dirfd, fname, flags, mode);
		tid = (__u32)bpf_get_current_pid_tgid();
		if (bpf_map_update_elem(&ps_open_args, &tid, &tmp, BPF_ANY))
			ps_count(s, PS_STAT_MAP_FULL);
		return 0;
	}
	a = bpf_task_storage_get(&ps_open_args, t, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (a)
		set_args(a, syscall, method, rflags, dirfd, fname, flags, mode);
	else
		ps_count(s, PS_STAT_MAP_FULL); /* out of memory */
	return 0;
}

/* t: the current task (trusted pointer), NULL in legacy mode */
static __always_inline void fill_header(struct open_event *e, const struct open_args *a,
					long ret, __u64 now, struct task_struct *t)
{
	__u64 id;

	e->ts_ns = now;
	e->latency_ns = now - a->ts_ns;
	e->flags = a->flags;
	e->mode = a->mode;
	e->dirfd = a->dirfd;
	e->syscall = a->syscall;
	e->rflags = a->rflags;
	e->method = a->method;
	e->ret = ret;
	if (targ_legacy || !t) {
		e->cgroup_id = bpf_get_current_cgroup_id();
		id = bpf_get_current_pid_tgid();
		e->pid = id >> 32;
		e->tid = (__u32)id;
		e->uid = (__u32)bpf_get_current_uid_gid();
		e->mntns_id = ps_task_mntns((struct task_struct *)bpf_get_current_task());
		bpf_get_current_comm(&e->comm, sizeof(e->comm));
		return;
	}
	/* plain loads through the trusted task pointer: a fraction of the helpers' cost */
	e->cgroup_id = t->cgroups->dfl_cgrp->kn->id;
	e->pid = t->tgid;
	e->tid = t->pid;
	e->uid = t->cred->uid.val;
	e->mntns_id = t->nsproxy->mnt_ns->ns.inum;
	__builtin_memcpy(e->comm, t->comm, sizeof(e->comm));
}

static __always_inline int open_exit(long ret)
{
	struct task_struct *t = NULL;
	struct open_args *a, args;
	struct open_event *e;
	__u32 tid = 0, zero = 0, len;
	struct ps_stats *s;
	long n;

	if (targ_legacy) {
		tid = (__u32)bpf_get_current_pid_tgid();
		a = bpf_map_lookup_elem(&ps_open_args, &tid);
	} else {
		/*
		 * Every task pays this return hook: a task that no BPF program
		 * ever gave storage to (never selected) is let go after one
		 * load instead of a bpf_task_storage_get() call.
		 */
		t = bpf_get_current_task_btf();
		if (!t->bpf_storage)
			return 0;
		a = bpf_task_storage_get(&ps_open_args, t, 0, 0);
	}
	if (!a || !a->ts_ns)
		return 0; /* not selected, or entered before we attached */
	args = *a;
	/* consumed: the next call of this thread starts afresh */
	if (targ_legacy)
		bpf_map_delete_elem(&ps_open_args, &tid);
	else
		a->ts_ns = 0;
	s = ps_stats_get();
	if (targ_failed_only && ret >= 0) {
		ps_count(s, PS_STAT_FILTERED);
		return 0;
	}
	e = bpf_map_lookup_elem(&ps_open_heap, &zero);
	if (!e)
		return 0;
	fill_header(e, &args, ret, bpf_ktime_get_boot_ns(), t);
	n = bpf_probe_read_user_str(e->path, OPEN_PATH_READ, (const char *)(unsigned long)args.fname);
	if (n <= 0) {
		e->rflags |= OPEN_F_READ_FAULT;
		ps_count(s, PS_STAT_READ_ERR);
		len = 0;
	} else if (n > OPEN_PATH_MAX) {
		/* longer than the kernel accepts: keep PATH_MAX - 1 bytes */
		e->rflags |= OPEN_F_TRUNCATED;
		e->path[OPEN_PATH_MAX - 1] = '\0';
		len = OPEN_PATH_MAX;
	} else {
		len = n;
	}
	barrier_var(len);
	if (len > OPEN_PATH_MAX) /* for the verifier: the record never exceeds its buffer */
		len = OPEN_PATH_MAX;
	e->path_len = len;
	/*
	 * Copied out at its real size: records packed densely in the ring
	 * touch fewer cold cache lines than fixed-size slots read in place.
	 */
	ps_output(&ps_open_rb, s, e->cgroup_id, e, OPEN_EVENT_HDR_SIZE + len);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_open")
int ps_open_enter(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(OPEN_SC_OPEN, OPEN_M_SYSCALLS, OPEN_F_NO_DIRFD, 0,
			  (const char *)ctx->args[0], ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int ps_openat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(OPEN_SC_OPENAT, OPEN_M_SYSCALLS, 0, ctx->args[0],
			  (const char *)ctx->args[1], ctx->args[2], ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int ps_openat2_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};

	/* a bad pointer fails the call with EFAULT; record it with zero flags */
	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return open_enter(OPEN_SC_OPENAT2, OPEN_M_SYSCALLS, 0, ctx->args[0],
			  (const char *)ctx->args[1], how.flags, how.mode);
}

SEC("tracepoint/syscalls/sys_exit_open")
int ps_open_exit(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int ps_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int ps_openat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret);
}

/*
 * The same as handlers of the raw_syscalls dispatcher (bpf/sysraw.bpf.c):
 * the arguments from the user's registers, then on to the next tracer's
 * handler of the syscall.
 */
SEC("tp_btf/sys_enter")
int BPF_PROG(ps_open_rs_enter, struct pt_regs *regs, long id)
{
	open_enter(OPEN_SC_OPEN, OPEN_M_RAW_SYSCALLS, OPEN_F_NO_DIRFD, 0,
		   (const char *)PS_SYS_ARG0(regs), PS_SYS_ARG1(regs), PS_SYS_ARG2(regs));
	ps_sys_next(ctx, &ps_sys_enter_progs, id, PS_SYS_SLOT_OPEN + 1);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(ps_openat_rs_enter, struct pt_regs *regs, long id)
{
	open_enter(OPEN_SC_OPENAT, OPEN_M_RAW_SYSCALLS, 0, PS_SYS_ARG0(regs),
		   (const char *)PS_SYS_ARG1(regs), PS_SYS_ARG2(regs), PS_SYS_ARG3(regs));
	ps_sys_next(ctx, &ps_sys_enter_progs, id, PS_SYS_SLOT_OPEN + 1);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(ps_openat2_rs_enter, struct pt_regs *regs, long id)
{
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)PS_SYS_ARG2(regs));
	open_enter(OPEN_SC_OPENAT2, OPEN_M_RAW_SYSCALLS, 0, PS_SYS_ARG0(regs),
		   (const char *)PS_SYS_ARG1(regs), how.flags, how.mode);
	ps_sys_next(ctx, &ps_sys_enter_progs, id, PS_SYS_SLOT_OPEN + 1);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(ps_open_rs_exit, struct pt_regs *regs, long ret)
{
	open_exit(ret);
	ps_sys_next(ctx, &ps_sys_exit_progs, PS_SYS_NR(regs), PS_SYS_SLOT_OPEN + 1);
	return 0;
}

/*
 * The function hooks (fentry first, where the kernel has trampolines; kprobe
 * last): every open variant goes through do_sys_openat2(dfd, filename, how)
 * since 5.6, so which syscall it was is not known here.
 */
SEC("fentry/do_sys_openat2")
int BPF_PROG(ps_open_fentry, int dfd, const char *filename, struct open_how *how)
{
	return open_enter(OPEN_SC_UNKNOWN, OPEN_M_FENTRY, 0, dfd, filename,
			  BPF_CORE_READ(how, flags), BPF_CORE_READ(how, mode));
}

SEC("fexit/do_sys_openat2")
int BPF_PROG(ps_open_fexit, int dfd, const char *filename, struct open_how *how, long ret)
{
	return open_exit(ret);
}

SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(ps_open_kprobe, int dfd, const char *filename, struct open_how *how)
{
	return open_enter(OPEN_SC_UNKNOWN, OPEN_M_KPROBE, 0, dfd, filename,
			  BPF_CORE_READ(how, flags), BPF_CORE_READ(how, mode));
}

SEC("kretprobe/do_sys_openat2")
int BPF_KRETPROBE(ps_open_kretprobe, long ret)
{
	return open_exit(ret);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
