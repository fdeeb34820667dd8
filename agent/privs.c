// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/capability.h>

#include "agent/privs.h"

/* include/linux/sched.h: I am a kernel thread */
#define PF_KTHREAD_FLAG 0x00200000ull

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

int privs_read(struct privs *p)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	FILE *f;

	memset(p, 0, sizeof(*p));
	p->last_cap = -1;
	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	p->eff = (uint64_t)data[1].effective << 32 | data[0].effective;
	f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	if (f) {
		if (fscanf(f, "%d", &p->last_cap) != 1)
			p->last_cap = -1;
		fclose(f);
	}
	return 0;
}

bool privs_has(const struct privs *p, int cap)
{
	return cap >= 0 && cap < 64 && (p->eff >> cap & 1);
}

bool privs_kernel_knows(const struct privs *p, int cap)
{
	/* unknown (no /proc/sys): assume a modern kernel */
	return p->last_cap < 0 || cap <= p->last_cap;
}

bool privs_can_trace(const struct privs *p, char *why, size_t n)
{
	bool bpf = privs_has(p, CAP_BPF), perfmon = privs_has(p, CAP_PERFMON);

	if (privs_has(p, CAP_SYS_ADMIN))
		return true;
	if (!privs_kernel_knows(p, CAP_BPF)) {
		snprintf(why, n, "missing capability CAP_SYS_ADMIN: this kernel predates CAP_BPF "
				 "and CAP_PERFMON (Linux 5.8), so loading BPF programs needs "
				 "CAP_SYS_ADMIN (Helm chart: --set securityContext.legacyKernel=true)");
		return false;
	}
	if (bpf && perfmon)
		return true;
	snprintf(why, n, "missing capabilit%s %s%s%s: %s%s%s (or CAP_SYS_ADMIN, which implies both)",
		 !bpf && !perfmon ? "ies" : "y", !bpf ? "CAP_BPF" : "",
		 !bpf && !perfmon ? " and " : "", !perfmon ? "CAP_PERFMON" : "",
		 !bpf ? "CAP_BPF creates BPF maps and loads programs" : "",
		 !bpf && !perfmon ? "; " : "",
		 !perfmon ? "CAP_PERFMON loads tracing programs and attaches them to "
			    "tracepoints (perf_event_open)" : "");
	return false;
}

bool privs_is_kthreadd(const char *stat, size_t len)
{
	const char *end = stat + len, *p;
	unsigned long long flags;
	char state;
	int ppid;

	/* "2 (kthreadd) S 0 0 0 0 -1 FLAGS ...": comm may hold spaces, ')' ends it last */
	if (len < 13 || memcmp(stat, "2 (kthreadd) ", 13) != 0)
		return false;
	for (p = end; p > stat && p[-1] != ')'; p--)
		;
	if (p - stat != 12)
		return false; /* a ')' later in the line: not the kernel's own kthreadd */
	if (sscanf(p, " %c %d %*d %*d %*d %*d %llu", &state, &ppid, &flags) != 3)
		return false;
	return ppid == 0 && (flags & PF_KTHREAD_FLAG);
}

/* pid 2 is kthreadd, a kernel thread in the initial namespaces, when we see the node's pids */
static int kthreadd_mntns(uint64_t *ino)
{
	char buf[512];
	struct stat st;
	ssize_t n;
	int fd = open("/proc/2/stat", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0 || !privs_is_kthreadd(buf, (size_t)n))
		return ESRCH;
	if (stat("/proc/2/ns/mnt", &st))
		return errno;
	*ino = st.st_ino;
	return 0;
}

int privs_host_mntns(struct host_mntns *h)
{
	struct stat st;

	memset(h, 0, sizeof(*h));
	h->from = HOST_MNTNS_INIT;
	if (stat("/proc/1/ns/mnt", &st) == 0) {
		h->ino = st.st_ino;
		return 0;
	}
	h->err_init = errno;
	h->from = HOST_MNTNS_KTHREADD;
	h->err_kthreadd = kthreadd_mntns(&h->ino);
	if (!h->err_kthreadd)
		return 0;
	h->from = HOST_MNTNS_SELF;
	if (stat("/proc/self/ns/mnt", &st))
		return -errno;
	h->ino = st.st_ino;
	return 0;
}

const char *privs_ptrace_hint(const struct privs *p)
{
	return privs_has(p, CAP_SYS_PTRACE) ?
		       "denied even with CAP_SYS_PTRACE (a non-dumpable process, a security module "
		       "or a user namespace)" :
		       "reading another process's namespaces needs CAP_SYS_PTRACE";
}

int privs_seccomp_mode(void)
{
	char line[128];
	int mode = -1;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Seccomp: %d", &mode) == 1)
			break;
	fclose(f);
	return mode;
}

const char *privs_eperm_hint(void)
{
	struct privs p;
	char why[512];

	if (privs_read(&p) == 0 && privs_can_trace(&p, why, sizeof(why)) &&
	    privs_seccomp_mode() == 2)
		return " although the capabilities are there: a seccomp filter blocks bpf(2) "
		       "(RuntimeDefault profiles without a CAP_BPF rule do, e.g. CRI-O's and "
		       "containerd's or Docker's before 2022); run with the Helm chart's "
		       "securityContext.seccompProfile (Unconfined, or a Localhost profile "
		       "allowing bpf and perf_event_open)";
	return " (needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN)";
}
