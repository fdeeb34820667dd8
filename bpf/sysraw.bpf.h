/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A tracer's side of the raw_syscalls method (bpf/sysraw.h): the two program
 * arrays the dispatcher tail-calls through (created once by the agent and
 * handed to every object with bpf_map__reuse_fd(), as the filter maps), the
 * syscall's arguments from the registers, and the hand-on to the next
 * tracer's handler of the same syscall.
 *
 * Handlers are tp_btf programs on sys_enter or sys_exit like the dispatcher:
 * the kernel lets a tracing program tail-call only programs of the same
 * attach point, hence one array per hook.
 */
#ifndef PS_SYSRAW_BPF_H
#define PS_SYSRAW_BPF_H

#include "sysraw.h"

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, PS_SYS_PROGS);
	__type(key, __u32);
	__type(value, __u32);
} ps_sys_enter_progs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, PS_SYS_PROGS);
	__type(key, __u32);
	__type(value, __u32);
} ps_sys_exit_progs SEC(".maps");

/*
 * The syscall's number and arguments in the registers the hooks get (the
 * user's, as the syscall tracepoints read them). x86-64 only: the agent
 * offers the method nowhere else.
 */
#if defined(__TARGET_ARCH_x86)
#define PS_SYS_NR(regs)		((regs)->orig_ax)
#define PS_SYS_ARG0(regs)	((regs)->di)
#define PS_SYS_ARG1(regs)	((regs)->si)
#define PS_SYS_ARG2(regs)	((regs)->dx)
#define PS_SYS_ARG3(regs)	((regs)->r10)
#define TS_COMPAT		0x0002	/* arch/x86/include/asm/thread_info.h */
/*
 * A 32-bit syscall of a compat task (ia32 numbers): the syscall tracepoints
 * skip it (trace_get_syscall_nr()), so do we. x32 numbers carry bit 30 and
 * fail the bound on the number.
 */
static __always_inline bool ps_sys_compat(void)
{
	return bpf_get_current_task_btf()->thread_info.status & TS_COMPAT;
}
#else
#define PS_SYS_NR(regs)		(-1L)
#define PS_SYS_ARG0(regs)	0
#define PS_SYS_ARG1(regs)	0
#define PS_SYS_ARG2(regs)	0
#define PS_SYS_ARG3(regs)	0
static __always_inline bool ps_sys_compat(void)
{
	return true;
}
#endif

/*
 * Run the handlers of syscall nr from slot `from` on: a tail call that
 * succeeds does not return, one to an empty slot falls through to the next.
 */
static __always_inline void ps_sys_next(void *ctx, void *progs, __u64 nr, __u32 from)
{
	__u32 k;

	if (nr >= PS_SYS_NR_MAX)
		return;
#pragma unroll
	for (k = 0; k < PS_SYS_SLOTS; k++)
		if (k >= from)
			bpf_tail_call(ctx, progs, nr * PS_SYS_SLOTS + k);
}

#endif /* PS_SYSRAW_BPF_H */
