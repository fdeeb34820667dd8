// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cache tracer, user side: the hook chain, and every --interval one record
 * per (cgroup, mount namespace) whose page-cache counters moved.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "agent/tracers/cache.h"
#include "cache.skel.h"
#include "agent/clock.h"
#include "agent/http/pod_metrics.h"
#include "agent/tracers/kfeatures.h"
#include "agent/log.h"

/* a row with no activity for this many intervals leaves the kernel map */
#define CACHE_IDLE_EVICT 6

struct row {
	struct cache_key key;
	struct cache_val val;	/* kernel totals at the last read */
	uint32_t idle;		/* intervals without activity */
};

static struct tracer_obj obj;		/* obj.skel: struct cache_bpf */
static uint32_t method;			/* enum cache_method */
static bool accesses_known;
static uint64_t interval_ns, last_emit_ns, next_emit_ns;
static struct row *prev, *cur;		/* sorted by key; CACHE_MAX_CGROUPS each */
static size_t n_prev;
static struct cache_val *percpu;	/* one lookup's per-CPU values */
static int ncpu;
static uint64_t lookup_errors;

/* ---- the hook chain ---- */

static bool fentry_either(const char *a, const char *b)
{
	return feat_fentry(a) || feat_fentry(b);
}

static bool kprobe_either(const char *a, const char *b)
{
	return feat_kprobe(a) || feat_kprobe(b);
}

static bool have_fentry(void)
{
	return fentry_either("folio_mark_accessed", "mark_page_accessed") &&
	       fentry_either("filemap_add_folio", "add_to_page_cache_lru");
}

static bool have_kprobe(void)
{
	return kprobe_either("folio_mark_accessed", "mark_page_accessed") &&
	       kprobe_either("filemap_add_folio", "add_to_page_cache_lru");
}

static bool have_tp_btf(void)
{
	return feat_tp_btf("mm_filemap_add_to_page_cache") &&
	       feat_tp_btf("writeback_dirty_folio");
}

static bool have_tracepoint(void)
{
	return feat_tracepoint("filemap", "mm_filemap_add_to_page_cache") &&
	       (feat_tracepoint("writeback", "writeback_dirty_folio") ||
		feat_tracepoint("writeback", "writeback_dirty_page"));
}

static const struct hook_method methods[] = {
	{ CACHE_M_FENTRY, "fentry",
	  "fentry folio_mark_accessed, filemap_add_folio, folio_account_dirtied, "
	  "mark_buffer_dirty (or their page-based predecessors)", have_fentry },
	{ CACHE_M_KPROBE, "kprobe", "kprobes on the same functions", have_kprobe },
	{ CACHE_M_TP_BTF, "tp_btf",
	  "tp_btf mm_filemap_add_to_page_cache, writeback_dirty_folio, "
	  "block_dirty_buffer; accesses estimated from mm_filemap_get_pages", have_tp_btf },
	{ CACHE_M_TRACEPOINT, "tracepoint",
	  "tracepoint filemap/mm_filemap_add_to_page_cache, "
	  "writeback/writeback_dirty_folio; accesses estimated", have_tracepoint },
};

/* One counter's candidate hooks, best first; the first this kernel has wins. */
struct hook_choice {
	const char *what;
	struct {
		int kind;		/* 0 end, 'f' fentry, 'k' kprobe, 'b' tp_btf, 't' tracepoint */
		const char *target;	/* function, or "category/name" for tracepoints */
		struct bpf_program *prog;
	} c[6];
};

static bool hook_available(int kind, const char *target)
{
	char cat[32];
	const char *slash;

	switch (kind) {
	case 'f':
		return feat_fentry(target);
	case 'k':
		return feat_kprobe(target);
	case 'b':
		slash = strchr(target, '/');
		return feat_tp_btf(slash ? slash + 1 : target);
	case 't':
		slash = strchr(target, '/');
		if (!slash || (size_t)(slash - target) >= sizeof(cat))
			return false;
		memcpy(cat, target, (size_t)(slash - target));
		cat[slash - target] = '\0';
		return feat_tracepoint(cat, slash + 1);
	default:
		return false;
	}
}

/* Autoload the first available candidate; false when none is. */
static bool choose(const struct hook_choice *h)
{
	for (int i = 0; h->c[i].kind; i++) {
		if (!hook_available(h->c[i].kind, h->c[i].target))
			continue;
		bpf_program__set_autoload(h->c[i].prog, true);
		pr_debug("cache: %s counted at %s %s", h->what,
			 h->c[i].kind == 'f'   ? "fentry"
			 : h->c[i].kind == 'k' ? "kprobe"
			 : h->c[i].kind == 'b' ? "tp_btf"
					       : "tracepoint",
			 h->c[i].target);
		return true;
	}
	return false;
}

static int setup_hooks(struct cache_bpf *skel)
{
	__typeof__(skel->progs) *p = &skel->progs;
	const bool fe = method == CACHE_M_FENTRY, kp = method == CACHE_M_KPROBE;
	const bool tb = method == CACHE_M_TP_BTF;
	/* function hooks of the method's kind, then tracepoints as stand-ins */
	const struct hook_choice accessed_fn = { .what = "accesses", .c = {
		{ fe ? 'f' : 'k', "folio_mark_accessed", fe ? p->ps_cache_fe_acc : p->ps_cache_kp_acc },
		{ fe ? 'f' : 'k', "mark_page_accessed",
		  fe ? p->ps_cache_fe_acc_pg : p->ps_cache_kp_acc_pg },
	} };
	const struct hook_choice added_fn = { .what = "misses", .c = {
		{ fe ? 'f' : 'k', "filemap_add_folio", fe ? p->ps_cache_fe_add : p->ps_cache_kp_add },
		{ fe ? 'f' : 'k', "add_to_page_cache_lru",
		  fe ? p->ps_cache_fe_add_pg : p->ps_cache_kp_add_pg },
	} };
	const struct hook_choice dirtied_fn = { .what = "dirtied pages", .c = {
		{ fe ? 'f' : 'k', "folio_account_dirtied",
		  fe ? p->ps_cache_fe_dirty : p->ps_cache_kp_dirty },
		{ fe ? 'f' : 'k', "account_page_dirtied",
		  fe ? p->ps_cache_fe_dirty_pg : p->ps_cache_kp_dirty_pg },
		{ 'b', "writeback/writeback_dirty_folio", p->ps_cache_tb_dirty },
		{ 't', "writeback/writeback_dirty_folio", p->ps_cache_tp_dirty },
		{ 't', "writeback/writeback_dirty_page", p->ps_cache_tp_dirty_pg },
	} };
	const struct hook_choice bufd_fn = { .what = "dirtied buffers", .c = {
		{ fe ? 'f' : 'k', "mark_buffer_dirty", fe ? p->ps_cache_fe_bufd : p->ps_cache_kp_bufd },
		{ 'b', "block/block_dirty_buffer", p->ps_cache_tb_bufd },
		{ 't', "block/block_dirty_buffer", p->ps_cache_tp_bufd },
	} };
	/* the tracepoint methods: BTF-typed ones, or classic ones only */
	const struct hook_choice added_tp = { .what = "misses", .c = {
		{ tb ? 'b' : 't', "filemap/mm_filemap_add_to_page_cache",
		  tb ? p->ps_cache_tb_add : p->ps_cache_tp_add },
	} };
	const struct hook_choice dirtied_tp = { .what = "dirtied pages", .c = {
		{ tb ? 'b' : 't', "writeback/writeback_dirty_folio",
		  tb ? p->ps_cache_tb_dirty : p->ps_cache_tp_dirty },
		{ 't', "writeback/writeback_dirty_page", p->ps_cache_tp_dirty_pg },
	} };
	const struct hook_choice bufd_tp = { .what = "dirtied buffers", .c = {
		{ tb ? 'b' : 't', "block/block_dirty_buffer",
		  tb ? p->ps_cache_tb_bufd : p->ps_cache_tp_bufd },
	} };
	const struct hook_choice reads_tp = { .what = "accesses (estimate: read ranges)", .c = {
		{ tb ? 'b' : 't', "filemap/mm_filemap_get_pages",
		  tb ? p->ps_cache_tb_read : p->ps_cache_tp_read },
	} };
	const struct hook_choice touch_tp = { .what = "accesses (estimate: buffer lookups)", .c = {
		{ tb ? 'b' : 't', "block/block_touch_buffer",
		  tb ? p->ps_cache_tb_touch : p->ps_cache_tp_touch },
	} };

	if (fe || kp) {
		if (!choose(&accessed_fn) || !choose(&added_fn))
			return -ENOTSUP; /* the method's own availability check passed */
		if (!choose(&dirtied_fn))
			pr_warn("cache: no hook for dirtied pages here: written pages count as misses");
		if (!choose(&bufd_fn))
			pr_debug("cache: no hook for dirtied buffers here");
		accesses_known = true;
		return 0;
	}
	if (!choose(&added_tp))
		return -ENOTSUP;
	if (!choose(&dirtied_tp))
		pr_warn("cache: no tracepoint for dirtied pages here: written pages count as misses");
	choose(&bufd_tp);
	/* mm_filemap_get_pages arrived in 6.11; without it there is no access count */
	accesses_known = choose(&reads_tp);
	if (!accesses_known)
		pr_warn("cache: this kernel has no mm_filemap_get_pages tracepoint: accesses, hits "
			"and hit ratios are not available with the %s method",
			cache_method_name(method));
	else
		choose(&touch_tp);
	return 0;
}

/* ---- intervals ---- */

void cache_compute(const struct cache_val *d, uint32_t m, bool known, struct cache_view *v)
{
	uint64_t acc = d->accessed;

	/* bcc's cachestat takes buffer dirtying out of its access total */
	if (m == CACHE_M_FENTRY || m == CACHE_M_KPROBE)
		acc = acc > d->buf_dirtied ? acc - d->buf_dirtied : 0;
	v->method = m;
	v->added = d->added;
	v->dirtied = d->dirtied;
	v->buf_dirtied = d->buf_dirtied;
	v->misses = d->added > d->dirtied ? d->added - d->dirtied : 0;
	v->accesses_known = known;
	v->estimated = known && (m == CACHE_M_TP_BTF || m == CACHE_M_TRACEPOINT);
	v->accesses = known ? acc : 0;
	v->hits = known && acc > v->misses ? acc - v->misses : 0;
	v->ratio_known = known && v->hits + v->misses > 0;
	v->hit_ratio = v->ratio_known ? (double)v->hits / (double)(v->hits + v->misses) : 0.0;
}

static uint64_t meminfo_field(const char *text, const char *name)
{
	size_t n = strlen(name);
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, name, n) == 0 && p[n] == ':')
			return strtoull(p + n + 1, NULL, 10);
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return UINT64_MAX;
}

int cache_parse_meminfo(const char *text, uint64_t *buffers_kb, uint64_t *cached_kb)
{
	uint64_t b = meminfo_field(text, "Buffers"), c = meminfo_field(text, "Cached");

	if (b == UINT64_MAX || c == UINT64_MAX)
		return -EINVAL;
	*buffers_kb = b;
	*cached_kb = c;
	return 0;
}

static void read_meminfo(uint64_t *buffers_kb, uint64_t *cached_kb)
{
	static char buf[8192];
	ssize_t n = -1;
	int fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);

	*buffers_kb = *cached_kb = 0;
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (n <= 0)
		return;
	buf[n] = '\0';
	cache_parse_meminfo(buf, buffers_kb, cached_kb);
}

static int row_cmp(const void *a, const void *b)
{
	const struct cache_key *x = a, *y = b;

	if (x->cgroup_id != y->cgroup_id)
		return x->cgroup_id < y->cgroup_id ? -1 : 1;
	if (x->mntns_id != y->mntns_id)
		return x->mntns_id < y->mntns_id ? -1 : 1;
	return 0;
}

/* Sum the per-CPU slots of one row; -errno when it vanished meanwhile. */
static int read_row(int fd, const struct cache_key *key, struct cache_val *sum)
{
	memset(sum, 0, sizeof(*sum));
	if (bpf_map_lookup_elem(fd, key, percpu))
		return -errno;
	for (int c = 0; c < ncpu; c++) {
		sum->accessed += percpu[c].accessed;
		sum->added += percpu[c].added;
		sum->dirtied += percpu[c].dirtied;
		sum->buf_dirtied += percpu[c].buf_dirtied;
	}
	return 0;
}

static uint64_t sub(uint64_t now, uint64_t before)
{
	return now >= before ? now - before : now; /* the row was evicted and came back */
}

/* Read every row, report what moved since the last interval, evict idle rows. */
static void emit_interval(uint64_t boot_ns)
{
	struct cache_bpf *skel = obj.skel;
	int fd = bpf_map__fd(skel->maps.ps_cache_cg);
	struct cache_key key, next, *kp = NULL;
	uint64_t buffers_kb, cached_kb, wall = clock_wall_from_boot(boot_ns);
	size_t n_cur = 0, w;
	struct row *swap;

	read_meminfo(&buffers_kb, &cached_kb);
	while (n_cur < CACHE_MAX_CGROUPS && bpf_map_get_next_key(fd, kp, &next) == 0) {
		struct row *r = &cur[n_cur], *old;
		struct cache_val d;
		struct cache_view v;

		key = next;
		kp = &key;
		if (read_row(fd, &key, &r->val)) {
			counter_add(&lookup_errors, 1);
			continue;
		}
		r->key = key;
		old = n_prev ? bsearch(&key, prev, n_prev, sizeof(*prev), row_cmp) : NULL;
		d.accessed = sub(r->val.accessed, old ? old->val.accessed : 0);
		d.added = sub(r->val.added, old ? old->val.added : 0);
		d.dirtied = sub(r->val.dirtied, old ? old->val.dirtied : 0);
		d.buf_dirtied = sub(r->val.buf_dirtied, old ? old->val.buf_dirtied : 0);
		n_cur++;
		if (!d.accessed && !d.added && !d.dirtied && !d.buf_dirtied) {
			r->idle = old ? old->idle + 1 : 1;
			continue;
		}
		r->idle = 0;
		memset(&v, 0, sizeof(v));
		v.wall_ns = wall;
		v.interval_ns = boot_ns - last_emit_ns;
		v.cgroup_id = key.cgroup_id;
		v.mntns_id = key.mntns_id;
		v.host_buffers_kb = buffers_kb;
		v.host_cached_kb = cached_kb;
		cache_compute(&d, method, accesses_known, &v);
		out_cache(&v);
	}
	/*
	 * Rows idle for a while leave the map (dead pods must not fill it); an
	 * increment racing with the delete is lost, which a row idle for
	 * CACHE_IDLE_EVICT intervals makes unlikely.
	 */
	for (size_t i = w = 0; i < n_cur; i++) {
		if (cur[i].idle >= CACHE_IDLE_EVICT && bpf_map_delete_elem(fd, &cur[i].key) == 0)
			continue;
		cur[w++] = cur[i];
	}
	n_cur = w;
	qsort(cur, n_cur, sizeof(*cur), row_cmp);
	swap = prev;
	prev = cur;
	cur = swap;
	n_prev = n_cur;
	last_emit_ns = boot_ns;
}

static int cache_setup(const struct tracer_env *e, const struct hook_method *m)
{
	struct bpf_program *p;
	struct cache_bpf *skel;
	long page = sysconf(_SC_PAGESIZE);
	uint32_t shift = 0;
	int err;

	method = m->id;
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	prev = calloc(CACHE_MAX_CGROUPS, sizeof(*prev));
	cur = calloc(CACHE_MAX_CGROUPS, sizeof(*cur));
	percpu = calloc((size_t)ncpu, sizeof(*percpu));
	if (!prev || !cur || !percpu)
		return -ENOMEM;
	n_prev = 0;

	skel = cache_bpf__open();
	if (!skel)
		return -errno;
	TRACER_OBJ_SET(&obj, skel, NULL); /* no ring buffer: rows are read every interval */
	bpf_object__for_each_program(p, skel->obj)
		bpf_program__set_autoload(p, false);
	err = setup_hooks(skel);
	if (err)
		return err;
	while (page > 1 && (1l << shift) < page)
		shift++;
	skel->rodata->targ_page_shift = shift;
	interval_ns = e->cfg->interval_s * 1000000000ull;
	return 0;
}

/* The first interval starts once the programs count. */
static int cache_post_attach(const struct tracer_env *e, const struct hook_method *m)
{
	(void)e;
	(void)m;
	last_emit_ns = clock_now_ns(CLOCK_BOOTTIME);
	next_emit_ns = last_emit_ns + interval_ns;
	return 0;
}

static void cache_tick(uint64_t boot_ns)
{
	if (!obj.skel || boot_ns < next_emit_ns)
		return;
	emit_interval(boot_ns);
	next_emit_ns += interval_ns;
	if (next_emit_ns <= boot_ns) /* fell behind (a stopped process): skip ahead */
		next_emit_ns = boot_ns + interval_ns;
}

/* Counting stopped: report the last (partial) interval. */
static void cache_detached(void)
{
	emit_interval(clock_now_ns(CLOCK_BOOTTIME));
}

static void cache_cleanup(void)
{
	free(prev);
	free(cur);
	free(percpu);
	prev = cur = NULL;
	percpu = NULL;
	n_prev = 0;
}

static void cache_user_stats(struct ps_stats *s)
{
	s->v[PS_STAT_READ_ERR] += counter_get(&lookup_errors);
}

const struct tracer cache_tracer = {
	.name = "cache",
	.metrics_start = pod_metrics_cache_start,
	.metrics_stop = pod_metrics_cache_stop,
	.methods = methods,
	.n_methods = sizeof(methods) / sizeof(methods[0]),
	.obj = &obj,
	.setup = cache_setup,
	.post_attach = cache_post_attach,
	.detached = cache_detached,
	.cleanup = cache_cleanup,
	.tick = cache_tick,
	.user_stats = cache_user_stats,
};
