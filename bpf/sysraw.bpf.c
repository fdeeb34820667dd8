// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The raw_syscalls dispatcher (bpf/sysraw.h): one program on each raw
 * syscall hook instead of a syscall tracepoint program per traced syscall
 * and tracer. A syscall tracepoint pays perf's dispatch (a buffer, the
 * arguments copied) on every traced call; this pair costs every syscall a
 * run of a few instructions, and a traced one a tail call into its handler.
 * Measured on whole workloads: bench/README.md.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "sysraw.bpf.h"

SEC("tp_btf/sys_enter")
int BPF_PROG(ps_sys_enter, struct pt_regs *regs, long id)
{
	if ((__u64)id < PS_SYS_NR_MAX && !ps_sys_compat())
		ps_sys_next(ctx, &ps_sys_enter_progs, id, 0);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(ps_sys_exit, struct pt_regs *regs, long ret)
{
	__u64 nr = PS_SYS_NR(regs);

	if (nr < PS_SYS_NR_MAX && !ps_sys_compat())
		ps_sys_next(ctx, &ps_sys_exit_progs, nr, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
