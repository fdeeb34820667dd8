/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The open record, shared by bpf/open.bpf.c and agent/tracers/open.c. */
#ifndef PS_OPEN_H
#define PS_OPEN_H

#ifndef __VMLINUX_H__ /* user space; BPF gets the types from vmlinux.h */
#include <linux/types.h>
#endif

#define OPEN_PATH_MAX	4096	/* PATH_MAX: the longest path the kernel accepts, with its NUL */
/*
 * The path is read with one byte more than PATH_MAX allows, so a string the
 * kernel will refuse as too long is told apart from one of exactly
 * PATH_MAX - 1 bytes; the buffer is padded to keep records 8-byte aligned.
 */
#define OPEN_PATH_READ	(OPEN_PATH_MAX + 1)
#define OPEN_PATH_BUF	(OPEN_PATH_MAX + 8)

/* open_event.rflags */
#define OPEN_F_TRUNCATED	(1u << 0) /* the path was longer than PATH_MAX - 1: cut */
#define OPEN_F_READ_FAULT	(1u << 1) /* the path could not be read from user memory */
#define OPEN_F_NO_DIRFD		(1u << 2) /* open(2): no directory fd argument */

/* open_event.syscall */
enum open_syscall {
	OPEN_SC_UNKNOWN = 0,	/* function hooks see every open the same way */
	OPEN_SC_OPEN = 1,
	OPEN_SC_OPENAT = 2,
	OPEN_SC_OPENAT2 = 3,
};

/* open_event.method: the hook that produced the record */
enum open_method {
	OPEN_M_SYSCALLS = 1,	/* syscalls/sys_{enter,exit}_open{,at,at2} */
	OPEN_M_FENTRY = 2,	/* fentry/fexit do_sys_openat2 */
	OPEN_M_KPROBE = 3,	/* kprobe/kretprobe do_sys_openat2 */
	OPEN_M_RAW_SYSCALLS = 4, /* the raw sys_enter/sys_exit dispatcher (bpf/sysraw.h) */
};

/*
 * Variable length: only the header and path_len bytes of path travel
 * through the ring buffer.
 */
struct open_event {
	__u64 ts_ns;		/* return from the call, CLOCK_BOOTTIME */
	__u64 cgroup_id;	/* cgroup v2 id of the task */
	__u64 mntns_id;		/* mount namespace inode */
	__u64 latency_ns;	/* entry to return */
	__u64 flags;		/* O_* flags as passed */
	__u32 mode;		/* creation mode as passed */
	__s32 ret;		/* fd, or -errno */
	__s32 dirfd;		/* directory fd of openat/openat2 (AT_FDCWD is -100) */
	__u32 pid;		/* tgid */
	__u32 tid;
	__u32 uid;
	__u32 path_len;		/* bytes of path used, with the NUL; 0 on a read fault */
	__u16 syscall;		/* enum open_syscall */
	__u8 rflags;		/* OPEN_F_* */
	__u8 method;		/* enum open_method */
	char comm[16];
	char path[OPEN_PATH_BUF];
};

#define OPEN_EVENT_HDR_SIZE 88
_Static_assert(__builtin_offsetof(struct open_event, path) == OPEN_EVENT_HDR_SIZE,
	       "open_event header layout");
_Static_assert(sizeof(struct open_event) == OPEN_EVENT_HDR_SIZE + OPEN_PATH_BUF,
	       "open_event layout");

#endif /* PS_OPEN_H */
