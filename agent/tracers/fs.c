// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* fs tracer, user side: hook choice per filesystem, configuration, decoding. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "agent/tracers/fs.h"
#include "fs.skel.h"
#include "agent/clock.h"
#include "agent/http/pod_metrics.h"
#include "agent/tracers/kfeatures.h"
#include "agent/tracers/sysraw.h"
#include "agent/log.h"
#include "agent/tracers/mapsweep.h"

/* an operation still in flight after this long lost its exit (should not happen) */
#define FS_PENDING_MAX_AGE_NS (600ull * 1000000000ull)

/*
 * The file operations each filesystem type's fentry/kprobe methods hook; its
 * programs are named ps_fs_<fs_type_name()>_<op>.
 */
struct fs_funcs {
	const char *fn[FS_OP_MAX];	/* by enum fs_op */
};

static const struct fs_funcs fs_funcs[FS_T_MAX] = {
	[FS_T_EXT4] = { { NULL, "ext4_file_read_iter", "ext4_file_write_iter", "ext4_file_open",
			  "ext4_sync_file" } },
	[FS_T_XFS] = { { NULL, "xfs_file_read_iter", "xfs_file_write_iter", "xfs_file_open",
			 "xfs_file_fsync" } },
	[FS_T_BTRFS] = { { NULL, "btrfs_file_read_iter", "btrfs_file_write_iter", "btrfs_file_open",
			   "btrfs_sync_file" } },
};

/* Syscall tracepoint pairs: name, and whether the method needs it. */
static const struct {
	const char *sc;
	bool required;
} syscalls[] = {
	{ "read", true },    { "write", true },	   { "pread64", true }, { "pwrite64", true },
	{ "readv", true },   { "writev", true },   { "preadv", false }, { "pwritev", false },
	{ "openat", true },  { "openat2", false }, { "open", false },	{ "fsync", true },
	{ "fdatasync", true },
};

/* Kernel name suffix of a syscall's BPF programs (ps_fs_sys_<p>, _<p>_x). */
static const char *const sys_prog[] = {
	"read", "write", "pread", "pwrite", "readv", "writev", "preadv", "pwritev",
	"openat", "openat2", "open", "fsync", "fdsync",
};
_Static_assert(sizeof(sys_prog) / sizeof(sys_prog[0]) == sizeof(syscalls) / sizeof(syscalls[0]),
	       "one program name per syscall");
/*
 * raw_syscalls: the handlers of each syscall, ps_fs_rs_<enter> and
 * ps_fs_rs_<exit>_x (the exit by operation; the opens share one entry).
 */
static const struct {
	const char *enter, *exit;
} raw_prog[] = {
	{ "read", "read" },   { "write", "write" },   { "pread", "read" },  { "pwrite", "write" },
	{ "readv", "read" },  { "writev", "write" },  { "preadv", "read" }, { "pwritev", "write" },
	{ "open", "open" },   { "open", "open" },     { "open", "open" },   { "fsync", "fsync" },
	{ "fdsync", "fsync" },
};
_Static_assert(sizeof(raw_prog) / sizeof(raw_prog[0]) == sizeof(syscalls) / sizeof(syscalls[0]),
	       "one handler pair per syscall");

static struct tracer_obj obj;		/* obj.skel: struct fs_bpf */
static uint64_t malformed, orphaned;
/* the kprobe method's links: an entry and a return probe per op and filesystem */
_Static_assert(FS_T_MAX * (FS_OP_MAX - 1) * 2 <= TRACER_MAX_LINKS, "raise TRACER_MAX_LINKS");
static char joined[FS_JOINED_MAX];

int fs_type_from_name(const char *name)
{
	for (int t = 0; t < FS_T_MAX; t++)
		if (strcmp(fs_type_name(t), name) == 0)
			return t;
	return -1;
}

/* Every file operation of filesystem t can be hooked with check(). */
static bool fs_hookable(int t, bool (*check)(const char *func), const char **missing)
{
	for (int op = 1; op < FS_OP_MAX; op++) {
		if (!check(fs_funcs[t].fn[op])) {
			if (missing)
				*missing = fs_funcs[t].fn[op];
			return false;
		}
	}
	return true;
}

/* --fs-type; the function-hooking methods need every chosen type's functions */
static uint32_t fs_types = FS_T_BIT(FS_T_EXT4);

static void fs_configure(const struct ps_config *cfg)
{
	fs_types = cfg->fs_types;
}

static bool all_hookable(bool (*check)(const char *func))
{
	for (int t = 0; t < FS_T_MAX; t++)
		if ((fs_types & FS_T_BIT(t)) && !fs_hookable(t, check, NULL))
			return false;
	return true;
}

/* The file is named by a walk under bpf_loop (5.17+), whatever the method. */
static bool have_bpf_loop(void)
{
	static int have = -1;

	if (have < 0)
		have = libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_loop, NULL) == 1;
	return have;
}

/*
 * A filesystem built as a module (xfs, btrfs on most distributions) has its
 * functions outside vmlinux BTF: fentry is then unavailable and kprobes,
 * which see module functions once the module is loaded, come next.
 */
static bool have_fentry(void)
{
	return have_bpf_loop() && all_hookable(feat_fentry);
}

static bool have_kprobe(void)
{
	return have_bpf_loop() && all_hookable(feat_kprobe);
}

/* Both tracepoints of a syscall exist. */
static bool have_sys_pair(const char *sc)
{
	char enter[64], exit_[64];

	snprintf(enter, sizeof(enter), "sys_enter_%s", sc);
	snprintf(exit_, sizeof(exit_), "sys_exit_%s", sc);
	return feat_tracepoint("syscalls", enter) && feat_tracepoint("syscalls", exit_);
}

static bool have_syscalls(void)
{
	if (!have_bpf_loop())
		return false;
	for (size_t i = 0; i < sizeof(syscalls) / sizeof(syscalls[0]); i++)
		if (syscalls[i].required && !have_sys_pair(syscalls[i].sc))
			return false;
	return true;
}

static bool have_raw_syscalls(void)
{
	if (!have_bpf_loop() || !sysraw_available())
		return false;
	for (size_t i = 0; i < sizeof(syscalls) / sizeof(syscalls[0]); i++)
		if (syscalls[i].required && !sysraw_has_syscall(syscalls[i].sc))
			return false;
	return true;
}

static const struct hook_method methods[] = {
	{ FS_M_FENTRY, "fentry",
	  "fentry/fexit <fs>_file_{read,write}_iter, <fs>_file_open, fsync op", have_fentry },
	{ FS_M_KPROBE, "kprobe", "kprobe/kretprobe on the same functions", have_kprobe },
	{ FS_M_SYSCALLS, "syscalls",
	  "tracepoint syscalls/sys_{enter,exit}_{read,write,pread64,pwrite64,"
	  "readv,writev,openat,fsync,fdatasync}, fd -> file -> superblock",
	  have_syscalls },
	{ FS_M_RAW_SYSCALLS, "raw_syscalls",
	  "tp_btf sys_enter/sys_exit: one dispatcher for exec, open, fs by syscall number",
	  have_raw_syscalls },
};

int fs_decode(const void *data, size_t size, char *out, struct fs_view *v)
{
	const struct fs_event *e = data;
	const char *p, *end, *nul;
	size_t total = 0, n, pos, len0 = 0;
	uint32_t count = 0;

	if (size < FS_EVENT_HDR_SIZE || e->path_len > FS_PATH_MAX + FS_NAME_MAX ||
	    FS_EVENT_HDR_SIZE + (size_t)e->path_len > size || e->op == 0 || e->op >= FS_OP_MAX ||
	    e->fs >= FS_T_MAX)
		return -EINVAL;
	memset(v, 0, sizeof(*v));
	v->e = e;
	v->path_truncated = e->flags & FS_F_PATH_TRUNCATED;

	/* components leaf first, NUL-terminated; a cut-off last one ends the record */
	end = e->buf + e->path_len;
	for (p = e->buf; p < end; p = nul + 1) {
		nul = memchr(p, '\0', (size_t)(end - p));
		if (!nul) {
			nul = end;
			v->path_truncated = true;
		}
		n = (size_t)(nul - p);
		if (!count)
			len0 = n;
		total += n + 1; /* and its '/' */
		count++;
	}
	if (v->path_truncated && total)
		total--; /* no leading '/' on a partial path */

	/* write from the end backwards: the leaf goes last */
	pos = total;
	for (p = e->buf; p < end && count; p = nul + 1, count--) {
		nul = memchr(p, '\0', (size_t)(end - p));
		if (!nul)
			nul = end;
		n = (size_t)(nul - p);
		pos -= n;
		memcpy(out + pos, p, n);
		if (pos)
			out[--pos] = '/';
	}
	v->path = out;
	v->path_len = total;
	v->name = out + total - len0;
	v->name_len = len0;
	v->wall_ns = clock_wall_from_boot(e->ts_ns);
	return 0;
}

static int handle_event(void *ctx, void *data, size_t size)
{
	struct fs_view v;

	(void)ctx;
	if (fs_decode(data, size, joined, &v)) {
		counter_add(&malformed, 1);
		return 0;
	}
	out_fs(&v);
	return 0;
}

static int autoload(const char *name)
{
	struct fs_bpf *skel = obj.skel;
	struct bpf_program *p = bpf_object__find_program_by_name(skel->obj, name);

	if (!p)
		return -ENOENT;
	return bpf_program__set_autoload(p, true);
}

/* Programs come in pairs: ps_fs_<a>_<b> on entry, ps_fs_<a>_<b>_x on exit. */
static int autoload_pair(const char *a, const char *b)
{
	char name[64];
	int err;

	snprintf(name, sizeof(name), "ps_fs_%s_%s", a, b);
	err = autoload(name);
	strcat(name, "_x");
	return err ? err : autoload(name);
}

/* fentry: the 8 programs of each chosen filesystem (ps_fs_<fs>_<op>[_x]). */
static int setup_fentry(uint32_t types)
{
	static const char *const ops[] = { "rd", "wr", "op", "sy" };
	const char *missing = NULL;
	int err;

	for (int t = 0; t < FS_T_MAX; t++) {
		if (!(types & FS_T_BIT(t)))
			continue;
		if (!fs_hookable(t, feat_fentry, &missing)) {
			pr_err("fs: fentry cannot hook %s here (%s is not in the kernel's BTF or "
			       "cannot be traced); try --hook fs=syscalls", fs_type_name(t),
			       missing);
			return -ENOTSUP;
		}
		for (int i = 0; i < 4; i++) {
			err = autoload_pair(fs_type_name(t), ops[i]);
			if (err)
				return err;
		}
	}
	return 0;
}

static int setup_kprobe(uint32_t types)
{
	struct fs_bpf *skel = obj.skel;
	const char *missing = NULL;

	for (int t = 0; t < FS_T_MAX; t++) {
		if ((types & FS_T_BIT(t)) && !fs_hookable(t, feat_kprobe, &missing)) {
			pr_err("fs: kprobes cannot hook %s here (%s is not traceable); try "
			       "--hook fs=syscalls", fs_type_name(t), missing);
			return -ENOTSUP;
		}
	}
	bpf_program__set_autoload(skel->progs.ps_fs_kp_rd, true);
	bpf_program__set_autoload(skel->progs.ps_fs_kp_rd_x, true);
	bpf_program__set_autoload(skel->progs.ps_fs_kp_wr, true);
	bpf_program__set_autoload(skel->progs.ps_fs_kp_wr_x, true);
	bpf_program__set_autoload(skel->progs.ps_fs_kp_op, true);
	bpf_program__set_autoload(skel->progs.ps_fs_kp_op_x, true);
	bpf_program__set_autoload(skel->progs.ps_fs_kp_sy, true);
	bpf_program__set_autoload(skel->progs.ps_fs_kp_sy_x, true);
	return 0;
}

/* After load: each op's kprobe pair on every chosen filesystem's function. */
static int attach_kprobes(uint32_t types)
{
	struct fs_bpf *skel = obj.skel;
	struct bpf_program *entry[FS_OP_MAX] = {
		NULL, skel->progs.ps_fs_kp_rd, skel->progs.ps_fs_kp_wr, skel->progs.ps_fs_kp_op,
		skel->progs.ps_fs_kp_sy,
	};
	struct bpf_program *ret[FS_OP_MAX] = {
		NULL, skel->progs.ps_fs_kp_rd_x, skel->progs.ps_fs_kp_wr_x,
		skel->progs.ps_fs_kp_op_x, skel->progs.ps_fs_kp_sy_x,
	};
	struct bpf_link *l;
	int err;

	for (int t = 0; t < FS_T_MAX; t++) {
		if (!(types & FS_T_BIT(t)))
			continue;
		for (int op = 1; op < FS_OP_MAX; op++) {
			/* the return probe first, so no entry goes without its exit */
			for (int r = 1; r >= 0; r--) {
				l = bpf_program__attach_kprobe(r ? ret[op] : entry[op], r,
							       fs_funcs[t].fn[op]);
				if (!l)
					return -errno;
				err = tracer_add_link(&fs_tracer, l);
				if (err)
					return err;
			}
		}
	}
	return 0;
}

static int setup_syscalls(void)
{
	int err;

	for (size_t i = 0; i < sizeof(syscalls) / sizeof(syscalls[0]); i++) {
		if (!have_sys_pair(syscalls[i].sc)) {
			if (syscalls[i].required) {
				pr_err("fs: tracepoints syscalls/sys_{enter,exit}_%s are missing",
				       syscalls[i].sc);
				return -ENOENT;
			}
			pr_debug("fs: no syscalls/sys_enter_%s here; not traced", syscalls[i].sc);
			continue;
		}
		err = autoload_pair("sys", sys_prog[i]);
		if (err)
			return err;
	}
	return 0;
}

static struct bpf_program *raw_handler(const char *name, bool exit)
{
	struct fs_bpf *skel = obj.skel;
	char full[64];

	snprintf(full, sizeof(full), "ps_fs_rs_%s%s", name, exit ? "_x" : "");
	return bpf_object__find_program_by_name(skel->obj, full);
}

/* Load the handlers of the syscalls this kernel has; the dispatcher runs them. */
static int setup_raw(void)
{
	for (size_t i = 0; i < sizeof(syscalls) / sizeof(syscalls[0]); i++) {
		struct bpf_program *en = raw_handler(raw_prog[i].enter, false);
		struct bpf_program *ex = raw_handler(raw_prog[i].exit, true);

		if (!sysraw_has_syscall(syscalls[i].sc))
			continue;
		if (!en || !ex)
			return -ENOENT;
		bpf_program__set_autoload(en, true);
		bpf_program__set_autoattach(en, false);
		bpf_program__set_autoload(ex, true);
		bpf_program__set_autoattach(ex, false);
	}
	return 0;
}

static int add_raw(void)
{
	int err = 0;

	for (size_t i = 0; i < sizeof(syscalls) / sizeof(syscalls[0]) && !err; i++)
		if (sysraw_has_syscall(syscalls[i].sc))
			err = sysraw_add(&obj, PS_SYS_SLOT_FS, syscalls[i].sc,
					 raw_handler(raw_prog[i].enter, false),
					 raw_handler(raw_prog[i].exit, true));
	return err;
}

static int fs_setup(const struct tracer_env *e, const struct hook_method *m)
{
	uint32_t types = e->cfg->fs_types;
	struct bpf_program *p;
	struct fs_bpf *skel;
	int err;

	skel = fs_bpf__open();
	if (!skel)
		return -errno;
	TRACER_OBJ_SET(&obj, skel, skel->maps.ps_fs_rb);
	bpf_object__for_each_program(p, skel->obj)
		bpf_program__set_autoload(p, false);
	if (m->id == FS_M_FENTRY)
		err = setup_fentry(types);
	else if (m->id == FS_M_KPROBE)
		err = setup_kprobe(types); /* attached after load: the programs have no target */
	else if (m->id == FS_M_RAW_SYSCALLS)
		err = setup_raw();
	else
		err = setup_syscalls();
	if (err)
		return err;

	skel->rodata->targ_min_ns = e->cfg->fs_min_us * 1000ull;
	skel->rodata->targ_fs_mask = types;
	skel->rodata->targ_self_tgid = (__u32)getpid();
	return 0;
}

static int fs_post_attach(const struct tracer_env *e, const struct hook_method *m)
{
	if (m->id == FS_M_RAW_SYSCALLS)
		return add_raw();
	return m->id == FS_M_KPROBE ? attach_kprobes(e->cfg->fs_types) : 0;
}

static void fs_tick(uint64_t boot_ns)
{
	struct fs_bpf *skel = obj.skel;

	if (skel)
		map_sweep_orphans(skel->maps.ps_fs_pending, MAP_SWEEP_TS(struct fs_pending, ts_ns),
				  boot_ns, FS_PENDING_MAX_AGE_NS, &orphaned);
}

static void fs_user_stats(struct ps_stats *s)
{
	s->v[PS_STAT_MAP_FULL] += counter_get(&orphaned);
	s->v[PS_STAT_READ_ERR] += counter_get(&malformed);
}

const struct tracer fs_tracer = {
	.name = "fs",
	.metrics_start = pod_metrics_fs_start,
	.metrics_stop = pod_metrics_fs_stop,
	.methods = methods,
	.n_methods = sizeof(methods) / sizeof(methods[0]),
	.obj = &obj,
	.rate_limited = true,
	.ringbuf_bytes = 1u << 20,
	.on_record = handle_event,
	.setup = fs_setup,
	.post_attach = fs_post_attach,
	.tick = fs_tick,
	.user_stats = fs_user_stats,
	.configure = fs_configure,
};
