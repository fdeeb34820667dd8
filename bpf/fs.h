/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The fs record (ext4slower/fsslower), shared by bpf/fs.bpf.c and agent/tracers/fs.c. */
#ifndef PS_FS_H
#define PS_FS_H

#ifndef __VMLINUX_H__ /* user space; BPF gets the types from vmlinux.h */
#include <linux/types.h>
#endif

#define FS_PATH_MAX	4096	/* bytes of path components kept; a power of two */
#define FS_NAME_MAX	256	/* NAME_MAX + NUL: one component */
#define FS_WALK_MAX	48	/* dentries and mount crossings walked per path */
#define FS_MIN_US_DEF	10000	/* --fs-min-us: 10 ms, as ext4slower */

enum fs_op {
	FS_OP_READ = 1,
	FS_OP_WRITE = 2,
	FS_OP_OPEN = 3,
	FS_OP_FSYNC = 4,
	FS_OP_MAX,
};

/* Filesystem types, as bits of --fs-type and fs_event.fs. */
enum fs_type {
	FS_T_EXT4 = 0,
	FS_T_XFS = 1,
	FS_T_BTRFS = 2,
	FS_T_MAX,
};
#define FS_T_BIT(t) (1u << (t))

#define FS_MAGIC_EXT4	0xEF53		/* also ext2/ext3 through the ext4 driver */
#define FS_MAGIC_XFS	0x58465342
#define FS_MAGIC_BTRFS	0x9123683E
#define FS_MAGIC_OVL	0x794c7630

/* fs_event.method: the hook that measured the operation */
enum fs_method {
	FS_M_FENTRY = 1,	/* fentry/fexit on <fs>_file_{read,write}_iter, _open, _sync */
	FS_M_KPROBE = 2,	/* kprobe/kretprobe on the same functions */
	FS_M_SYSCALLS = 3,	/* syscall tracepoints, files picked by superblock magic */
	FS_M_RAW_SYSCALLS = 4,	/* the same through the raw sys_enter/sys_exit dispatcher */
};

/* fs_event.flags */
#define FS_F_PATH_TRUNCATED	(1u << 0) /* deeper than FS_WALK_MAX or FS_PATH_MAX */
#define FS_F_READ_FAULT		(1u << 1) /* a kernel read failed while naming the file */
#define FS_F_OVERLAY		(1u << 2) /* opened through overlayfs; dev/ino are the real file's */
#define FS_F_DATASYNC		(1u << 3) /* fdatasync (or fsync with datasync set) */

/* An operation in flight (BPF map value; the agent sweeps stale ones). */
struct fs_pending {
	__u64 ts_ns;		/* CLOCK_BOOTTIME at the start */
	__u64 file;		/* struct file *; 0 for a syscall open until it returns */
	__u64 offset;
	__u64 size;
	__u32 fs;
	__u32 flags;
};
_Static_assert(sizeof(struct fs_pending) == 40, "fs_pending layout");

/*
 * Variable length: the header plus path_len bytes of buf travel through the
 * ring buffer. buf holds the path components from the file up to the root
 * of the task's mount tree, leaf first, each NUL-terminated (the agent
 * joins them in reverse). It is oversized by one component so the BPF side
 * can write at a masked offset with a constant size.
 */
struct fs_event {
	__u64 ts_ns;		/* CLOCK_BOOTTIME at the start of the operation */
	__u64 latency_ns;
	__u64 cgroup_id;
	__u64 mntns_id;
	__s64 ret;		/* bytes, 0, an fd (open) or -errno */
	__u64 offset;		/* file position at the start (read/write); fsync: start */
	__u64 size;		/* bytes asked for (read/write); 0 when unknown */
	__u64 ino;
	__u32 dev;		/* kernel dev_t of the superblock: major << 20 | minor */
	__u32 pid;		/* tgid */
	__u32 tid;
	__u32 op;		/* enum fs_op */
	__u32 fs;		/* enum fs_type */
	__u32 method;		/* enum fs_method */
	__u32 flags;		/* FS_F_* */
	__u32 path_len;		/* bytes of buf used */
	__u32 depth;		/* path components in buf */
	__u32 _pad;
	char comm[16];
	char buf[FS_PATH_MAX + FS_NAME_MAX];
};

#define FS_EVENT_HDR_SIZE 120
_Static_assert(__builtin_offsetof(struct fs_event, buf) == FS_EVENT_HDR_SIZE,
	       "fs_event header layout");
_Static_assert(sizeof(struct fs_event) == FS_EVENT_HDR_SIZE + FS_PATH_MAX + FS_NAME_MAX,
	       "fs_event layout");

#endif /* PS_FS_H */
