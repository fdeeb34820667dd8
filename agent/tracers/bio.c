// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Block I/O tracer, user side: hook choice (with the tracepoint layouts of
 * older kernels), decoding, and the histogram intervals: the BPF side fills
 * one of two histogram maps; each --interval the agent flips to the other
 * and, one tick later (when no program can still be adding to it), reads
 * and empties the old one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/utsname.h>
#include <bpf/bpf.h>

#include "agent/tracers/bio.h"
#include "bio.skel.h"
#include "agent/clock.h"
#include "agent/http/pod_metrics.h"
#include "agent/tracers/kfeatures.h"
#include "agent/tracers/mapsweep.h"
#include "agent/log.h"

/* an entry older than this lost its completion (a request that vanished: error paths) */
#define BIO_STALE_NS (120ull * 1000000000ull)
#define BIO_SWEEP_EVERY_NS (10ull * 1000000000ull)

static struct tracer_obj obj;		/* obj.skel: struct bio_bpf */
static const struct ps_config *cfg;
static uint64_t malformed, orphaned, flushed;
static uint64_t last_flip_ns, last_sweep_ns;
static int drain_gen = -1;		/* generation waiting to be read, or -1 */
static uint64_t drain_end_ns, drain_len_ns;
static struct bio_hist_key *keys;	/* drain scratch, one per histogram entry */

static const char *const rq_tps[] = { "block_rq_insert", "block_rq_issue", "block_rq_complete",
				       "block_rq_merge" };

static bool have_btf(const char *start)
{
	if (!feat_tp_btf(start))
		return false;
	for (size_t i = 0; i < sizeof(rq_tps) / sizeof(rq_tps[0]); i++)
		if (!feat_tp_btf(rq_tps[i]))
			return false;
	return true;
}

static bool have_raw(const char *start)
{
	/* raw_tp attaches by name; CO-RE still needs the kernel's BTF */
	if (!feat_btf() || !feat_tracepoint("block", start))
		return false;
	for (size_t i = 0; i < sizeof(rq_tps) / sizeof(rq_tps[0]); i++)
		if (!feat_tracepoint("block", rq_tps[i]))
			return false;
	return true;
}

static bool have_io_start(void)
{
	return have_btf("block_io_start");
}

static bool have_getrq(void)
{
	return have_btf("block_getrq");
}

static bool have_io_start_raw(void)
{
	return have_raw("block_io_start");
}

static bool have_getrq_raw(void)
{
	return have_raw("block_getrq");
}

static const struct hook_method methods[] = {
	{ BIO_M_IO_START, "io_start",
	  "tp_btf block_io_start, block_rq_{insert,issue,complete} (6.5+)", have_io_start },
	{ BIO_M_GETRQ, "getrq", "tp_btf block_getrq, block_rq_{insert,issue,complete}; "
				"pre-5.11 layouts from BTF", have_getrq },
	{ BIO_M_IO_START_RAW, "io_start_raw",
	  "raw_tp block_io_start, block_rq_{insert,issue,complete} (6.5+)", have_io_start_raw },
	{ BIO_M_GETRQ_RAW, "getrq_raw", "raw_tp block_getrq, block_rq_{insert,issue,complete}; "
					"pre-5.11 layouts from BTF", have_getrq_raw },
};

const char *bio_op_class(uint32_t op)
{
	static const char *const names[BIO_OP_MAX] = { "R", "W", "D", "F", "N" };

	return op < BIO_OP_MAX ? names[op] : "N";
}

void bio_op_string(uint8_t op, uint8_t f, char out[8])
{
	int i = 0;

	if (f & BIO_OPF_PREFLUSH)
		out[i++] = 'F';
	out[i++] = bio_op_class(op)[0];
	if (op == BIO_OP_DISCARD && (f & BIO_OPF_SECURE))
		out[i++] = 'E';
	if (f & BIO_OPF_FUA)
		out[i++] = 'F';
	if (f & BIO_OPF_RAHEAD)
		out[i++] = 'A';
	if (f & BIO_OPF_SYNC)
		out[i++] = 'S';
	if (f & BIO_OPF_META)
		out[i++] = 'M';
	out[i] = '\0';
}

int bio_decode(const void *data, size_t size, struct bio_view *v)
{
	const struct bio_event *e = data;

	if (size < sizeof(*e))
		return -EINVAL;
	memset(v, 0, sizeof(*v));
	v->e = e;
	v->disk = e->disk;
	v->disk_len = strnlen(e->disk, sizeof(e->disk));
	bio_op_string(e->op, e->op_flags, v->op);
	v->wall_ns = clock_wall_from_boot(e->ts_ns);
	return 0;
}

static int handle_event(void *ctx, void *data, size_t size)
{
	struct bio_view v;

	(void)ctx;
	if (bio_decode(data, size, &v)) {
		counter_add(&malformed, 1);
		return 0;
	}
	out_bio(&v);
	return 0;
}

/*
 * Whether the tracepoint still has the pre-5.11 layout with the
 * request_queue first ("block: remove the request_queue argument from the
 * block tracepoints"). BTF tells; without it, the kernel release does.
 */
static bool old_layout(const char *tp, int old_nargs)
{
	struct utsname u;
	int n = feat_tp_nargs(tp), major = 0, minor = 0;

	if (n >= 0)
		return n == old_nargs;
	if (uname(&u) || sscanf(u.release, "%d.%d", &major, &minor) != 2)
		return false;
	return major < 5 || (major == 5 && minor < 11);
}

static int cmp_keys(const void *a, const void *b)
{
	const struct bio_hist_key *x = a, *y = b;

	if (x->cgroup_id != y->cgroup_id)
		return x->cgroup_id < y->cgroup_id ? -1 : 1;
	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	return x->op < y->op ? -1 : x->op > y->op;
}

/* Read, print and empty one histogram generation, sorted by cgroup, disk, op. */
static void drain_hist(int gen, uint64_t end_ns, uint64_t len_ns)
{
	struct bio_bpf *skel = obj.skel;
	int fd = bpf_map__fd(gen ? skel->maps.ps_bio_hist1 : skel->maps.ps_bio_hist0);
	struct bio_hist_key *prev = NULL;
	struct bio_hist_val val;
	size_t n = 0;

	while (n < cfg->bio_hist_entries && bpf_map_get_next_key(fd, prev, &keys[n]) == 0) {
		prev = &keys[n];
		n++;
	}
	qsort(keys, n, sizeof(keys[0]), cmp_keys);
	for (size_t i = 0; i < n; i++) {
		struct bio_hist_view v = { 0 };

		if (bpf_map_lookup_elem(fd, &keys[i], &val))
			continue;
		bpf_map_delete_elem(fd, &keys[i]);
		v.cgroup_id = keys[i].cgroup_id;
		v.wall_ns = clock_wall_from_boot(end_ns);
		v.interval_ns = len_ns;
		v.dev = keys[i].dev;
		v.disk = val.disk;
		v.disk_len = strnlen(val.disk, sizeof(val.disk));
		v.op = bio_op_class(keys[i].op);
		v.slots = val.slots;
		v.count = val.count;
		v.sum_ns = val.sum_ns;
		v.merged = val.merged;
		out_bio_hist(&v);
	}
}

/* Delete in-flight entries whose completion never came; they are lost requests. */
static void sweep(struct bpf_map *map, uint64_t mono_ns)
{
	map_sweep_orphans(map, MAP_SWEEP_TS(struct bio_rq, start_ns), mono_ns, BIO_STALE_NS,
			  &orphaned);
}

static int bio_setup(const struct tracer_env *e, const struct hook_method *m)
{
	bool raw = m->id == BIO_M_IO_START_RAW || m->id == BIO_M_GETRQ_RAW;
	bool io_start = m->id == BIO_M_IO_START || m->id == BIO_M_IO_START_RAW;
	bool old_rq = old_layout("block_rq_issue", 2), old_getrq = old_layout("block_getrq", 3);
	struct bio_bpf *skel;
	__typeof__(skel->progs) *pg;
	struct bpf_program *p;
	int err;

	cfg = e->cfg;
	keys = calloc(cfg->bio_hist_entries, sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	skel = bio_bpf__open();
	if (!skel)
		return -errno;
	TRACER_OBJ_SET(&obj, skel, skel->maps.ps_bio_rb);
	pg = &skel->progs;

	bpf_object__for_each_program(p, skel->obj)
		bpf_program__set_autoload(p, false);
	if (io_start)
		bpf_program__set_autoload(raw ? pg->ps_bio_start_r : pg->ps_bio_start, true);
	else if (old_getrq)
		bpf_program__set_autoload(raw ? pg->ps_bio_getrq_qr : pg->ps_bio_getrq_q, true);
	else
		bpf_program__set_autoload(raw ? pg->ps_bio_getrq_r : pg->ps_bio_getrq, true);
	if (old_rq) {
		bpf_program__set_autoload(raw ? pg->ps_bio_insert_qr : pg->ps_bio_insert_q, true);
		bpf_program__set_autoload(raw ? pg->ps_bio_issue_qr : pg->ps_bio_issue_q, true);
		pr_info("bio: block_rq_insert/issue have the pre-5.11 request_queue argument here");
	} else {
		bpf_program__set_autoload(raw ? pg->ps_bio_insert_r : pg->ps_bio_insert, true);
		bpf_program__set_autoload(raw ? pg->ps_bio_issue_r : pg->ps_bio_issue, true);
	}
	bpf_program__set_autoload(raw ? pg->ps_bio_done_r : pg->ps_bio_done, true);
	bpf_program__set_autoload(raw ? pg->ps_bio_merge_r : pg->ps_bio_merge, true);

	skel->rodata->targ_min_ns = (__u64)cfg->bio_min_us * 1000ull;
	skel->rodata->targ_getrq = !io_start;
	skel->rodata->targ_method = m->id;
	err = io_start ? bpf_map__set_max_entries(skel->maps.ps_bio_bios, 1) : 0;
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.ps_bio_hist0, cfg->bio_hist_entries);
	if (!err)
		err = bpf_map__set_max_entries(skel->maps.ps_bio_hist1, cfg->bio_hist_entries);
	return err;
}

/* The first interval starts once the programs run. */
static int bio_post_attach(const struct tracer_env *e, const struct hook_method *m)
{
	(void)e;
	(void)m;
	last_flip_ns = last_sweep_ns = clock_now_ns(CLOCK_BOOTTIME);
	return 0;
}

static void bio_tick(uint64_t boot_ns)
{
	struct bio_bpf *skel = obj.skel;
	uint64_t interval_ns = (uint64_t)cfg->interval_s * 1000000000ull;
	uint32_t gen;

	if (!skel)
		return;
	if (drain_gen >= 0) {
		drain_hist(drain_gen, drain_end_ns, drain_len_ns);
		drain_gen = -1;
	}
	if (boot_ns - last_flip_ns >= interval_ns) {
		gen = skel->bss->hist_gen & 1;
		__atomic_store_n(&skel->bss->hist_gen, gen ^ 1, __ATOMIC_RELEASE);
		/* read it next tick: a program that fetched the old generation may still be adding */
		drain_gen = (int)gen;
		drain_end_ns = boot_ns;
		drain_len_ns = boot_ns - last_flip_ns;
		last_flip_ns = boot_ns;
	}
	if (boot_ns - last_sweep_ns >= BIO_SWEEP_EVERY_NS) {
		uint64_t mono = clock_now_ns(CLOCK_MONOTONIC);

		last_sweep_ns = boot_ns;
		sweep(skel->maps.ps_bio_inflight, mono);
		sweep(skel->maps.ps_bio_bios, mono);
		sweep(skel->maps.ps_bio_merged, mono);
	}
}

/* The kernel's name of disk dev (major << 20 | minor), from sysfs; "" if gone. */
static void disk_name(uint32_t dev, char *out, size_t len)
{
	char path[64], line[128];
	FILE *f;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/uevent", dev >> 20, dev & 0xfffff);
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "DEVNAME=", 8)) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, len, "%.*s", (int)(len - 1), line + 8);
			break;
		}
	fclose(f);
}

static void flush_one(const struct bio_rq *r, uint32_t flags, uint64_t now_boot)
{
	struct bio_event e = { 0 };

	e.ts_ns = now_boot;
	e.cgroup_id = r->cgroup_id;
	e.mntns_id = r->mntns_id;
	e.blkcg_id = r->blkcg_id;
	e.sector = r->sector;
	e.bytes = r->bytes;
	e.dev = r->dev;
	e.pid = r->pid;
	e.tid = r->tid;
	e.op = r->op;
	e.op_flags = r->op_flags;
	e.attribution = r->attribution;
	e.method = obj.skel ? ((struct bio_bpf *)obj.skel)->rodata->targ_method : 0;
	e.flags = (r->flags & ~BIO_RQ_F_SKIP) | flags | BIO_F_UNSEEN | (r->issue_ns ? 0 : BIO_F_NO_ISSUE);
	if (r->issue_ns && (r->flags & BIO_F_QUEUED) && r->insert_ns <= r->issue_ns)
		e.queue_ns = r->issue_ns - r->insert_ns;
	memcpy(e.comm, r->comm, sizeof(e.comm));
	disk_name(r->dev, e.disk, sizeof(e.disk));
	handle_event(NULL, &e, sizeof(e));
	counter_add(&flushed, 1);
}

/*
 * The agent stops: requests still in the in-flight maps (in flight now, or
 * completed without the programs running: see unseen() in bio.bpf.c) are
 * recorded as unseen, each once; a request's bytes leave out its merged parts.
 */
static void flush_in_flight(void)
{
	struct bio_bpf *skel = obj.skel;
	int ifd = bpf_map__fd(skel->maps.ps_bio_inflight), mfd = bpf_map__fd(skel->maps.ps_bio_merged);
	uint64_t now = clock_now_ns(CLOCK_BOOTTIME), key, *prev = NULL;
	struct bio_merge_key mk, *mprev = NULL;
	struct bio_rq r, *parts = NULL, *np;
	size_t n = 0, cap = 0;

	while (bpf_map_get_next_key(mfd, mprev, &mk) == 0) {
		mprev = &mk;
		if (bpf_map_lookup_elem(mfd, &mk, &r))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			np = realloc(parts, cap * sizeof(*parts));
			if (!np)
				break;
			parts = np;
		}
		parts[n++] = r;
		if (!(r.flags & BIO_RQ_F_SKIP))
			flush_one(&r, BIO_F_MERGED, now);
	}
	while (bpf_map_get_next_key(ifd, prev, &key) == 0) {
		prev = &key;
		if (bpf_map_lookup_elem(ifd, &key, &r))
			continue;
		/* the issue saw the bytes of the requests merged into it */
		for (size_t i = 0; r.issue_ns && i < n; i++)
			if (parts[i].disk == r.disk && parts[i].sector >= r.sector &&
			    parts[i].sector < r.sector + (r.bytes >> 9))
				r.bytes = r.bytes > parts[i].bytes ? r.bytes - parts[i].bytes : 0;
		flush_one(&r, 0, now);
	}
	free(parts);
}

/* The programs are detached: the last, partial interval too. */
static void bio_detached(void)
{
	struct bio_bpf *skel = obj.skel;
	uint64_t now = clock_now_ns(CLOCK_BOOTTIME);

	if (drain_gen >= 0)
		drain_hist(drain_gen, drain_end_ns, drain_len_ns);
	drain_gen = -1;
	drain_hist(skel->bss->hist_gen & 1, now, now - last_flip_ns);
	flush_in_flight();
}

static void bio_cleanup(void)
{
	free(keys);
	keys = NULL;
}

static void bio_user_stats(struct ps_stats *s)
{
	s->v[PS_STAT_MAP_FULL] += counter_get(&orphaned);
	s->v[PS_STAT_SEEN] += counter_get(&flushed);
	s->v[PS_STAT_EMITTED] += counter_get(&flushed);
	s->v[PS_STAT_READ_ERR] += counter_get(&malformed);
}

const struct tracer bio_tracer = {
	.name = "bio",
	.methods = methods,
	.n_methods = sizeof(methods) / sizeof(methods[0]),
	.obj = &obj,
	.rate_limited = true,
	.ringbuf_bytes = 1u << 20,
	.on_record = handle_event,
	.setup = bio_setup,
	.post_attach = bio_post_attach,
	.detached = bio_detached,
	.cleanup = bio_cleanup,
	.tick = bio_tick,
	.user_stats = bio_user_stats,
	.metrics_start = pod_metrics_bio_start,
	.metrics_stop = pod_metrics_bio_stop,
};
