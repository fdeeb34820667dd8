/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The privileges the agent runs with: which capabilities it has and lacks,
 * checked before anything is loaded so that a deployment missing one gets a
 * message naming it (not "Operation not permitted" from deep in libbpf).
 * Library-style: returns results, the caller logs.
 */
#ifndef PS_PRIVS_H
#define PS_PRIVS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct privs {
	uint64_t eff;		/* effective capability set */
	int last_cap;		/* /proc/sys/kernel/cap_last_cap, -1 if unknown */
};

/* Read the effective set (capget) and the kernel's last capability. -errno */
int privs_read(struct privs *p);
bool privs_has(const struct privs *p, int cap);
/* The kernel knows this capability (CAP_BPF and CAP_PERFMON arrived in 5.8). */
bool privs_kernel_knows(const struct privs *p, int cap);

/*
 * Can this process load and attach tracing programs? On kernels with CAP_BPF:
 * CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN; before 5.8: CAP_SYS_ADMIN.
 * false with a message naming what is missing and why it is needed.
 */
bool privs_can_trace(const struct privs *p, char *why, size_t n);

/*
 * The node's mount namespace inode, for --exclude-host and attribution by
 * mount namespace. With hostPID: /proc/1/ns/mnt (the node's init), else
 * /proc/2/ns/mnt when pid 2 is kthreadd (a kernel thread: always in the
 * initial namespaces; some inits are unreadable, e.g. non-dumpable ones),
 * else the agent's own -- correct only when the agent is not in a container.
 * Reading another process's ns links needs CAP_SYS_PTRACE unless our
 * capabilities cover its own (never for pid 1 or kthreadd from a pod).
 */
enum host_mntns_from { HOST_MNTNS_INIT, HOST_MNTNS_KTHREADD, HOST_MNTNS_SELF };
struct host_mntns {
	uint64_t ino;
	enum host_mntns_from from;
	int err_init;		/* errno of /proc/1/ns/mnt; 0 when it was read */
	int err_kthreadd;	/* errno of /proc/2/ns/mnt; ESRCH: pid 2 is not kthreadd */
};
/* 0, or -errno when not even /proc/self/ns/mnt can be read. */
int privs_host_mntns(struct host_mntns *h);
/* Is this /proc/2/stat content the kernel's kthreadd (ppid 0, PF_KTHREAD)? */
bool privs_is_kthreadd(const char *stat, size_t len);
/* Seccomp mode of this process (/proc/self/status): 0 none, 1 strict, 2 filter; -1 unknown. */
int privs_seccomp_mode(void);
/*
 * Why bpf() said EPERM, for the log line: a missing capability, or, when the
 * capabilities are there, a seccomp filter (RuntimeDefault profiles without
 * a CAP_BPF rule block bpf(2) even when CAP_BPF is granted).
 */
const char *privs_eperm_hint(void);
/* Why an ns link of another process was unreadable with EACCES, for the log line. */
const char *privs_ptrace_hint(const struct privs *p);

#endif
