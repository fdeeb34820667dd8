// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * --rate-limit and --shed, user side. The buckets live in each tracer's LRU
 * hash (bpf/common.bpf.h); this reads their refusal counts, by the bucket
 * (rate_limited) and for the ring's sake (shed), and hands them on as loss
 * records, per cgroup: at once for a cgroup the kernel has just noted as
 * throttled (the notes ring), every interval for all of them, and at the
 * end. What an evicted bucket had not reported yet is still counted, without
 * a cgroup, from the tracer's own count.
 */
#include <errno.h>
#include <stddef.h>
#include <time.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/clock.h"
#include "agent/log.h"
#include "agent/loop.h"
#include "agent/out/output.h"
#include "agent/tracers/kfeatures.h"
#include "agent/tracers/ratelimit.h"

/* Slots of a table of what was reported per cgroup: twice the kernel's bound. */
#define RL_SLOTS (2 * PS_RL_ENTRIES)

/* The two ways a bucket refuses a record: its count in the bucket, the tracer's, the stage. */
enum rl_stage { RL_LIMITED, RL_SHED, RL_STAGES };

static const struct {
	size_t off;		/* of the count in struct ps_rl_val */
	enum ps_stat stat;
	const char *name;
} stages[RL_STAGES] = {
	[RL_LIMITED] = { offsetof(struct ps_rl_val, dropped), PS_STAT_RATE_LIMITED,
			 "rate_limited" },
	[RL_SHED] = { offsetof(struct ps_rl_val, shed), PS_STAT_SHED, "shed" },
};

static uint64_t count_of(const struct ps_rl_val *v, enum rl_stage st)
{
	return *(const uint64_t *)((const char *)v + stages[st].off);
}

struct rl_seen {
	uint64_t cgroup_id;	/* 0: empty slot (bio's unknown cgroup is kept as id 0 + used) */
	uint64_t first_ns;	/* the bucket's; another value: a new bucket, counting from 0 */
	uint64_t refused[RL_STAGES]; /* as far as reported */
	bool used;
};

struct rl_tracer {
	bool on;
	struct rl_seen seen[RL_SLOTS];
	uint64_t attributed[RL_STAGES];	/* reported with a cgroup */
	uint64_t unattributed[RL_STAGES]; /* reported without: buckets evicted before being read */
	uint64_t prev_global[RL_STAGES]; /* the tracer's count at the previous full read */
};

static struct rl_tracer rt[CFG_MAX_TRACERS];
static struct rl_seen scratch[RL_SLOTS];
static const struct ps_config *conf;
static int notes_fd = -1;
static bool have_cas;

static struct rl_seen *slot(struct rl_seen *tab, uint64_t cg, bool insert)
{
	size_t i = (size_t)(cg * 0x9E3779B97F4A7C15ull >> 40) % RL_SLOTS;

	for (size_t n = 0; n < RL_SLOTS; n++, i = (i + 1) % RL_SLOTS) {
		if (!tab[i].used)
			return insert ? &tab[i] : NULL;
		if (tab[i].cgroup_id == cg)
			return &tab[i];
	}
	return NULL; /* full: cannot happen with twice the kernel's entries */
}

static void emit(uint32_t index, enum rl_stage st, uint64_t cg, bool has_cg, uint64_t count,
		 uint64_t total)
{
	struct loss_rec l = {
		.wall_ns = clock_wall_from_boot(clock_now_ns(CLOCK_BOOTTIME)),
		.tracer = tracer_table[index]->name,
		.stage = stages[st].name,
		.count = count,
		.total = total,
		.has_cgroup = has_cg,
		.cgroup_id = cg,
	};

	out_loss(&l);
}

/* One bucket read: report what it refused since last time; the slot it is in now. */
static void account(uint32_t index, struct rl_seen *tab, const struct rl_seen *old, uint64_t cg,
		    const struct ps_rl_val *v)
{
	struct rl_seen *s = slot(tab, cg, true);

	if (!s)
		return;
	for (int st = 0; st < RL_STAGES; st++) {
		uint64_t now = count_of(v, st), before = 0;

		if (old && old->first_ns == v->first_ns && old->refused[st] <= now)
			before = old->refused[st];
		if (now > before) {
			rt[index].attributed[st] += now - before;
			emit(index, st, cg, true, now - before, now);
		}
		s->refused[st] = now > before ? now : before;
	}
	s->used = true;
	s->cgroup_id = cg;
	s->first_ns = v->first_ns;
}

/* The kernel noted a throttled cgroup: its count, now. */
static void note_one(uint32_t index, uint64_t cg)
{
	const struct tracer *t = tracer_table[index];
	struct rl_seen *s, old;
	struct ps_rl_val v;

	if (!rt[index].on || bpf_map_lookup_elem(bpf_map__fd(t->obj->rl), &cg, &v))
		return;
	s = slot(rt[index].seen, cg, false);
	if (s) {
		old = *s;
		account(index, rt[index].seen, &old, cg, &v);
	} else {
		account(index, rt[index].seen, NULL, cg, &v);
	}
}

static int on_note(void *ctx, void *data, size_t size)
{
	const struct ps_rl_note *n = data;

	(void)ctx;
	if (size < sizeof(*n) || n->tracer >= tracer_count)
		return 0;
	note_one(n->tracer, n->cgroup_id);
	return 0;
}

/* Every bucket of one tracer; the table is rebuilt so that evicted buckets leave it. */
static void read_all(uint32_t index, bool final)
{
	const struct tracer *t = tracer_table[index];
	struct rl_tracer *r = &rt[index];
	int fd = bpf_map__fd(t->obj->rl);
	uint64_t key, next, global, upto, due;
	struct ps_rl_val v;
	int st;
	struct ps_stats stats;
	void *prev = NULL;

	memset(scratch, 0, sizeof(scratch));
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &v) || !(v.dropped | v.shed))
			continue; /* gone since, or never refused anything */
		account(index, scratch, slot(r->seen, key, false), key, &v);
	}
	memcpy(r->seen, scratch, sizeof(scratch));
	/*
	 * The kernel counts the tracer's refusal before the bucket's: what the
	 * tracer had counted at the previous read and no bucket has reported
	 * by now was in a bucket evicted before it was read. At the end, with
	 * the programs detached, nothing is between the two counts: the
	 * tracer's count now is the whole of it.
	 */
	if (tracer_read_stats(t, &stats))
		return;
	for (st = 0; st < RL_STAGES; st++) {
		global = stats.v[stages[st].stat];
		upto = final ? global : r->prev_global[st];
		due = upto > r->attributed[st] + r->unattributed[st] ?
			      upto - r->attributed[st] - r->unattributed[st] : 0;
		if (due) {
			r->unattributed[st] += due;
			emit(index, st, 0, false, due, r->unattributed[st]);
		}
		r->prev_global[st] = global;
	}
}

void rl_report(bool final)
{
	for (uint32_t i = 0; i < tracer_count; i++)
		if (rt[i].on)
			read_all(i, final);
}

int rl_init(const struct ps_config *cfg)
{
	int err;

	conf = cfg;
	memset(rt, 0, sizeof(rt));
	have_cas = feat_atomic_cas();
	if (cfg->rate_limit && !have_cas)
		pr_warn("--rate-limit: this kernel has no BPF compare-and-exchange (5.12+): "
			"CPUs racing on one cgroup's bucket may let a few more records through");
	notes_fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "ps_rl_notes", 0, 0, PS_RL_NOTES_BYTES,
				  NULL);
	if (notes_fd < 0)
		return -errno;
	err = loop_add_ring(notes_fd, on_note, NULL);
	if (err)
		rl_free();
	return err;
}

void rl_free(void)
{
	if (notes_fd >= 0)
		close(notes_fd);
	notes_fd = -1;
}

/* Does this tracer keep buckets: a limit, or --shed, on its records? */
static bool buckets_on(const struct tracer *t)
{
	return conf && t->rate_limited && (conf->rate_limit || conf->shed);
}

int rl_configure(const struct tracer *t, uint32_t index)
{
	struct tracer_obj *o = t->obj;
	bool on = conf && conf->rate_limit && t->rate_limited;
	struct bpf_map *notes;
	int err;

	if (!o->rl)
		return 0; /* an object without the shared tail's maps */
	if (on) {
		/* rounded down: at most 0.1% faster than asked (CFG_RATE_LIMIT_MAX: 10 ns) */
		uint64_t period = 1000000000ull / conf->rate_limit;

		*o->rl_period_ns = period;
		*o->rl_burst_ns = period * conf->rate_burst;
	}
	*o->rl_tracer = index;
	*o->rl_cas = have_cas;
	*o->fair_on = buckets_on(t) && conf->shed;
	err = bpf_map__set_max_entries(o->rl, buckets_on(t) ? PS_RL_ENTRIES : 1);
	if (err)
		return err;
	notes = bpf_object__find_map_by_name(*o->s->obj, "ps_rl_notes");
	if (!notes)
		return -ENOENT;
	if (notes_fd < 0) /* no rl_init(): each object keeps a ring of its own, unread */
		return 0;
	return bpf_map__reuse_fd(notes, notes_fd);
}

void rl_tracer_started(uint32_t index)
{
	const struct tracer *t = tracer_table[index];

	rt[index].on = buckets_on(t) && t->obj->rl;
}
