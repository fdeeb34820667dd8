/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The raw_syscalls hook method (bpf/sysraw.h): one dispatcher pair on the
 * raw sys_enter/sys_exit hooks, shared by every tracer that takes it, which
 * tail-calls each tracer's handlers by syscall number. A tracer loads its
 * handlers (tp_btf sys_enter/sys_exit programs, not attached) and hands them
 * here after load; the dispatcher is loaded and attached with the first.
 */
#ifndef PS_SYSRAW_AGENT_H
#define PS_SYSRAW_AGENT_H

#include <stdbool.h>
#include <bpf/libbpf.h>

#include "agent/tracers/tracer.h"
#include "bpf/sysraw.h"

/* The method can run here: x86-64, BTF-typed raw syscall hooks. */
bool sysraw_available(void);
/* This kernel has the syscall (its handlers would ever run). */
bool sysraw_has_syscall(const char *name);
/* Make obj use the shared program arrays, when it has them (before load); -errno. */
int sysraw_reuse_maps(struct bpf_object *obj);
/*
 * After load: run enter and exit (loaded, not attached) for syscall `name`
 * in slot `slot`, on behalf of o; the exit handler is in place first, so no
 * call is entered without its return. -ENOENT: no such syscall here.
 */
int sysraw_add(const struct tracer_obj *o, enum ps_sys_slot slot, const char *name,
	       struct bpf_program *enter, struct bpf_program *exit);
/* o's handlers stop running (nothing when it has none); the last one out detaches all. */
void sysraw_remove(const struct tracer_obj *o);

#endif
