/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The raw_syscalls method, shared by bpf/sysraw.bpf.c (the dispatcher), the
 * tracers' handlers (bpf/sysraw.bpf.h) and agent/tracers/sysraw.c: one
 * program pair on the raw sys_enter/sys_exit hooks tail-calls, by syscall
 * number, into the handlers of every tracer that traces that syscall.
 */
#ifndef PS_SYSRAW_H
#define PS_SYSRAW_H

/* syscall numbers the dispatcher hands on: above every one a tracer needs */
#define PS_SYS_NR_MAX	512

/*
 * Tracers that can share a syscall, in the order their handlers run: the
 * handler in slot k of syscall nr sits at nr * PS_SYS_SLOTS + k of the
 * program arrays and, done, tail-calls the next filled slot of that syscall.
 */
enum ps_sys_slot {
	PS_SYS_SLOT_EXEC = 0,
	PS_SYS_SLOT_OPEN = 1,
	PS_SYS_SLOT_FS = 2,
	PS_SYS_SLOTS,
};

#define PS_SYS_PROGS	(PS_SYS_NR_MAX * PS_SYS_SLOTS)

#endif
