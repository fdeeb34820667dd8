// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* open tracer, user side: hook choice, configuration, decoding. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "agent/tracers/open.h"
#include "open.skel.h"
#include "agent/clock.h"
#include "agent/http/pod_metrics.h"
#include "agent/tracers/kfeatures.h"
#include "agent/tracers/sysraw.h"
#include "agent/log.h"

#define OPEN_LEGACY_THREADS 16384	/* threads inside open at once, legacy kernels */

static struct tracer_obj obj;		/* obj.skel: struct open_bpf */
static uint64_t malformed;

static bool have_syscalls(void)
{
	return feat_tracepoint("syscalls", "sys_enter_openat") &&
	       feat_tracepoint("syscalls", "sys_exit_openat");
}

static bool have_raw_syscalls(void)
{
	return sysraw_available() && sysraw_has_syscall("openat");
}

static bool have_fentry(void)
{
	return feat_fentry("do_sys_openat2");
}

static bool have_kprobe(void)
{
	return feat_kprobe("do_sys_openat2");
}

/*
 * fentry first: the first BPF program on a syscall tracepoint puts every
 * syscall of every task on the kernel's slow path and pays perf's dispatch
 * (buffer, argument copy) on each open; that floor alone is more than a
 * filtered-out open may cost (bench/README.md). A trampoline on
 * do_sys_openat2 pays neither, and sees creat() and compat calls too, at the
 * price of not telling open/openat/openat2 apart (`--hook open=syscalls`
 * keeps that). The syscall tracepoints serve kernels without trampolines.
 */
static const struct hook_method methods[] = {
	{ OPEN_M_FENTRY, "fentry", "fentry/fexit do_sys_openat2 (5.6+; syscall not told apart)",
	  have_fentry },
	{ OPEN_M_SYSCALLS, "syscalls", "tracepoint syscalls/sys_{enter,exit}_open{,at,at2}",
	  have_syscalls },
	{ OPEN_M_RAW_SYSCALLS, "raw_syscalls",
	  "tp_btf sys_enter/sys_exit: one dispatcher for exec, open, fs by syscall number",
	  have_raw_syscalls },
	{ OPEN_M_KPROBE, "kprobe", "kprobe/kretprobe do_sys_openat2 (5.6+; syscall not told apart)",
	  have_kprobe },
};

int open_decode(const void *data, size_t size, struct open_view *v)
{
	const struct open_event *e = data;

	if (size < OPEN_EVENT_HDR_SIZE || e->path_len > OPEN_PATH_MAX ||
	    OPEN_EVENT_HDR_SIZE + (size_t)e->path_len > size)
		return -EINVAL;
	memset(v, 0, sizeof(*v));
	v->e = e;
	v->path = e->path;
	/* the kernel counts the NUL; never read past what it wrote */
	v->path_len = strnlen(e->path, e->path_len);
	v->truncated = e->rflags & OPEN_F_TRUNCATED;
	v->wall_ns = clock_wall_from_boot(e->ts_ns);
	return 0;
}

static int handle_event(void *ctx, void *data, size_t size)
{
	struct open_view v;

	(void)ctx;
	if (open_decode(data, size, &v)) {
		counter_add(&malformed, 1);
		return 0;
	}
	out_open(&v);
	return 0;
}

/*
 * Task storage and trusted task pointers (5.11+) keep the per-call state
 * cheap; without them (or with PODSNOOP_OPEN_LEGACY=1, for tests) the call
 * in progress is kept in a hash by thread id.
 */
static bool want_legacy(enum bpf_prog_type type)
{
	if (getenv("PODSNOOP_OPEN_LEGACY"))
		return true;
	return libbpf_probe_bpf_map_type(BPF_MAP_TYPE_TASK_STORAGE, NULL) != 1 ||
	       libbpf_probe_bpf_helper(type, BPF_FUNC_get_current_task_btf, NULL) != 1;
}

/* The raw_syscalls handlers by syscall: loaded, then handed to the dispatcher. */
static struct bpf_program *raw_enter(struct open_bpf *skel, int i)
{
	return i == 0 ? skel->progs.ps_open_rs_enter
	       : i == 1 ? skel->progs.ps_openat_rs_enter
			: skel->progs.ps_openat2_rs_enter;
}

static const char *const raw_names[] = { "open", "openat", "openat2" };

/* Enable one enter/exit pair when the kernel has that syscall's tracepoints. */
static void enable_pair(struct bpf_program *enter, struct bpf_program *exit, const char *sc)
{
	char name[64];

	snprintf(name, sizeof(name), "sys_enter_%s", sc);
	if (!feat_tracepoint("syscalls", name))
		return;
	snprintf(name, sizeof(name), "sys_exit_%s", sc);
	if (!feat_tracepoint("syscalls", name))
		return;
	bpf_program__set_autoload(enter, true);
	bpf_program__set_autoload(exit, true);
}

static int open_setup(const struct tracer_env *e, const struct hook_method *m)
{
	struct open_bpf *skel = open_bpf__open();
	struct bpf_program *p;
	int err;

	if (!skel)
		return -errno;
	TRACER_OBJ_SET(&obj, skel, skel->maps.ps_open_rb);
	bpf_object__for_each_program(p, skel->obj)
		bpf_program__set_autoload(p, false);
	if (m->id == OPEN_M_SYSCALLS) {
		/* open(2) is missing on newer architectures, openat2 before 5.6 */
		enable_pair(skel->progs.ps_open_enter, skel->progs.ps_open_exit, "open");
		enable_pair(skel->progs.ps_openat_enter, skel->progs.ps_openat_exit, "openat");
		enable_pair(skel->progs.ps_openat2_enter, skel->progs.ps_openat2_exit, "openat2");
	} else if (m->id == OPEN_M_RAW_SYSCALLS) {
		for (int i = 0; i < 3; i++) {
			if (!sysraw_has_syscall(raw_names[i]))
				continue;
			bpf_program__set_autoload(raw_enter(skel, i), true);
			bpf_program__set_autoattach(raw_enter(skel, i), false);
		}
		bpf_program__set_autoload(skel->progs.ps_open_rs_exit, true);
		bpf_program__set_autoattach(skel->progs.ps_open_rs_exit, false);
	} else if (m->id == OPEN_M_FENTRY) {
		bpf_program__set_autoload(skel->progs.ps_open_fentry, true);
		bpf_program__set_autoload(skel->progs.ps_open_fexit, true);
	} else {
		bpf_program__set_autoload(skel->progs.ps_open_kprobe, true);
		bpf_program__set_autoload(skel->progs.ps_open_kretprobe, true);
	}

	skel->rodata->targ_failed_only = e->cfg->open_failed;
	skel->rodata->targ_self_tgid = (__u32)getpid();
	if (want_legacy(m->id == OPEN_M_FENTRY || m->id == OPEN_M_RAW_SYSCALLS
				? BPF_PROG_TYPE_TRACING
			: m->id == OPEN_M_KPROBE ? BPF_PROG_TYPE_KPROBE
						 : BPF_PROG_TYPE_TRACEPOINT)) {
		struct bpf_map *args = skel->maps.ps_open_args;

		pr_info("open: no task storage here: per-call state in a hash by thread id");
		skel->rodata->targ_legacy = true;
		err = bpf_map__set_type(args, BPF_MAP_TYPE_HASH);
		if (!err)
			err = bpf_map__set_map_flags(args, 0);
		if (!err)
			err = bpf_map__set_max_entries(args, OPEN_LEGACY_THREADS);
		if (err)
			return err;
	}
	return 0;
}

static int open_post_attach(const struct tracer_env *e, const struct hook_method *m)
{
	struct open_bpf *skel = obj.skel;
	int err = 0;

	(void)e;
	if (m->id != OPEN_M_RAW_SYSCALLS)
		return 0;
	for (int i = 0; i < 3 && !err; i++)
		if (sysraw_has_syscall(raw_names[i]))
			err = sysraw_add(&obj, PS_SYS_SLOT_OPEN, raw_names[i], raw_enter(skel, i),
					 skel->progs.ps_open_rs_exit);
	return err;
}

static void open_user_stats(struct ps_stats *s)
{
	s->v[PS_STAT_READ_ERR] += counter_get(&malformed);
}

const struct tracer open_tracer = {
	.name = "open",
	.metrics_start = pod_metrics_open_start,
	.metrics_stop = pod_metrics_open_stop,
	.methods = methods,
	.n_methods = sizeof(methods) / sizeof(methods[0]),
	.obj = &obj,
	.rate_limited = true,
	.ringbuf_bytes = 4u << 20,
	.on_record = handle_event,
	.setup = open_setup,
	.post_attach = open_post_attach,
	.user_stats = open_user_stats,
};
