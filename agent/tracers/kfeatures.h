/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What this kernel offers eBPF, asked once and cached: tracefs, tracepoints,
 * BTF types, kprobes and BPF trampolines. Tracers' hook methods are built
 * from these answers.
 */
#ifndef PS_KFEATURES_H
#define PS_KFEATURES_H

#include <stdbool.h>

/* Mount tracefs at /sys/kernel/tracing if it is not mounted; -errno. */
int feat_tracefs_ensure(void);
const char *feat_tracefs_path(void);	/* "" until feat_tracefs_ensure() */
bool feat_tracefs_mounted_by_us(void);

bool feat_tracepoint(const char *category, const char *name);
bool feat_btf(void);			/* /sys/kernel/btf/vmlinux is usable */
/*
 * Free the parsed vmlinux BTF the probes keep (about the size of
 * /sys/kernel/btf/vmlinux, 5 MiB here) once the hooks are chosen; a later
 * probe parses it again.
 */
void feat_release(void);
/* A BTF-typed tracepoint (tp_btf/<name>): needs the btf_trace_<name> typedef. */
bool feat_tp_btf(const char *name);
bool feat_btf_type(const char *name, int kind);
/*
 * How many arguments a tracepoint passes to BPF (its TP_PROTO), from BTF:
 * the btf_trace_<name> typedef, or the __bpf_trace_<name> function where
 * only that exists. -ENOENT when BTF does not tell.
 */
int feat_tp_nargs(const char *name);
/* kprobes: the kernel has them (kprobe_events) and can probe func. */
bool feat_kprobe(const char *func);
/* fentry/fexit: BPF trampolines work here and func has BTF. */
bool feat_fentry(const char *func);
/* BPF's 64-bit compare-and-exchange (5.12+), for the rate limiter's buckets. */
bool feat_atomic_cas(void);

#endif
