/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The exec record, shared by bpf/exec.bpf.c and agent/tracers/exec.c. */
#ifndef PS_EXEC_H
#define PS_EXEC_H

#ifndef __VMLINUX_H__ /* user space; BPF gets the types from vmlinux.h */
#include <linux/types.h>
#endif

#define EXEC_FILENAME_MAX	4096	/* PATH_MAX, including the NUL */
#define EXEC_ARGS_BYTES_CAP	8192	/* highest --max-args-bytes; a power of two */
#define EXEC_ARGS_BYTES_DEF	4096
#define EXEC_ARGC_CAP		256	/* highest --max-args */
#define EXEC_ARGC_DEF		64

/* exec_event.flags */
#define EXEC_F_ARGS_TRUNCATED	 (1u << 0) /* more args than the limits allowed */
#define EXEC_F_READ_FAULT	 (1u << 1) /* user memory could not be read */
#define EXEC_F_NO_RETVAL	 (1u << 2) /* hook sees successes only (sched_process_exec) */
#define EXEC_F_ARGS_FAULT	 (1u << 3) /* BPF side only: argv unreadable at enter */

/* exec_event.method: the hook that produced the record */
enum exec_method {
	EXEC_M_SYSCALLS = 1,	/* syscalls/sys_{enter,exit}_execve{,at} */
	EXEC_M_SCHED_BTF = 2,	/* tp_btf/sched_process_exec */
	EXEC_M_SCHED_RAW = 3,	/* raw_tp/sched_process_exec */
	EXEC_M_FENTRY = 4,	/* fentry/fexit on the execve{,at} syscall functions */
	EXEC_M_RAW_SYSCALLS = 5, /* the raw sys_enter/sys_exit dispatcher (bpf/sysraw.h) */
};

/*
 * Variable length: only the header plus filename_len + args_len bytes of buf
 * travel through the ring buffer. buf holds the filename (NUL-terminated),
 * then the arguments, each NUL-terminated. buf is oversized so the BPF side
 * can write at a masked offset with a constant size (the verifier cannot
 * relate "offset + size" to the buffer end otherwise).
 */
struct exec_event {
	__u64 ts_ns;		/* CLOCK_BOOTTIME */
	__u64 cgroup_id;	/* cgroup v2 id of the task */
	__u64 mntns_id;		/* mount namespace inode */
	__u32 pid;		/* tgid */
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__s32 retval;		/* 0 or -errno */
	__u32 filename_len;	/* bytes of buf used by the filename, with its NUL */
	__u32 args_len;		/* bytes of buf used by the arguments */
	__u32 flags;		/* EXEC_F_* */
	__u32 method;		/* enum exec_method */
	char comm[16];
	char buf[EXEC_FILENAME_MAX + 2 * EXEC_ARGS_BYTES_CAP];
};

#define EXEC_EVENT_HDR_SIZE 80
_Static_assert(__builtin_offsetof(struct exec_event, buf) == EXEC_EVENT_HDR_SIZE,
	       "exec_event header layout");
_Static_assert(sizeof(struct exec_event) ==
		       EXEC_EVENT_HDR_SIZE + EXEC_FILENAME_MAX + 2 * EXEC_ARGS_BYTES_CAP,
	       "exec_event layout");

#endif /* PS_EXEC_H */
