// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* podsnoop: flags, start, the event loop, orderly stop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "cgroup/cgroup.h"
#include "agent/attrib/attrib.h"
#include "agent/attrib/meta.h"
#include "agent/clock.h"
#include "agent/config.h"
#include "agent/tracers/kfeatures.h"
#include "agent/tracers/filter.h"
#include "agent/tracers/ratelimit.h"
#include "lib/jsonw.h"
#include "agent/log.h"
#include "agent/loop.h"
#include "agent/out/output.h"
#include "agent/privs.h"
#include "agent/http/serve.h"
#include "agent/ship/ship.h"
#include "agent/ship/ship_otlp.h"
#include "agent/tracers/tracer.h"

static struct ps_config cfg;
static bool started[CFG_MAX_TRACERS];
/* what the loss records have reported so far, per tracer and stage */
static uint64_t reported_lost[CFG_MAX_TRACERS], reported_map_full[CFG_MAX_TRACERS];

static void report_losses(bool final)
{
	uint64_t wall = clock_wall_from_boot(clock_now_ns(CLOCK_BOOTTIME));
	struct ps_stats s;

	for (size_t i = 0; i < tracer_count; i++) {
		const struct tracer *t = tracer_table[i];

		if (!started[i] || tracer_read_stats(t, &s))
			continue;
		if (s.v[PS_STAT_LOST] > reported_lost[i]) {
			struct loss_rec l = { .wall_ns = wall, .tracer = t->name,
					      .stage = "kernel_ringbuf",
					      .count = s.v[PS_STAT_LOST] - reported_lost[i],
					      .total = s.v[PS_STAT_LOST] };

			out_loss(&l);
			reported_lost[i] = s.v[PS_STAT_LOST];
		}
		if (s.v[PS_STAT_MAP_FULL] > reported_map_full[i]) {
			struct loss_rec l = { .wall_ns = wall, .tracer = t->name,
					      .stage = "kernel_map_full",
					      .count = s.v[PS_STAT_MAP_FULL] - reported_map_full[i],
					      .total = s.v[PS_STAT_MAP_FULL] };

			out_loss(&l);
			reported_map_full[i] = s.v[PS_STAT_MAP_FULL];
		}
	}
	rl_report(final); /* rate_limited and shed: per cgroup */
}

static void on_tick(void)
{
	uint64_t now = clock_now_ns(CLOCK_BOOTTIME);

	clock_sync();
	for (size_t i = 0; i < tracer_count; i++)
		if (started[i] && tracer_table[i]->tick)
			tracer_table[i]->tick(now);
	report_losses(false);
	out_flush();
	serve_tick();
}

static void after_drain(void)
{
	attrib_pump(); /* records that waited for their pod go out first */
	out_flush();
}

static const struct loop_hooks hooks = {
	.after_drain = after_drain,
	.tick = on_tick,
};

static void print_summary(void)
{
	struct ps_stats s;

	for (size_t i = 0; i < tracer_count; i++) {
		if (!started[i] || tracer_read_stats(tracer_table[i], &s))
			continue;
		/* a loss is never quiet: warn when anything was dropped */
		log_msg(s.v[PS_STAT_LOST] || s.v[PS_STAT_MAP_FULL] ? LOG_WARN : LOG_INFO,
			"%s: seen %llu, filtered %llu, emitted %llu, lost %llu (ring buffer full), "
			"%llu (map full), read errors %llu",
			tracer_table[i]->name, (unsigned long long)s.v[PS_STAT_SEEN],
			(unsigned long long)s.v[PS_STAT_FILTERED],
			(unsigned long long)s.v[PS_STAT_EMITTED], (unsigned long long)s.v[PS_STAT_LOST],
			(unsigned long long)s.v[PS_STAT_MAP_FULL],
			(unsigned long long)s.v[PS_STAT_READ_ERR]);
		/* its own line: the one above is what scripts have parsed since the start */
		if (cfg.rate_limit && tracer_table[i]->rate_limited)
			log_msg(s.v[PS_STAT_RATE_LIMITED] ? LOG_WARN : LOG_INFO,
				"%s: rate limited %llu (--rate-limit %u,%u; per cgroup in the loss "
				"records)", tracer_table[i]->name,
				(unsigned long long)s.v[PS_STAT_RATE_LIMITED], cfg.rate_limit,
				cfg.rate_burst);
		if (cfg.shed && tracer_table[i]->rate_limited)
			log_msg(s.v[PS_STAT_SHED] ? LOG_WARN : LOG_INFO,
				"%s: shed %llu (--shed: the ring buffer 3/4 full, cgroups above "
				"their fair share; per cgroup in the loss records)",
				tracer_table[i]->name, (unsigned long long)s.v[PS_STAT_SHED]);
	}
	attrib_summary();
}

/* Where the node's mount namespace came from, when not from its init. */
static void log_host_mntns(const struct host_mntns *h)
{
	struct privs pv = { 0 };

	if (h->from == HOST_MNTNS_INIT)
		return;
	privs_read(&pv);
	if (h->from == HOST_MNTNS_KTHREADD) {
		pr_info("--exclude-host: /proc/1/ns/mnt: %s; the node's mount namespace is "
			"kthreadd's (/proc/2/ns/mnt)", strerror(h->err_init));
		return;
	}
	pr_warn("--exclude-host: /proc/1/ns/mnt: %s, /proc/2/ns/mnt: %s (%s); taking the "
		"agent's own mount namespace as the host's (wrong if the agent runs in a "
		"container)", strerror(h->err_init),
		h->err_kthreadd == ESRCH ? "not kthreadd" : strerror(h->err_kthreadd),
		h->err_init == EACCES || h->err_kthreadd == EACCES ? privs_ptrace_hint(&pv) :
								       "no hostPID?");
}

/* --cgroup, resolved before anything is loaded */
static uint64_t cgroup_ids[CFG_MAX_SELECT];
static int cgroup_levels[CFG_MAX_SELECT];

/*
 * Each --cgroup to its id and level. -EINVAL (logged) when a value is not a
 * cgroup v2 directory, another -errno when the node's mounts cannot be read.
 */
static int resolve_cgroups(void)
{
	char abs[PATH_MAX], rel[PATH_MAX];
	struct cg_layout layout;
	int err;

	if (!cfg.n_cgroups)
		return 0;
	err = cg_layout_detect(&layout);
	if (err) {
		pr_err("cannot read the mount table: %s", strerror(-err));
		return err == -EINVAL ? -EIO : err;
	}
	for (int i = 0; i < cfg.n_cgroups; i++) {
		err = cg_resolve(&layout, cfg.cgroups[i], abs, sizeof(abs), rel, sizeof(rel));
		if (err == -ENODEV) {
			pr_err("--cgroup %s: cgroup2 is not mounted on this node", cfg.cgroups[i]);
			return -EINVAL;
		}
		if (err) {
			pr_err("--cgroup %s: not a cgroup v2 directory under %s: %s",
			       cfg.cgroups[i], layout.v2_mount,
			       err == -EXDEV ? "not on cgroup2" : strerror(-err));
			return -EINVAL;
		}
		err = cg_id_from_path(abs, &cgroup_ids[i]);
		if (err) {
			pr_err("--cgroup %s: %s", cfg.cgroups[i], strerror(-err));
			return err == -EINVAL ? -EIO : err;
		}
		cgroup_levels[i] = cg_level(rel);
		pr_debug("selecting cgroup %s (id %llu, level %d)", rel,
			 (unsigned long long)cgroup_ids[i], cgroup_levels[i]);
	}
	return 0;
}

/* Load --cgroup/--mntns/--exclude-host into the filter maps; -errno. */
static int apply_selection(void)
{
	uint64_t id;
	int err;

	for (int i = 0; i < cfg.n_cgroups; i++) {
		err = filter_add_cgroup(cgroup_ids[i], cgroup_levels[i]);
		if (err) {
			pr_err("--cgroup %s: %s", cfg.cgroups[i], strerror(-err));
			return err;
		}
	}
	for (int i = 0; i < cfg.n_mntns; i++) {
		err = filter_add_mntns(cfg.mntns[i]);
		if (err) {
			pr_err("--mntns %llu: %s", (unsigned long long)cfg.mntns[i], strerror(-err));
			return err;
		}
	}
	if (cfg.exclude_host) {
		struct host_mntns h;

		err = privs_host_mntns(&h);
		if (err) {
			pr_err("--exclude-host: /proc/self/ns/mnt: %s", strerror(-err));
			return err;
		}
		log_host_mntns(&h);
		id = h.ino;
		err = filter_exclude_host(id);
		if (err) {
			pr_err("--exclude-host: %s", strerror(-err));
			return err;
		}
	}
	return 0;
}

/* The hook method of each tracer of the run (choose_hooks()); NULL: none here. */
static const struct hook_method *chosen[CFG_MAX_TRACERS];

/*
 * Choose every tracer's method from what the kernel offers (the choice
 * `podsnoop probe` shows). -EINVAL: a --hook names a method this kernel
 * lacks, a wrong flag here.
 */
static int choose_hooks(uint32_t on)
{
	struct hook_probe p;
	struct privs pv;
	char why[512];
	int err = 0;

	feat_tracefs_ensure(); /* the tracepoint probes need it; run() says when it failed */
	hook_probe_kernel(&p);
	hooks_choose(&p, on, cfg.hooks, chosen);
	/* without the privileges the probes see nothing: run() says what is missing */
	if (privs_read(&pv) == 0 && !privs_can_trace(&pv, why, sizeof(why)))
		return 0;
	for (size_t i = 0; i < tracer_count; i++) {
		if ((on & (1u << i)) && cfg.hooks[i] && !chosen[i]) {
			pr_err("%s: hook method %s is not available on this kernel "
			       "(see `podsnoop probe`)", tracer_table[i]->name, cfg.hooks[i]);
			err = -EINVAL;
		}
	}
	return err;
}

static int start_tracers(void)
{
	/* static: tracers keep the pointer for their event callbacks */
	static struct tracer_env env = { .cfg = &cfg };
	int n = 0, err;

	for (size_t i = 0; i < tracer_count; i++) {
		const struct tracer *t = tracer_table[i];
		const struct hook_method *m = chosen[i];

		if (!(cfg.tracers & (1u << i)))
			continue;
		if (!m) {
			pr_err("%s: no hook this kernel offers (see `podsnoop probe`)", t->name);
			if (cfg.tracers_given)
				return -ENOTSUP;
			continue;
		}
		err = tracer_start(t, &env, m);
		if (err) {
			pr_err("%s: cannot start with %s (%s): %s", t->name, m->name, m->hooks,
			       strerror(-err));
			tracer_destroy(t);
			if (cfg.tracers_given)
				return err;
			continue;
		}
		started[i] = true;
		rl_tracer_started((uint32_t)i);
		serve_tracer_started(i, m->name);
		n++;
		pr_info("%s: tracing with %s (%s)", t->name, m->name, m->hooks);
	}
	return n ? 0 : -ENOENT;
}

static void stop_tracers(void)
{
	serve_stop(); /* the endpoints read tracer state: stop them first */
	/* stop producing first, then read out everything already queued */
	for (size_t i = 0; i < tracer_count; i++)
		if (started[i])
			tracer_detach(tracer_table[i]);
	while (loop_drain() > 0)
		;
	attrib_finish();
	report_losses(true);
	out_flush();
	ship_otlp_final(); /* the last OTLP metrics: every record in, tracers readable */
	serve_metrics_stop();
	print_summary();
	for (size_t i = 0; i < tracer_count; i++)
		if (started[i])
			tracer_destroy(tracer_table[i]);
}

/* Trace until --duration or a signal, then stop in order. 0, or -errno once logged. */
static int run(void)
{
	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	struct privs pv;
	char why[512];
	int err;

	/* name a missing capability now, not as EPERM from deep inside libbpf */
	if (privs_read(&pv) == 0 && !privs_can_trace(&pv, why, sizeof(why))) {
		pr_err("%s", why);
		return -EPERM;
	}

	/* memcg-accounted kernels (5.11+) ignore it; without CAP_SYS_RESOURCE it fails */
	if (setrlimit(RLIMIT_MEMLOCK, &unlimited))
		pr_debug("cannot raise RLIMIT_MEMLOCK (%s); fine on 5.11+", strerror(errno));
	err = feat_tracefs_ensure();
	if (err)
		pr_warn("tracefs is not mounted and mounting it failed (%s): tracepoint "
			"hooks will be unavailable", strerror(-err));
	else if (feat_tracefs_mounted_by_us())
		pr_info("mounted tracefs at %s", feat_tracefs_path());
	clock_sync();

	err = filter_init();
	if (err) {
		pr_err("cannot create BPF maps: %s%s", strerror(-err),
		       err == -EPERM ? privs_eperm_hint() : "");
		return err;
	}
	err = apply_selection();
	if (err)
		goto out_filter;

	setvbuf(stdout, NULL, _IOFBF, 1 << 20);
	/* with --collector or OTLP, local output only when asked for */
	if ((!cfg.ship.url && !cfg.ship.otlp.logs_url && !cfg.ship.otlp.metrics_url) ||
	    cfg.output_given)
		out_add_sink(cfg.output == OUT_TEXT ? &text_sink : &ndjson_sink, stdout);

	err = attrib_start(&cfg);
	if (err) {
		pr_err("pod attribution: %s", strerror(-err));
		goto out_attrib;
	}

	err = loop_init(cfg.drain_ms);
	if (err) {
		pr_err("event loop: %s", strerror(-err));
		goto out_loop;
	}
	if (cfg.ship.url) {
		err = ship_start(&cfg);
		if (err)
			goto out_loop;
	}
	if (cfg.ship.otlp.logs_url || cfg.ship.otlp.metrics_url) {
		err = ship_otlp_start(&cfg);
		if (err)
			goto out_loop;
	}
	err = rl_init(&cfg);
	if (err) {
		pr_err("--rate-limit: cannot create its notes ring: %s", strerror(-err));
		goto out_loop;
	}
	err = serve_start(&cfg);
	if (err)
		goto out_loop;
	meta_health_reapply(); /* serve_start() put a placeholder there */
	err = start_tracers();
	if (err) {
		if (err == -ENOENT)
			pr_err("no tracer could start");
		goto out_tracers;
	}
	serve_tracers_ready();
	feat_release(); /* the hooks are chosen: the probes' BTF is 5 MiB of RSS */
	pr_info("ready");

	err = loop_run(cfg.duration, &hooks);
	if (err < 0)
		pr_err("event loop: %s", strerror(-err));
	else
		err = 0;
out_tracers:
	stop_tracers();
out_loop:
	ship_flush_begin(); /* after the last record: every sink flushes at once */
	ship_stop(); /* waits for it, spools the rest */
	ship_otlp_stop();
	loop_free();
	rl_free();
out_attrib:
	attrib_stop();
out_filter:
	filter_free();
	return err;
}

/* One tracer's (or helper's) hook methods, the chosen one marked. */
static void probe_print(bool json, const char *type, const char *key, const char *name,
			const char *what, const struct hook_method *ms, size_t n,
			const struct hook_method *chosen, const char *none)
{
	if (json) {
		struct jw w;

		jw_begin(&w, stdout);
		jw_cstr(&w, "type", type);
		jw_cstr(&w, key, name);
		jw_cstr(&w, "chosen", chosen ? chosen->name : "");
		jw_arr_open(&w, "methods");
		for (size_t j = 0; j < n; j++) {
			jw_obj_open(&w, NULL);
			jw_cstr(&w, "name", ms[j].name);
			jw_cstr(&w, "hooks", ms[j].hooks);
			jw_bool(&w, "available", ms[j].available());
			jw_obj_close(&w);
		}
		jw_arr_close(&w);
		jw_end(&w);
		return;
	}
	if (what)
		printf("%s (%s): %s%s\n", name, what, chosen ? chosen->name : "NONE: ",
		       chosen ? "" : none);
	else
		printf("%s: %s\n", name, chosen ? chosen->name : "NO HOOK AVAILABLE");
	for (size_t j = 0; j < n; j++)
		printf("  %s %-*s %-9s %s\n", &ms[j] == chosen ? "*" : " ", what ? 10 : 12,
		       ms[j].name, ms[j].available() ? "available" : "missing", ms[j].hooks);
}

static int probe(void)
{
	struct cg_layout layout = { 0 };
	struct utsname uts;
	int err;

	uname(&uts);
	err = feat_tracefs_ensure();
	cg_layout_detect(&layout);
	bool json = cfg.output_given && cfg.output == OUT_NDJSON;

	if (json) {
		struct jw w;

		jw_begin(&w, stdout);
		jw_cstr(&w, "type", "kernel");
		jw_cstr(&w, "release", uts.release);
		jw_bool(&w, "btf", feat_btf());
		jw_cstr(&w, "tracefs", err ? "" : feat_tracefs_path());
		jw_cstr(&w, "cgroup_mode", cg_mode_name(layout.mode));
		jw_cstr(&w, "cgroup2_mount", layout.v2_mount);
		jw_end(&w);
	} else {
		printf("kernel   %s\nbtf      %s\ntracefs  %s%s\ncgroups  %s%s%s\n\n", uts.release,
		       feat_btf() ? "yes (/sys/kernel/btf/vmlinux)" : "NO: CO-RE cannot work",
		       err ? "not mounted: " : feat_tracefs_path(), err ? strerror(-err) : "",
		       cg_mode_name(layout.mode), layout.v2_mount[0] ? ", cgroup2 at " : "",
		       layout.v2_mount);
	}
	/* every tracer, -t or not; a forced method the kernel lacks: said, chosen none */
	choose_hooks((uint32_t)((1ull << tracer_count) - 1));
	for (size_t i = 0; i < tracer_count; i++) {
		const struct tracer *t = tracer_table[i];

		probe_print(json, "probe", "tracer", t->name, NULL, t->methods, t->n_methods,
			    chosen[i], NULL);
	}
	/* not tracers (nothing to run with -t): their own record type */
	for (size_t i = 0; i < helper_count; i++) {
		const struct hook_helper *h = helper_table[i];
		const char *forced = cfg.helper_hooks[i];
		bool off = forced && strcmp(forced, "none") == 0;

		probe_print(json, "probe_helper", "helper", h->name, h->what, h->methods,
			    h->n_methods, off ? NULL : hook_choose(h->methods, h->n_methods, forced),
			    h->none);
	}
	return 0;
}

/* --check-config: the flags parsed; would the privileges do? Nothing is loaded. -EPERM: no. */
static int check_config(void)
{
	struct privs pv;
	char why[512];
	int err = privs_read(&pv);

	config_print(&cfg, stdout);
	if (err) {
		printf("privileges: unknown (%s)\n", strerror(-err));
		return 0;
	}
	if (!privs_can_trace(&pv, why, sizeof(why))) {
		printf("privileges: NOT ENOUGH\n");
		pr_err("%s", why);
		return -EPERM;
	}
	printf("privileges: ok\n");
	return 0;
}

/*
 * The exit codes (--help has them): 0 done, 1 tracing could not start or
 * stopped on an error, 2 a flag or its value is wrong. Below here every
 * function returns 0 or a negative errno, logged where it happened.
 */
int main(int argc, char **argv)
{
	int err = config_parse(&cfg, argc, argv);

	if (err)
		return err > 0 ? 0 : 2;
	log_set_level(cfg.verbose >= 2 ? LOG_LIBBPF : cfg.verbose ? LOG_DEBUG : LOG_INFO);
	log_route_libbpf();
	tracer_configure_all(&cfg);
	if (cfg.check_config)
		return check_config() ? 1 : 0;
	if (cfg.cmd == CMD_PROBE)
		return probe() ? 1 : 0;
	/* a --cgroup is checked against the node before anything is loaded */
	err = resolve_cgroups();
	if (err)
		return err == -EINVAL ? 2 : 1;
	err = choose_hooks(cfg.tracers);
	if (err)
		return 2;
	return run() ? 1 : 0;
}
