// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* exec tracer, user side: hook choice, configuration, decoding. */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>

#include "agent/tracers/exec.h"
#include "exec.skel.h"
#include "agent/clock.h"
#include "agent/http/pod_metrics.h"
#include "agent/tracers/kfeatures.h"
#include "agent/tracers/mapsweep.h"
#include "agent/tracers/sysraw.h"
#include "agent/log.h"

/* an exec still in flight after this long was killed or changed tid */
#define EXEC_PENDING_MAX_AGE_NS (10ull * 1000000000ull)

static struct tracer_obj obj;		/* obj.skel: struct exec_bpf */
static const struct tracer_env *env;
static uint64_t malformed, orphaned;

static bool have_syscalls(void)
{
	return feat_tracepoint("syscalls", "sys_enter_execve") &&
	       feat_tracepoint("syscalls", "sys_exit_execve");
}

static bool have_fentry(void)
{
	return feat_fentry("__x64_sys_execve") && feat_fentry("__x64_sys_execveat");
}

static bool have_raw_syscalls(void)
{
	return sysraw_available() && sysraw_has_syscall("execve");
}

static bool have_sched_btf(void)
{
	return feat_tp_btf("sched_process_exec");
}

static bool have_sched_raw(void)
{
	return feat_tracepoint("sched", "sched_process_exec");
}

/*
 * fentry first where the kernel has trampolines: the syscall tracepoints put
 * every syscall of every task on the kernel's slow path (see open.c). Both
 * see failed execs; the sched_process_exec hooks see successes only.
 */
static const struct hook_method methods[] = {
	{ EXEC_M_FENTRY, "fentry", "fentry/fexit __x64_sys_execve{,at} (x86-64, BPF trampolines)",
	  have_fentry },
	{ EXEC_M_SYSCALLS, "syscalls", "tracepoint syscalls/sys_{enter,exit}_execve{,at}",
	  have_syscalls },
	{ EXEC_M_RAW_SYSCALLS, "raw_syscalls",
	  "tp_btf sys_enter/sys_exit: one dispatcher for exec, open, fs by syscall number",
	  have_raw_syscalls },
	{ EXEC_M_SCHED_BTF, "sched_btf", "tp_btf sched_process_exec (successes only)",
	  have_sched_btf },
	{ EXEC_M_SCHED_RAW, "sched_raw", "raw_tp sched_process_exec (successes only)",
	  have_sched_raw },
};

int exec_decode(const void *data, size_t size, uint32_t max_args, struct exec_view *v)
{
	const struct exec_event *e = data;
	const char *a, *end, *last_end;
	uint32_t argc = 0;

	if (size < EXEC_EVENT_HDR_SIZE || e->filename_len > EXEC_FILENAME_MAX ||
	    e->args_len > 2 * EXEC_ARGS_BYTES_CAP ||
	    EXEC_EVENT_HDR_SIZE + (size_t)e->filename_len + e->args_len > size)
		return -EINVAL;
	memset(v, 0, sizeof(*v));
	v->e = e;
	v->filename = e->buf;
	v->filename_len = strnlen(e->buf, e->filename_len);
	v->args = e->buf + e->filename_len;
	v->args_truncated = e->flags & EXEC_F_ARGS_TRUNCATED;

	/* count whole arguments; a tail without its NUL was cut by the kernel */
	a = v->args;
	end = a + e->args_len;
	last_end = a;
	while (a < end) {
		const char *nul = memchr(a, '\0', (size_t)(end - a));

		if (!nul) {
			v->args_truncated = true;
			break;
		}
		if (argc == max_args) {
			v->args_truncated = true;
			break;
		}
		argc++;
		a = nul + 1;
		last_end = a;
	}
	v->argc = argc;
	v->args_len = (size_t)(last_end - v->args);
	v->wall_ns = clock_wall_from_boot(e->ts_ns);
	return 0;
}

static int handle_event(void *ctx, void *data, size_t size)
{
	struct exec_view v;

	(void)ctx;
	if (exec_decode(data, size, env->cfg->max_args, &v)) {
		counter_add(&malformed, 1);
		return 0;
	}
	out_exec(&v);
	return 0;
}

static int exec_setup(const struct tracer_env *e, const struct hook_method *m)
{
	bool syscalls = m->id == EXEC_M_SYSCALLS, fentry = m->id == EXEC_M_FENTRY;
	bool raw = m->id == EXEC_M_RAW_SYSCALLS;
	struct exec_bpf *skel;
	struct bpf_program *p;

	env = e;
	skel = exec_bpf__open();
	if (!skel)
		return -errno;
	TRACER_OBJ_SET(&obj, skel, skel->maps.ps_exec_rb);

	bpf_object__for_each_program(p, skel->obj)
		bpf_program__set_autoload(p, false);
	if (fentry) {
		bpf_program__set_autoload(skel->progs.ps_exec_fentry, true);
		bpf_program__set_autoload(skel->progs.ps_exec_fexit, true);
		bpf_program__set_autoload(skel->progs.ps_execat_fentry, true);
		bpf_program__set_autoload(skel->progs.ps_execat_fexit, true);
	} else if (syscalls) {
		bpf_program__set_autoload(skel->progs.ps_exec_enter, true);
		bpf_program__set_autoload(skel->progs.ps_exec_exit, true);
		/* execveat arrived in 3.19; some architectures lack it */
		if (feat_tracepoint("syscalls", "sys_enter_execveat")) {
			bpf_program__set_autoload(skel->progs.ps_execat_enter, true);
			bpf_program__set_autoload(skel->progs.ps_execat_exit, true);
		}
	} else if (raw) {
		/* loaded, then handed to the dispatcher (exec_post_attach) */
		bpf_program__set_autoload(skel->progs.ps_exec_rs_enter, true);
		bpf_program__set_autoload(skel->progs.ps_exec_rs_exit, true);
		bpf_program__set_autoattach(skel->progs.ps_exec_rs_enter, false);
		bpf_program__set_autoattach(skel->progs.ps_exec_rs_exit, false);
		if (sysraw_has_syscall("execveat")) {
			bpf_program__set_autoload(skel->progs.ps_execat_rs_enter, true);
			bpf_program__set_autoattach(skel->progs.ps_execat_rs_enter, false);
		}
	} else if (m->id == EXEC_M_SCHED_BTF) {
		bpf_program__set_autoload(skel->progs.ps_exec_btf, true);
	} else {
		bpf_program__set_autoload(skel->progs.ps_exec_raw, true);
	}
	/* enter/exit methods: follow an exec from a non-leader thread to its new tid */
	if ((fentry || syscalls || raw) && have_sched_raw())
		bpf_program__set_autoload(skel->progs.ps_exec_rekey, true);

	skel->rodata->targ_max_args = e->cfg->max_args;
	skel->rodata->targ_max_args_bytes = e->cfg->max_args_bytes;
	return 0;
}

static int exec_post_attach(const struct tracer_env *e, const struct hook_method *m)
{
	struct exec_bpf *skel = obj.skel;
	int err;

	(void)e;
	if (m->id != EXEC_M_RAW_SYSCALLS)
		return 0;
	err = sysraw_add(&obj, PS_SYS_SLOT_EXEC, "execve", skel->progs.ps_exec_rs_enter,
			 skel->progs.ps_exec_rs_exit);
	if (!err && sysraw_has_syscall("execveat"))
		err = sysraw_add(&obj, PS_SYS_SLOT_EXEC, "execveat", skel->progs.ps_execat_rs_enter,
				 skel->progs.ps_exec_rs_exit);
	return err;
}

/*
 * Sweep in-flight entries whose exit never came (the task was killed inside
 * execve, or the kernel lacks the re-keying hook); they are lost execs.
 */
static void exec_tick(uint64_t boot_ns)
{
	struct exec_bpf *skel = obj.skel;

	/* ts_ns 0: an exec entering right now, its header not written yet (never stale) */
	if (skel)
		map_sweep_orphans(skel->maps.ps_exec_pending, MAP_SWEEP_TS(struct exec_event, ts_ns),
				  boot_ns, EXEC_PENDING_MAX_AGE_NS, &orphaned);
}

static void exec_user_stats(struct ps_stats *s)
{
	s->v[PS_STAT_MAP_FULL] += counter_get(&orphaned);
	s->v[PS_STAT_READ_ERR] += counter_get(&malformed);
}

const struct tracer exec_tracer = {
	.name = "exec",
	.metrics_start = pod_metrics_exec_start,
	.metrics_stop = pod_metrics_exec_stop,
	.methods = methods,
	.n_methods = sizeof(methods) / sizeof(methods[0]),
	.obj = &obj,
	.rate_limited = true,
	.ringbuf_bytes = 4u << 20,
	.on_record = handle_event,
	.setup = exec_setup,
	.post_attach = exec_post_attach,
	.tick = exec_tick,
	.user_stats = exec_user_stats,
};
