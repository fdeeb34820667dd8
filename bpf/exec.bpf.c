// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * exec tracer: every execve/execveat with its full argv and result.
 *
 * Preferred hooks are the execve{,at} syscall tracepoints: enter copies the
 * filename and argv while the caller's memory is still there, exit adds the
 * result, so failed execs are seen too. Kernels built without syscall
 * tracepoints get sched_process_exec instead (successes only), as tp_btf or,
 * without BTF-typed tracepoints, raw_tp. The agent picks one method and
 * disables the other programs' autoload before load.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "common.bpf.h"
#include "exec.h"
#include "sysraw.bpf.h"

const volatile __u32 targ_max_args = EXEC_ARGC_DEF;
const volatile __u32 targ_max_args_bytes = EXEC_ARGS_BYTES_DEF;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* resized by the agent */
} ps_exec_rb SEC(".maps");

/*
 * execs between enter and exit, by tid. Not preallocated: each value is
 * ~20 KiB and only a handful are ever in flight. An exec from a non-leader
 * thread returns under the leader's tid, so its entry is orphaned; the agent
 * deletes entries older than a few seconds (and counts them).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct exec_event);
} ps_exec_pending SEC(".maps");

/* Scratch record for the single-hook (sched_process_exec) methods. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_event);
} ps_exec_heap SEC(".maps");

static const struct exec_event empty_event = {};

static __always_inline void fill_header(struct exec_event *e, __u32 method)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	__u64 ugid = bpf_get_current_uid_gid();

	e->ts_ns = bpf_ktime_get_boot_ns();
	e->cgroup_id = ps_current_cgroup_id();
	e->mntns_id = ps_task_mntns(task);
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)ugid;
	e->gid = ugid >> 32;
	e->retval = 0;
	e->flags = 0;
	e->method = method;
	e->args_len = 0;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
}

/* Clamp for the verifier: the filename never exceeds its region. */
static __always_inline __u32 fname_len(long n)
{
	if (n <= 0)
		return 0;
	if (n > EXEC_FILENAME_MAX)
		return EXEC_FILENAME_MAX;
	return n;
}

static __always_inline void read_argv(struct exec_event *e, const char *const *argv)
{
	__u32 base = e->filename_len, off = 0, idx;
	const char *argp;
	long len;
	int i;

	if (base > EXEC_FILENAME_MAX)
		return;
	for (i = 0; i < EXEC_ARGC_CAP; i++) {
		argp = NULL;
		if (bpf_probe_read_user(&argp, sizeof(argp), &argv[i])) {
			e->flags |= EXEC_F_ARGS_FAULT;
			break;
		}
		if (!argp)
			break;
		if (i >= targ_max_args || off >= targ_max_args_bytes) {
			e->flags |= EXEC_F_ARGS_TRUNCATED;
			break;
		}
		idx = base + (off & (EXEC_ARGS_BYTES_CAP - 1));
		len = bpf_probe_read_user_str(&e->buf[idx], EXEC_ARGS_BYTES_CAP, argp);
		if (len < 0) {
			e->flags |= EXEC_F_ARGS_FAULT;
			break;
		}
		/* keep whole arguments only: a cut one would read as another */
		if (off + len > targ_max_args_bytes) {
			e->flags |= EXEC_F_ARGS_TRUNCATED;
			break;
		}
		off += len;
	}
	e->args_len = off;
}

static __always_inline int exec_enter(const char *filename, const char *const *argv,
				      __u32 method)
{
	struct ps_stats *s = ps_stats_get();
	struct exec_event *e;
	__u32 tid;
	long n;

	ps_count(s, PS_STAT_SEEN);
	if (!ps_current_selected()) {
		ps_count(s, PS_STAT_FILTERED);
		return 0;
	}
	tid = (__u32)bpf_get_current_pid_tgid();
	if (bpf_map_update_elem(&ps_exec_pending, &tid, &empty_event, BPF_ANY)) {
		ps_count(s, PS_STAT_MAP_FULL);
		return 0;
	}
	e = bpf_map_lookup_elem(&ps_exec_pending, &tid);
	if (!e)
		return 0;
	fill_header(e, method);
	n = bpf_probe_read_user_str(e->buf, EXEC_FILENAME_MAX, filename);
	if (n < 0)
		e->flags |= EXEC_F_READ_FAULT;
	e->filename_len = fname_len(n);
	read_argv(e, argv);
	return 0;
}

/*
 * Copy the arguments of the current (new) image: the kernel has just placed
 * them NUL-separated between mm->arg_start and arg_end, so they are resident
 * and one read takes them all. Returns the bytes copied after base.
 */
static __always_inline __u32 read_mm_args(struct exec_event *e, struct task_struct *task,
					  __u32 base)
{
	unsigned long start, end, len;

	if (base > EXEC_FILENAME_MAX)
		return 0;
	start = BPF_CORE_READ(task, mm, arg_start);
	end = BPF_CORE_READ(task, mm, arg_end);
	len = end > start ? end - start : 0;
	if (len > targ_max_args_bytes) {
		len = targ_max_args_bytes;
		e->flags |= EXEC_F_ARGS_TRUNCATED;
	}
	if (len > EXEC_ARGS_BYTES_CAP)
		len = EXEC_ARGS_BYTES_CAP;
	if (!len)
		return 0;
	if (bpf_probe_read_user(&e->buf[base], len, (void *)start)) {
		e->flags |= EXEC_F_ARGS_FAULT;
		return 0;
	}
	e->flags &= ~EXEC_F_ARGS_FAULT;
	return len;
}

static __always_inline int exec_exit(long ret)
{
	struct ps_stats *s;
	struct exec_event *e;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 size;

	e = bpf_map_lookup_elem(&ps_exec_pending, &tid);
	if (!e)
		return 0;
	s = ps_stats_get();
	e->retval = ret;
	if (ret == 0) /* the new program's name, as execsnoop shows */
		bpf_get_current_comm(&e->comm, sizeof(e->comm));
	/*
	 * A tracepoint cannot fault pages in: argv strings on a page the caller
	 * never touched (fresh .rodata after vfork) read as faults at enter.
	 * After a successful exec the new image holds a resident copy.
	 */
	if (ret == 0 && (e->flags & EXEC_F_ARGS_FAULT)) {
		e->flags &= ~EXEC_F_ARGS_TRUNCATED;
		e->args_len = read_mm_args(e, (struct task_struct *)bpf_get_current_task(),
					   e->filename_len);
	}
	if (e->flags & EXEC_F_ARGS_FAULT)
		e->flags = (e->flags & ~EXEC_F_ARGS_FAULT) | EXEC_F_READ_FAULT;
	if (e->flags & EXEC_F_READ_FAULT)
		ps_count(s, PS_STAT_READ_ERR);
	size = EXEC_EVENT_HDR_SIZE + e->filename_len + e->args_len;
	if (size > sizeof(*e))
		size = sizeof(*e);
	ps_output(&ps_exec_rb, s, e->cgroup_id, e, size);
	bpf_map_delete_elem(&ps_exec_pending, &tid);
	return 0;
}

/*
 * An exec from a non-leader thread takes over the leader's pid (de_thread()),
 * so the exit fires under another tid than the enter: move the entry.
 */
SEC("raw_tp/sched_process_exec")
int BPF_PROG(ps_exec_rekey, struct task_struct *p, pid_t old_pid)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid(), old = old_pid;
	struct exec_event *e;

	if (old == tid)
		return 0;
	e = bpf_map_lookup_elem(&ps_exec_pending, &old);
	if (!e)
		return 0;
	e->tid = tid;
	if (bpf_map_update_elem(&ps_exec_pending, &tid, e, BPF_ANY) == 0)
		bpf_map_delete_elem(&ps_exec_pending, &old);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int ps_exec_enter(struct trace_event_raw_sys_enter *ctx)
{
	return exec_enter((const char *)ctx->args[0], (const char *const *)ctx->args[1],
			  EXEC_M_SYSCALLS);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int ps_execat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return exec_enter((const char *)ctx->args[1], (const char *const *)ctx->args[2],
			  EXEC_M_SYSCALLS);
}

SEC("tracepoint/syscalls/sys_exit_execve")
int ps_exec_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exec_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int ps_execat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exec_exit(ctx->ret);
}

/*
 * The same on the syscall functions, where the kernel has BPF trampolines:
 * a syscall tracepoint puts every syscall of every task on the kernel's slow
 * path, a trampoline costs only the calls it is on. x86-64 names (the
 * agent falls back where they do not exist); the arguments are the caller's
 * registers, as the syscall took them.
 */
SEC("fentry/__x64_sys_execve")
int BPF_PROG(ps_exec_fentry, const struct pt_regs *regs)
{
	return exec_enter((const char *)regs->di, (const char *const *)regs->si, EXEC_M_FENTRY);
}

SEC("fentry/__x64_sys_execveat")
int BPF_PROG(ps_execat_fentry, const struct pt_regs *regs)
{
	return exec_enter((const char *)regs->si, (const char *const *)regs->dx, EXEC_M_FENTRY);
}

SEC("fexit/__x64_sys_execve")
int BPF_PROG(ps_exec_fexit, const struct pt_regs *regs, long ret)
{
	return exec_exit(ret);
}

SEC("fexit/__x64_sys_execveat")
int BPF_PROG(ps_execat_fexit, const struct pt_regs *regs, long ret)
{
	return exec_exit(ret);
}

/*
 * The same as handlers of the raw_syscalls dispatcher (bpf/sysraw.bpf.c),
 * which calls them by syscall number: the arguments come from the user's
 * registers, as the syscall tracepoints read them.
 */
SEC("tp_btf/sys_enter")
int BPF_PROG(ps_exec_rs_enter, struct pt_regs *regs, long id)
{
	exec_enter((const char *)PS_SYS_ARG0(regs), (const char *const *)PS_SYS_ARG1(regs),
		   EXEC_M_RAW_SYSCALLS);
	ps_sys_next(ctx, &ps_sys_enter_progs, id, PS_SYS_SLOT_EXEC + 1);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(ps_execat_rs_enter, struct pt_regs *regs, long id)
{
	exec_enter((const char *)PS_SYS_ARG1(regs), (const char *const *)PS_SYS_ARG2(regs),
		   EXEC_M_RAW_SYSCALLS);
	ps_sys_next(ctx, &ps_sys_enter_progs, id, PS_SYS_SLOT_EXEC + 1);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(ps_exec_rs_exit, struct pt_regs *regs, long ret)
{
	exec_exit(ret);
	ps_sys_next(ctx, &ps_sys_exit_progs, PS_SYS_NR(regs), PS_SYS_SLOT_EXEC + 1);
	return 0;
}

/*
 * sched_process_exec fires after the point of no return, in the new image:
 * the arguments already sit NUL-separated between mm->arg_start and arg_end,
 * so one read copies them all. The agent splits and counts them.
 */
static __always_inline int exec_sched(struct task_struct *task, struct linux_binprm *bprm,
				      __u32 method)
{
	struct ps_stats *s = ps_stats_get();
	struct exec_event *e;
	__u32 zero = 0, base, args_len;
	__u64 size;
	long n;

	ps_count(s, PS_STAT_SEEN);
	if (!ps_current_selected()) {
		ps_count(s, PS_STAT_FILTERED);
		return 0;
	}
	e = bpf_map_lookup_elem(&ps_exec_heap, &zero);
	if (!e)
		return 0;
	fill_header(e, method);
	e->flags = EXEC_F_NO_RETVAL;
	n = bpf_probe_read_kernel_str(e->buf, EXEC_FILENAME_MAX, BPF_CORE_READ(bprm, filename));
	if (n < 0)
		e->flags |= EXEC_F_READ_FAULT;
	e->filename_len = base = fname_len(n);

	args_len = read_mm_args(e, task, base);
	if (e->flags & EXEC_F_ARGS_FAULT)
		e->flags = (e->flags & ~EXEC_F_ARGS_FAULT) | EXEC_F_READ_FAULT;
	e->args_len = args_len;
	if (e->flags & EXEC_F_READ_FAULT)
		ps_count(s, PS_STAT_READ_ERR);
	/*
	 * The clamps above bound the size, but 6.1's verifier loses the bound
	 * of the sum ("R3 unbounded memory access" at bpf_ringbuf_output; 6.12
	 * keeps it): clamp the sum itself, behind a barrier so that clang,
	 * which knows it cannot trigger, keeps the check.
	 */
	size = EXEC_EVENT_HDR_SIZE + base + args_len;
	barrier_var(size);
	if (size > sizeof(*e))
		size = sizeof(*e);
	ps_output(&ps_exec_rb, s, e->cgroup_id, e, size);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(ps_exec_btf, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return exec_sched(p, bprm, EXEC_M_SCHED_BTF);
}

SEC("raw_tp/sched_process_exec")
int BPF_PROG(ps_exec_raw, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	return exec_sched(p, bprm, EXEC_M_SCHED_RAW);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
