// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fs tracer (ext4slower / fsslower, per pod): read, write, open and fsync on
 * files of the chosen filesystem types that take at least targ_min_ns.
 *
 * Three methods, one chosen by the agent before load:
 *   fentry:   fentry/fexit on <fs>_file_read_iter, _write_iter, _open and the
 *             fsync operation, one program set per filesystem type;
 *   kprobe:   kprobes/kretprobes on the same functions, one program per
 *             operation attached by the agent to each chosen filesystem's;
 *   syscalls: syscall tracepoints, keeping calls whose descriptor is a
 *             regular file on a chosen filesystem (fd -> struct file ->
 *             superblock magic), looking through overlayfs to the real file.
 * The first two see I/O from io_uring and the kernel too; the third sees
 * what tasks ask for by syscall, latency including the VFS around the
 * filesystem.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "common.bpf.h"
#include "core_fixes.bpf.h"
#include "fs.h"
#include "sysraw.bpf.h"

#define S_IFMT	00170000
#define S_IFREG	0100000
#define EIOCBQUEUED 529	/* kernel-internal: async I/O queued, completes later */

const volatile __u64 targ_min_ns = FS_MIN_US_DEF * 1000ull;
const volatile __u32 targ_fs_mask = FS_T_BIT(FS_T_EXT4);

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* resized by the agent */
} ps_fs_rb SEC(".maps");

/*
 * Operations in flight, keyed by op << 32 | tid: an O_SYNC write calls the
 * fsync operation from inside the write, and both must keep their start.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct fs_pending);
} ps_fs_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fs_event);
} ps_fs_heap SEC(".maps");

static __always_inline __u64 pending_key(__u32 op)
{
	return (__u64)op << 32 | (__u32)bpf_get_current_pid_tgid();
}

static __always_inline int fs_type_of_magic(unsigned long magic)
{
	switch (magic) {
	case FS_MAGIC_EXT4:
		return FS_T_EXT4;
	case FS_MAGIC_XFS:
		return FS_T_XFS;
	case FS_MAGIC_BTRFS:
		return FS_T_BTRFS;
	default:
		return -1;
	}
}

/*
 * The chosen filesystem type a file is on, or -1: regular files only, as
 * the filesystems' file operations (ext4_file_read_iter, ...) see. For an
 * overlayfs file the type is the real (upper or lower) file's.
 */
static __always_inline int fs_type_of_file(struct file *f, __u32 *flags)
{
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	unsigned long magic;
	int fs;

	if (!inode || (BPF_CORE_READ(inode, i_mode) & S_IFMT) != S_IFREG)
		return -1;
	magic = BPF_CORE_READ(inode, i_sb, s_magic);
	if (magic == FS_MAGIC_OVL) {
		f = ps_ovl_real_file(f);
		if (!f)
			return -1;
		magic = BPF_CORE_READ(f, f_inode, i_sb, s_magic);
		*flags |= FS_F_OVERLAY;
	}
	fs = fs_type_of_magic(magic);
	if (fs < 0 || !(targ_fs_mask & FS_T_BIT(fs)))
		return -1;
	return fs;
}

/*
 * Count the hook as seen; false (counted as filtered) when the task is not
 * selected. Done before anything else: most calls end here, cheaply.
 */
static __always_inline bool fs_admit(struct ps_stats *s)
{
	struct task_struct *t = ps_current_task_btf();

	ps_count(s, PS_STAT_SEEN);
	if (ps_is_self(t) || !ps_selected(t)) {
		ps_count(s, PS_STAT_FILTERED);
		return false;
	}
	return true;
}

/* Remember an admitted operation's start; with check_file, f's type decides. */
static __always_inline int fs_track(struct ps_stats *s, __u32 op, __s32 fs, struct file *f,
				    __u64 offset, __u64 size, __u32 flags, bool check_file)
{
	struct fs_pending p = {};
	__u64 key;

	if (check_file) {
		if (!f) {
			ps_count(s, PS_STAT_FILTERED);
			return 0;
		}
		fs = fs_type_of_file(f, &flags);
		if (fs < 0) {
			ps_count(s, PS_STAT_FILTERED);
			return 0;
		}
	}
	p.ts_ns = bpf_ktime_get_boot_ns();
	p.file = (__u64)f;
	p.offset = offset;
	p.size = size;
	p.fs = fs;
	p.flags = flags;
	key = pending_key(op);
	if (bpf_map_update_elem(&ps_fs_pending, &key, &p, BPF_ANY))
		ps_count(s, PS_STAT_MAP_FULL);
	return 0;
}

static __always_inline int fs_begin(__u32 op, __s32 fs, struct file *f, __u64 offset,
				    __u64 size, __u32 flags, bool check_file)
{
	struct ps_stats *s = ps_stats_get();

	if (!fs_admit(s))
		return 0;
	return fs_track(s, op, fs, f, offset, size, flags, check_file);
}

/*
 * Name the file: walk d_parent up to the root of its mount, cross to the
 * mount point in the parent mount, and so on up to the root of the task's
 * mount tree (what d_path does, bounded). Components go leaf first. The
 * walk runs under bpf_loop (5.17+): as a plain bounded loop the verifier
 * has to explore every mix of crossings and components and gives up.
 */
struct walk_ctx {
	struct fs_event *e;
	struct dentry *d;
	struct mount *mnt;
	__u32 off;
	__u32 depth;
	bool done;
};

static long walk_step(__u32 i, void *arg)
{
	struct walk_ctx *w = arg;
	struct dentry *d = w->d, *parent, *root;
	struct mount *mnt = w->mnt, *pmnt;
	struct fs_event *e = w->e;
	const unsigned char *name;
	__u32 off = w->off;
	long n;

	root = BPF_CORE_READ(mnt, mnt.mnt_root);
	parent = BPF_CORE_READ(d, d_parent);
	if (d == root || d == parent) {
		pmnt = BPF_CORE_READ(mnt, mnt_parent);
		if (!pmnt || pmnt == mnt) {
			w->done = true;
			return 1;
		}
		w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = pmnt;
		return 0;
	}
	if (off >= FS_PATH_MAX)
		return 1;
	name = BPF_CORE_READ(d, d_name.name);
	n = bpf_probe_read_kernel_str(&e->buf[off & (FS_PATH_MAX - 1)], FS_NAME_MAX, name);
	if (n <= 0) {
		e->flags |= FS_F_READ_FAULT;
		w->done = true; /* what we have is all we will get */
		return 1;
	}
	w->off = off + n;
	w->depth++;
	w->d = parent;
	return 0;
}

static __always_inline void fs_fill_path(struct fs_event *e, struct file *f)
{
	struct vfsmount *vm = BPF_CORE_READ(f, f_path.mnt);
	struct walk_ctx w = {
		.e = e,
		.d = BPF_CORE_READ(f, f_path.dentry),
		.mnt = (void *)vm - bpf_core_field_offset(struct mount, mnt),
	};

	bpf_loop(FS_WALK_MAX, walk_step, &w, 0);
	if (!w.done)
		e->flags |= FS_F_PATH_TRUNCATED;
	e->path_len = w.off;
	e->depth = w.depth;
}

/* Finish an operation: drop it below the threshold, else emit a record. */
static __always_inline int fs_end(__u32 op, __s64 ret, __u32 method)
{
	struct task_struct *task;
	struct fs_pending *p;
	struct fs_event *e;
	struct ps_stats *s;
	struct file *f;
	__u64 key = pending_key(op), now, delta, id, size;
	__u32 zero = 0, flags;
	int fs;

	p = bpf_map_lookup_elem(&ps_fs_pending, &key);
	if (!p)
		return 0;
	now = bpf_ktime_get_boot_ns();
	delta = now - p->ts_ns;
	s = ps_stats_get();
	f = (struct file *)p->file;
	fs = p->fs;
	flags = p->flags;
	if (delta < targ_min_ns || ret == -EIOCBQUEUED)
		goto filtered;
	if (!f) { /* syscall open: the file exists only now */
		if (ret < 0)
			goto filtered;
		f = ps_fd_file(ret);
		if (!f)
			goto filtered;
		fs = fs_type_of_file(f, &flags);
		if (fs < 0)
			goto filtered;
	}
	e = bpf_map_lookup_elem(&ps_fs_heap, &zero);
	if (!e)
		goto out;
	task = (struct task_struct *)bpf_get_current_task();
	id = bpf_get_current_pid_tgid();
	e->ts_ns = p->ts_ns;
	e->latency_ns = delta;
	e->cgroup_id = ps_current_cgroup_id();
	e->mntns_id = ps_task_mntns(task);
	e->ret = ret;
	e->offset = p->offset;
	e->size = p->size;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->op = op;
	e->fs = fs;
	e->method = method;
	e->flags = flags;
	e->_pad = 0;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	{
		/* identify the file that holds the data (overlay: the real one) */
		struct file *real = (flags & FS_F_OVERLAY) ? ps_ovl_real_file(f) : f;
		struct inode *inode = BPF_CORE_READ(real, f_inode);

		e->ino = BPF_CORE_READ(inode, i_ino);
		e->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	}
	fs_fill_path(e, f);
	if (e->flags & FS_F_READ_FAULT)
		ps_count(s, PS_STAT_READ_ERR);
	size = e->path_len;
	if (size > FS_PATH_MAX + FS_NAME_MAX)
		size = FS_PATH_MAX + FS_NAME_MAX;
	size += FS_EVENT_HDR_SIZE;
	ps_output(&ps_fs_rb, s, e->cgroup_id, e, size);
	goto out;
filtered:
	ps_count(s, PS_STAT_FILTERED);
out:
	bpf_map_delete_elem(&ps_fs_pending, &key);
	return 0;
}

/* ---- syscalls: tracepoints on entry and exit ---- */

/* Admit the task first: the descriptor walk is for selected tasks only. */
static __always_inline int sys_rw(__u32 op, __u64 fd, __s64 pos, __u64 size, __u32 flags)
{
	struct ps_stats *s = ps_stats_get();
	struct file *f;
	__u64 off = 0;

	if (!fs_admit(s))
		return 0;
	f = ps_fd_file(fd);
	if (pos >= 0)
		off = pos;
	else if (f && op != FS_OP_FSYNC)
		off = BPF_CORE_READ(f, f_pos);
	return fs_track(s, op, -1, f, off, size, flags, true);
}

/* args: fd, then the position (-1: the file's) and the size, -1/0 when absent */
#define SYS_ENTER_RW(name, tp, op, pos, size)                              \
	SEC("tracepoint/syscalls/sys_enter_" #tp)                          \
	int name(struct trace_event_raw_sys_enter *ctx)                    \
	{                                                                  \
		return sys_rw(op, ctx->args[0], pos, size, 0);             \
	}

SYS_ENTER_RW(ps_fs_sys_read, read, FS_OP_READ, -1, ctx->args[2])
SYS_ENTER_RW(ps_fs_sys_pread, pread64, FS_OP_READ, ctx->args[3], ctx->args[2])
SYS_ENTER_RW(ps_fs_sys_readv, readv, FS_OP_READ, -1, 0)
SYS_ENTER_RW(ps_fs_sys_preadv, preadv, FS_OP_READ, ctx->args[3], 0)
SYS_ENTER_RW(ps_fs_sys_write, write, FS_OP_WRITE, -1, ctx->args[2])
SYS_ENTER_RW(ps_fs_sys_pwrite, pwrite64, FS_OP_WRITE, ctx->args[3], ctx->args[2])
SYS_ENTER_RW(ps_fs_sys_writev, writev, FS_OP_WRITE, -1, 0)
SYS_ENTER_RW(ps_fs_sys_pwritev, pwritev, FS_OP_WRITE, ctx->args[3], 0)

SEC("tracepoint/syscalls/sys_enter_fsync")
int ps_fs_sys_fsync(struct trace_event_raw_sys_enter *ctx)
{
	return sys_rw(FS_OP_FSYNC, ctx->args[0], 0, 0, 0);
}

SEC("tracepoint/syscalls/sys_enter_fdatasync")
int ps_fs_sys_fdsync(struct trace_event_raw_sys_enter *ctx)
{
	return sys_rw(FS_OP_FSYNC, ctx->args[0], 0, 0, FS_F_DATASYNC);
}

/* opens: the file is known at exit; the fs check happens there */
SEC("tracepoint/syscalls/sys_enter_openat")
int ps_fs_sys_openat(struct trace_event_raw_sys_enter *ctx)
{
	return fs_begin(FS_OP_OPEN, -1, NULL, 0, 0, 0, false);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int ps_fs_sys_openat2(struct trace_event_raw_sys_enter *ctx)
{
	return fs_begin(FS_OP_OPEN, -1, NULL, 0, 0, 0, false);
}

SEC("tracepoint/syscalls/sys_enter_open")
int ps_fs_sys_open(struct trace_event_raw_sys_enter *ctx)
{
	return fs_begin(FS_OP_OPEN, -1, NULL, 0, 0, 0, false);
}

#define SYS_EXIT(name, tp, op)                                            \
	SEC("tracepoint/syscalls/sys_exit_" #tp)                          \
	int name(struct trace_event_raw_sys_exit *ctx)                    \
	{                                                                 \
		return fs_end(op, ctx->ret, FS_M_SYSCALLS);               \
	}

SYS_EXIT(ps_fs_sys_read_x, read, FS_OP_READ)
SYS_EXIT(ps_fs_sys_pread_x, pread64, FS_OP_READ)
SYS_EXIT(ps_fs_sys_readv_x, readv, FS_OP_READ)
SYS_EXIT(ps_fs_sys_preadv_x, preadv, FS_OP_READ)
SYS_EXIT(ps_fs_sys_write_x, write, FS_OP_WRITE)
SYS_EXIT(ps_fs_sys_pwrite_x, pwrite64, FS_OP_WRITE)
SYS_EXIT(ps_fs_sys_writev_x, writev, FS_OP_WRITE)
SYS_EXIT(ps_fs_sys_pwritev_x, pwritev, FS_OP_WRITE)
SYS_EXIT(ps_fs_sys_fsync_x, fsync, FS_OP_FSYNC)
SYS_EXIT(ps_fs_sys_fdsync_x, fdatasync, FS_OP_FSYNC)
SYS_EXIT(ps_fs_sys_openat_x, openat, FS_OP_OPEN)
SYS_EXIT(ps_fs_sys_openat2_x, openat2, FS_OP_OPEN)
SYS_EXIT(ps_fs_sys_open_x, open, FS_OP_OPEN)

/*
 * ---- the same through the raw_syscalls dispatcher (bpf/sysraw.bpf.c) ----
 * Arguments from the user's registers; then on to the next tracer's handler.
 */
#define RAW_ENTER_RW(name, op, pos, size, flags)                           \
	SEC("tp_btf/sys_enter")                                            \
	int BPF_PROG(name, struct pt_regs *regs, long id)                  \
	{                                                                  \
		sys_rw(op, PS_SYS_ARG0(regs), pos, size, flags);           \
		ps_sys_next(ctx, &ps_sys_enter_progs, id, PS_SYS_SLOT_FS + 1); \
		return 0;                                                  \
	}

RAW_ENTER_RW(ps_fs_rs_read, FS_OP_READ, -1, PS_SYS_ARG2(regs), 0)
RAW_ENTER_RW(ps_fs_rs_pread, FS_OP_READ, PS_SYS_ARG3(regs), PS_SYS_ARG2(regs), 0)
RAW_ENTER_RW(ps_fs_rs_readv, FS_OP_READ, -1, 0, 0)
RAW_ENTER_RW(ps_fs_rs_preadv, FS_OP_READ, PS_SYS_ARG3(regs), 0, 0)
RAW_ENTER_RW(ps_fs_rs_write, FS_OP_WRITE, -1, PS_SYS_ARG2(regs), 0)
RAW_ENTER_RW(ps_fs_rs_pwrite, FS_OP_WRITE, PS_SYS_ARG3(regs), PS_SYS_ARG2(regs), 0)
RAW_ENTER_RW(ps_fs_rs_writev, FS_OP_WRITE, -1, 0, 0)
RAW_ENTER_RW(ps_fs_rs_pwritev, FS_OP_WRITE, PS_SYS_ARG3(regs), 0, 0)
RAW_ENTER_RW(ps_fs_rs_fsync, FS_OP_FSYNC, 0, 0, 0)
RAW_ENTER_RW(ps_fs_rs_fdsync, FS_OP_FSYNC, 0, 0, FS_F_DATASYNC)

/* one for open, openat and openat2: the file is known at exit */
SEC("tp_btf/sys_enter")
int BPF_PROG(ps_fs_rs_open, struct pt_regs *regs, long id)
{
	fs_begin(FS_OP_OPEN, -1, NULL, 0, 0, 0, false);
	ps_sys_next(ctx, &ps_sys_enter_progs, id, PS_SYS_SLOT_FS + 1);
	return 0;
}

#define RAW_EXIT(name, op)                                                 \
	SEC("tp_btf/sys_exit")                                             \
	int BPF_PROG(name, struct pt_regs *regs, long ret)                 \
	{                                                                  \
		fs_end(op, ret, FS_M_RAW_SYSCALLS);                        \
		ps_sys_next(ctx, &ps_sys_exit_progs, PS_SYS_NR(regs), PS_SYS_SLOT_FS + 1); \
		return 0;                                                  \
	}

RAW_EXIT(ps_fs_rs_read_x, FS_OP_READ)
RAW_EXIT(ps_fs_rs_write_x, FS_OP_WRITE)
RAW_EXIT(ps_fs_rs_open_x, FS_OP_OPEN)
RAW_EXIT(ps_fs_rs_fsync_x, FS_OP_FSYNC)

/* ---- fentry/fexit: one set per filesystem type ---- */

static __always_inline int iter_begin(__u32 op, __u32 fs, struct kiocb *iocb,
				      struct iov_iter *it)
{
	return fs_begin(op, fs, BPF_CORE_READ(iocb, ki_filp), BPF_CORE_READ(iocb, ki_pos),
			BPF_CORE_READ(it, count), 0, false);
}

#define FS_FENTRY_SET(fsn, FST, rd, wr, op, sy)                                         \
	SEC("fentry/" #rd)                                                              \
	int BPF_PROG(ps_fs_##fsn##_rd, struct kiocb *iocb, struct iov_iter *to)         \
	{                                                                               \
		return iter_begin(FS_OP_READ, FST, iocb, to);                           \
	}                                                                               \
	SEC("fexit/" #rd)                                                               \
	int BPF_PROG(ps_fs_##fsn##_rd_x, struct kiocb *iocb, struct iov_iter *to,       \
		     ssize_t ret)                                                       \
	{                                                                               \
		return fs_end(FS_OP_READ, ret, FS_M_FENTRY);                            \
	}                                                                               \
	SEC("fentry/" #wr)                                                              \
	int BPF_PROG(ps_fs_##fsn##_wr, struct kiocb *iocb, struct iov_iter *from)       \
	{                                                                               \
		return iter_begin(FS_OP_WRITE, FST, iocb, from);                        \
	}                                                                               \
	SEC("fexit/" #wr)                                                               \
	int BPF_PROG(ps_fs_##fsn##_wr_x, struct kiocb *iocb, struct iov_iter *from,     \
		     ssize_t ret)                                                       \
	{                                                                               \
		return fs_end(FS_OP_WRITE, ret, FS_M_FENTRY);                           \
	}                                                                               \
	SEC("fentry/" #op)                                                              \
	int BPF_PROG(ps_fs_##fsn##_op, struct inode *inode, struct file *file)          \
	{                                                                               \
		return fs_begin(FS_OP_OPEN, FST, file, 0, 0, 0, false);                 \
	}                                                                               \
	SEC("fexit/" #op)                                                               \
	int BPF_PROG(ps_fs_##fsn##_op_x, struct inode *inode, struct file *file, int ret) \
	{                                                                               \
		return fs_end(FS_OP_OPEN, ret, FS_M_FENTRY);                            \
	}                                                                               \
	SEC("fentry/" #sy)                                                              \
	int BPF_PROG(ps_fs_##fsn##_sy, struct file *file, loff_t start, loff_t end,     \
		     int datasync)                                                      \
	{                                                                               \
		return fs_begin(FS_OP_FSYNC, FST, file, start, 0,                       \
				datasync ? FS_F_DATASYNC : 0, false);                   \
	}                                                                               \
	SEC("fexit/" #sy)                                                               \
	int BPF_PROG(ps_fs_##fsn##_sy_x, struct file *file, loff_t start, loff_t end,   \
		     int datasync, int ret)                                             \
	{                                                                               \
		return fs_end(FS_OP_FSYNC, ret, FS_M_FENTRY);                           \
	}

FS_FENTRY_SET(ext4, FS_T_EXT4, ext4_file_read_iter, ext4_file_write_iter, ext4_file_open,
	      ext4_sync_file)
FS_FENTRY_SET(xfs, FS_T_XFS, xfs_file_read_iter, xfs_file_write_iter, xfs_file_open,
	      xfs_file_fsync)
FS_FENTRY_SET(btrfs, FS_T_BTRFS, btrfs_file_read_iter, btrfs_file_write_iter, btrfs_file_open,
	      btrfs_sync_file)

/*
 * ---- kprobes: one program per operation; the agent attaches each to the
 * function of every chosen filesystem, the type then comes from the file ----
 */

static __always_inline int kp_begin(__u32 op, struct file *f, __u64 offset, __u64 size,
				    __u32 flags)
{
	__u32 fl = flags;
	int fs;

	if (!f)
		return 0;
	fs = fs_type_of_magic(BPF_CORE_READ(f, f_inode, i_sb, s_magic));
	if (fs < 0)
		return 0;
	return fs_begin(op, fs, f, offset, size, fl, false);
}

SEC("kprobe")
int BPF_KPROBE(ps_fs_kp_rd, struct kiocb *iocb, struct iov_iter *to)
{
	return kp_begin(FS_OP_READ, BPF_CORE_READ(iocb, ki_filp), BPF_CORE_READ(iocb, ki_pos),
			BPF_CORE_READ(to, count), 0);
}

SEC("kprobe")
int BPF_KPROBE(ps_fs_kp_wr, struct kiocb *iocb, struct iov_iter *from)
{
	return kp_begin(FS_OP_WRITE, BPF_CORE_READ(iocb, ki_filp), BPF_CORE_READ(iocb, ki_pos),
			BPF_CORE_READ(from, count), 0);
}

SEC("kprobe")
int BPF_KPROBE(ps_fs_kp_op, struct inode *inode, struct file *file)
{
	return kp_begin(FS_OP_OPEN, file, 0, 0, 0);
}

SEC("kprobe")
int BPF_KPROBE(ps_fs_kp_sy, struct file *file, loff_t start, loff_t end, int datasync)
{
	return kp_begin(FS_OP_FSYNC, file, start, 0, datasync ? FS_F_DATASYNC : 0);
}

SEC("kretprobe")
int BPF_KRETPROBE(ps_fs_kp_rd_x, long ret)
{
	return fs_end(FS_OP_READ, ret, FS_M_KPROBE);
}

SEC("kretprobe")
int BPF_KRETPROBE(ps_fs_kp_wr_x, long ret)
{
	return fs_end(FS_OP_WRITE, ret, FS_M_KPROBE);
}

SEC("kretprobe")
int BPF_KRETPROBE(ps_fs_kp_op_x, int ret)
{
	return fs_end(FS_OP_OPEN, ret, FS_M_KPROBE);
}

SEC("kretprobe")
int BPF_KRETPROBE(ps_fs_kp_sy_x, int ret)
{
	return fs_end(FS_OP_FSYNC, ret, FS_M_KPROBE);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
