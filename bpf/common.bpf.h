/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What every tracer's BPF program shares: the selection check against the
 * filter maps, the counters and ring buffer submission with batched wakeups.
 * Include after vmlinux.h and the libbpf BPF headers.
 */
#ifndef PS_COMMON_BPF_H
#define PS_COMMON_BPF_H

#include "common.h"

/*
 * The filter maps are created once by the agent and handed to every tracer
 * object with bpf_map__reuse_fd() before load, so one selection (and its
 * updates as pods come and go) applies to all tracers at once.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ps_filter_cfg);
} ps_filter_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PS_FILTER_MAX_IDS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, __u8);
} ps_cgroup_ids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PS_FILTER_MAX_IDS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, __u8);
} ps_mntns_ids SEC(".maps");

/* Per object: each tracer counts its own events. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ps_stats);
} ps_stats SEC(".maps");

/*
 * Wake the reader only once this much is queued; the agent also drains the
 * ring on a short timer. A wakeup per event costs more than the event itself
 * on slow-syscall VMs. Set by the agent before load.
 */
const volatile __u64 ps_wakeup_bytes = 1 << 20;

static __always_inline struct ps_stats *ps_stats_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ps_stats, &zero);
}

static __always_inline void ps_count(struct ps_stats *s, enum ps_stat which)
{
	/* Per-CPU slot: a plain increment is enough. */
	if (s)
		s->v[which]++;
}

static __always_inline __u64 ps_task_mntns(struct task_struct *task)
{
	return BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
}

/*
 * The current task's mount namespace. Walking trusted BTF pointers (5.11+)
 * costs a few loads where three probe reads cost far more, paid on every
 * event when --exclude-host or --mntns is on (bench/README.md).
 */
static __always_inline __u64 ps_current_mntns(void)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
		return bpf_get_current_task_btf()->nsproxy->mnt_ns->ns.inum;
	return ps_task_mntns((struct task_struct *)bpf_get_current_task());
}

/*
 * The current task as a trusted pointer, or NULL on kernels without
 * bpf_get_current_task_btf (before 5.11). Each helper call costs its own
 * dispatch: get it once per program run and hand it on.
 */
static __always_inline struct task_struct *ps_current_task_btf(void)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
		return bpf_get_current_task_btf();
	return NULL;
}

/*
 * The agent's own process, set by the tracers whose records its work would
 * feed (open: metadata refresh under /proc and the cgroup tree, spool files;
 * fs: output written to a traced filesystem). 0: not set, nobody is excluded.
 */
const volatile __u32 targ_self_tgid = 0;

/* Is t (ps_current_task_btf(): NULL before 5.11) the agent itself? */
static __always_inline bool ps_is_self(struct task_struct *t)
{
	return targ_self_tgid &&
	       (t ? t->tgid : bpf_get_current_pid_tgid() >> 32) == targ_self_tgid;
}

/*
 * The current task's cgroup v2 id: three loads through trusted pointers where
 * bpf_get_current_cgroup_id() takes and drops the RCU read lock through
 * out-of-line calls (the programs already run under RCU; bench/README.md).
 */
static __always_inline __u64 ps_current_cgroup_id(void)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
		return bpf_get_current_task_btf()->cgroups->dfl_cgrp->kn->id;
	return bpf_get_current_cgroup_id();
}

/*
 * Is this cgroup id in the selected set? The inline slots are compared all
 * at once, without branches (unused ones hold 0, which is no cgroup's id):
 * a loop with an exit per slot, inside the walk's loop, multiplied the
 * verifier's work and doubled the agent's start-up.
 */
static __always_inline bool ps_cgroup_id_selected(const struct ps_filter_cfg *cfg, __u64 id)
{
	const __u64 *v = cfg->inline_ids;

	_Static_assert(PS_FILTER_INLINE_IDS == 8, "the comparison below names 8 slots");
	if (!cfg->n_inline)
		return bpf_map_lookup_elem(&ps_cgroup_ids, &id) != NULL;
	return ((v[0] == id) | (v[1] == id) | (v[2] == id) | (v[3] == id) | (v[4] == id) |
		(v[5] == id) | (v[6] == id) | (v[7] == id));
}

/*
 * Is one of the current task's cgroup v2 ancestors (or its own cgroup) at the
 * selected levels in the id set? One helper call per selected level.
 */
static __always_inline bool ps_cgroup_ancestors_selected(const struct ps_filter_cfg *cfg,
							 __u32 levels)
{
	__u64 id;
	int lvl;

	for (lvl = 0; lvl < PS_CGROUP_MAX_LEVEL; lvl++) {
		if (!(levels >> lvl))
			break; /* no selected level this deep */
		if (!(levels & (1u << lvl)))
			continue;
		/* 0 once lvl is deeper than the task's own cgroup */
		id = bpf_get_current_ancestor_cgroup_id(lvl);
		if (!id)
			break;
		if (ps_cgroup_id_selected(cfg, id))
			return true;
	}
	return false;
}

/*
 * Levels the walk goes through: Kubernetes' containers sit 4 to 6 deep; a
 * deeper task takes the helper path. Each level walked is verified again when
 * the agent starts (28 programs of the fs tracer carry this walk).
 */
#define PS_CGROUP_WALK_MAX	16

/*
 * The same, walking up from the task's cgroup through trusted BTF pointers
 * (bpf_get_current_task_btf, 5.11+): a few loads per level, where each
 * bpf_get_current_ancestor_cgroup_id() call takes and drops the RCU read
 * lock. Stops as soon as no selected level is left at or above the cgroup in
 * hand, so a task shallower than every selected cgroup (the host's, in the
 * root or a slice) is rejected without a map lookup. What it saves:
 * bench/README.md, "what changed".
 */
static __always_inline bool ps_cgroup_walk_selected(const struct ps_filter_cfg *cfg,
						    struct task_struct *t, __u32 levels)
{
	struct cgroup *c = t->cgroups->dfl_cgrp;
	struct cgroup_subsys_state *parent;
	__u32 lvl;
	__u64 id;
	int i;

	if (!c || c->level >= PS_CGROUP_WALK_MAX)
		return ps_cgroup_ancestors_selected(cfg, levels); /* deeper than the walk goes */
	for (i = 0; i < PS_CGROUP_WALK_MAX && c; i++) {
		lvl = c->level;
		/* bits 0..lvl of the selected levels (lvl < 16 from here on) */
		if (lvl >= PS_CGROUP_WALK_MAX || !(levels & ((2u << lvl) - 1)))
			return false;
		if (levels & (1u << lvl)) {
			id = c->kn->id;
			if (ps_cgroup_id_selected(cfg, id))
				return true;
		}
		parent = c->self.parent;
		if (!parent)
			return false;
		c = parent->cgroup;
	}
	return false;
}

/*
 * Is the current task selected? t: ps_current_task_btf(). Selections are a
 * union: a task matches when its cgroup is (under) a selected cgroup or its
 * mount namespace is selected. --exclude-host then removes tasks in the host
 * mount namespace.
 */
static __always_inline bool ps_selected(struct task_struct *t)
{
	struct ps_filter_cfg *cfg;
	__u32 zero = 0;
	__u64 mntns = 0;

	cfg = bpf_map_lookup_elem(&ps_filter_cfg, &zero);
	if (!cfg || !cfg->flags)
		return true;

	if (cfg->flags & (PS_F_MNTNS | PS_F_EXCLUDE_HOST)) {
		mntns = t ? t->nsproxy->mnt_ns->ns.inum :
			    ps_task_mntns((struct task_struct *)bpf_get_current_task());
		if ((cfg->flags & PS_F_EXCLUDE_HOST) && mntns == cfg->host_mntns)
			return false;
	}
	if (!(cfg->flags & (PS_F_CGROUP | PS_F_MNTNS)))
		return true;
	if ((cfg->flags & PS_F_MNTNS) && bpf_map_lookup_elem(&ps_mntns_ids, &mntns))
		return true;
	if (!(cfg->flags & PS_F_CGROUP))
		return false;
	if (t)
		return ps_cgroup_walk_selected(cfg, t, cfg->cgroup_levels);
	return ps_cgroup_ancestors_selected(cfg, cfg->cgroup_levels);
}

static __always_inline bool ps_current_selected(void)
{
	return ps_selected(ps_current_task_btf());
}

/*
 * --rate-limit, set by the agent before load: the period is 1e9 / rate (ns
 * per record), burst_ns the burst times the period; period 0: no limit.
 * Rounding the period down lets through at most 1e9 / (1e9 / rate) records
 * a second: 0.1% more than asked at a million a second.
 */
const volatile __u64 ps_rl_period_ns = 0;
const volatile __u64 ps_rl_burst_ns = 0;
const volatile __u32 ps_rl_tracer = 0;	/* the tracer's index, for ps_rl_note */
/* 64-bit compare-and-exchange (5.12+); without it the bucket is updated with plain stores */
const volatile bool ps_rl_cas = true;
/* --shed: share a nearly full ring fairly between cgroups (ps_fair_admit) */
const volatile bool ps_fair_on = false;

/*
 * The buckets of this tracer by cgroup id (PS_RL_ENTRIES; 1 entry when there
 * is neither a limit nor --shed). --shed keeps its counts here too: one
 * lookup serves both.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PS_RL_ENTRIES);
	__type(key, __u64);
	__type(value, struct ps_rl_val);
} ps_rl SEC(".maps");

/* Shared by every tracer object, like the filter maps (bpf_map__reuse_fd). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PS_RL_NOTES_BYTES);
} ps_rl_notes SEC(".maps");

/* What every cgroup offered lately, for --shed: one per object, like its ring. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ps_fair);
} ps_fair SEC(".maps");

/* Attempts at the bucket's compare-and-exchange before a record counts as refused. */
#define PS_RL_TRIES 4

/*
 * Move a window stamp from old to new; true for the one CPU that did, which
 * then turns the counts over (plain stores without compare-and-exchange:
 * two CPUs may both turn them, which halves them twice).
 */
static __always_inline bool ps_turn(__u64 *stamp, __u64 old, __u64 new)
{
	if (ps_rl_cas)
		return __sync_val_compare_and_swap(stamp, old, new) == old;
	*stamp = new;
	return true;
}

/* A record of this cgroup refused (stage: PS_STAT_RATE_LIMITED or PS_STAT_SHED). */
static __always_inline void ps_rl_refuse(struct ps_stats *s, struct ps_rl_val *v, __u64 cgroup_id,
					 __u64 now, enum ps_stat stage, __u64 *count)
{
	struct ps_rl_note note = { .cgroup_id = cgroup_id, .tracer = ps_rl_tracer };
	__u64 noted;

	/* the tracer's count first: the agent reads the buckets, then this, and finds it >= */
	ps_count(s, stage);
	__sync_fetch_and_add(count, 1);
	noted = v->noted_ns;
	if (noted && now - noted < PS_RL_NOTE_NS)
		return;
	/* one CPU sends the note; a full notes ring is caught by the agent's next interval */
	if (!ps_turn(&v->noted_ns, noted, now))
		return;
	bpf_ringbuf_output(&ps_rl_notes, &note, sizeof(note), BPF_RB_FORCE_WAKEUP);
}

/* A new bucket's value is built here: the stack of some tracers has no room for it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ps_rl_val);
} ps_rl_init SEC(".maps");

/* This cgroup's bucket, made on its first record; NULL (counted) if it cannot be. */
static __always_inline struct ps_rl_val *ps_rl_bucket(struct ps_stats *s, __u64 cgroup_id,
						      __u64 now)
{
	struct ps_rl_val *v, *init;
	__u32 zero = 0;

	v = bpf_map_lookup_elem(&ps_rl, &cgroup_id);
	if (v)
		return v;
	init = bpf_map_lookup_elem(&ps_rl_init, &zero);
	if (init) {
		__builtin_memset(init, 0, sizeof(*init));
		init->tat_ns = init->first_ns = init->last_ns = now;
		/* EEXIST: another CPU made it first; an LRU hash evicts, it is never full */
		bpf_map_update_elem(&ps_rl, &cgroup_id, init, BPF_NOEXIST);
	}
	v = bpf_map_lookup_elem(&ps_rl, &cgroup_id);
	if (!v)
		ps_count(s, PS_STAT_MAP_FULL); /* no bucket to charge: the ring decides */
	return v;
}

/*
 * May this cgroup write another record? GCRA: the bucket is one time stamp,
 * moved on by a period per admitted record and never behind now, so a
 * compare-and-exchange is the whole update: CPUs that race retry against
 * the winner's value, no lock (tracing programs may not take bpf_spin_lock).
 * Runs after the selection: filtered-out events never get here.
 */
static __always_inline bool ps_rl_admit(struct ps_stats *s, struct ps_rl_val *v, __u64 cgroup_id,
					__u64 now)
{
	__u64 tat, t0, next;
	int i;

	for (i = 0; i < PS_RL_TRIES; i++) {
		tat = *(volatile __u64 *)&v->tat_ns;
		t0 = tat > now ? tat : now;
		next = t0 + ps_rl_period_ns;
		if (next - now > ps_rl_burst_ns)
			break; /* empty */
		if (ps_rl_cas) {
			if (__sync_val_compare_and_swap(&v->tat_ns, tat, next) != tat)
				continue;
		} else {
			v->tat_ns = next;
		}
		if (now > tat) /* the bucket was full: these tokens overflowed */
			__sync_fetch_and_add(&v->idle_ns, now - tat);
		__sync_fetch_and_add(&v->passed, 1);
		v->last_ns = now;
		return true;
	}
	v->last_ns = now;
	ps_rl_refuse(s, v, cgroup_id, now, PS_STAT_RATE_LIMITED, &v->dropped);
	return false;
}

/*
 * The ring is more than PS_FAIR_HIGH_NUM/PS_FAIR_HIGH_DEN full: may this
 * cgroup's record take room? Only while the cgroup has offered fewer
 * records lately than the mean of the cgroups that offered any (n * k <
 * total): whoever floods is above the mean and refused, a quiet cgroup is
 * below it and written; a cgroup alone is at the mean and refused too, so
 * that the room above the mark is left for the next cgroup to come. Offered
 * counts (refused ones included) rather than written ones: a flooder held
 * back does not come back under the mean by being held back. Below the
 * floor a cgroup is never refused: so few records (of 256 bytes, a quarter
 * of the room above the mark) that one arriving alone keeps them, and a
 * flooder alone takes no more than that before it is above it. Races (a
 * window turned by two CPUs, adds lost to a turn) move the line by a record
 * or so.
 */
static __always_inline bool ps_fair_admit(void *rb, struct ps_stats *s, struct ps_rl_val *v,
					  __u64 cgroup_id, __u64 now)
{
	__u64 win = now >> PS_FAIR_WIN_SHIFT, gw, vw, d, k;
	struct ps_fair *g;
	__u32 zero = 0;

	g = bpf_map_lookup_elem(&ps_fair, &zero);
	if (!g)
		return true;
	/* greater only: another CPU's clock may be a little behind the one that turned it */
	gw = *(volatile __u64 *)&g->win;
	if (win > gw && ps_turn(&g->win, gw, win)) {
		d = win - gw;
		g->joined_prev = d == 1 ? g->joined : 0;
		g->joined = 0;
		g->total = d < 64 ? g->total >> d : 0;
	}
	vw = *(volatile __u64 *)&v->fair_win;
	if (win > vw && ps_turn(&v->fair_win, vw, win)) {
		d = win - vw;
		v->fair_n = d < 64 ? v->fair_n >> d : 0;
		__sync_fetch_and_add(&g->joined, 1);
	}
	__sync_fetch_and_add(&v->fair_n, 1);
	__sync_fetch_and_add(&g->total, 1);
	/* the cgroups of this window or, early in it, of the one before */
	k = g->joined > g->joined_prev ? g->joined : g->joined_prev;
	if (v->fair_n <= bpf_ringbuf_query(rb, BPF_RB_RING_SIZE) >> 12 ||
	    v->fair_n * k < g->total)
		return true;
	ps_rl_refuse(s, v, cgroup_id, now, PS_STAT_SHED, &v->shed);
	return false;
}

/*
 * What this CPU knows of the object's ring buffer: the bytes offered to it
 * since this CPU last looked at how much is queued, and whether the ring was
 * above its high-water mark then. Reading the fill level means reading the
 * ring's consumer position, a cache line the reader keeps writing from
 * another CPU: a measurable share of an open() when done for every record
 * (bench/README.md).
 */
struct ps_rb_cpu {
	__u64 unchecked;
	__u64 high;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ps_rb_cpu);
} ps_rb_cpu SEC(".maps");

static __always_inline bool ps_rb_high(void *rb, __u64 avail)
{
	return avail * PS_FAIR_HIGH_DEN > bpf_ringbuf_query(rb, BPF_RB_RING_SIZE) * PS_FAIR_HIGH_NUM;
}

/*
 * Look at the ring: the wakeup flags for this record (the reader is woken
 * once ps_wakeup_bytes are queued) and, with --shed, whether it is high.
 */
static __always_inline __u64 ps_rb_look(void *rb, struct ps_rb_cpu *c)
{
	__u64 avail = bpf_ringbuf_query(rb, BPF_RB_AVAIL_DATA);

	if (c)
		c->high = ps_fair_on && ps_rb_high(rb, avail);
	return avail >= ps_wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/*
 * Copy a finished record of this cgroup into the ring buffer, after its
 * token bucket and, when the ring is high, its fair share, counting the
 * outcome. The ring is looked at once every ps_wakeup_bytes / 64 bytes a
 * CPU offers (the threshold is 1/8 of the ring): the reader may be woken up
 * to 1/64 of the threshold per CPU late (it drains on a timer too), and a
 * CPU may write that much above the high-water mark before it sees it.
 * Offered bytes, refused ones included, so that a CPU whose records are
 * all shed still looks again and sees the ring drained.
 */
static __always_inline void ps_output(void *rb, struct ps_stats *s, __u64 cgroup_id, void *data,
				      __u64 size)
{
	__u64 now = 0, flags = BPF_RB_NO_WAKEUP;
	struct ps_rl_val *v;
	struct ps_rb_cpu *c;
	bool high = false;
	__u32 zero = 0;

	c = bpf_map_lookup_elem(&ps_rb_cpu, &zero);
	if (!c) {
		flags = ps_rb_look(rb, NULL);
	} else {
		c->unchecked += size;
		if (c->unchecked >= (ps_wakeup_bytes >> 6)) {
			c->unchecked = 0;
			flags = ps_rb_look(rb, c);
		}
		/* this CPU's view may be old: look again before refusing anything */
		if (c->high && !(high = ps_rb_high(rb, bpf_ringbuf_query(rb, BPF_RB_AVAIL_DATA))))
			c->high = 0;
	}
	/* one bucket lookup for both: the bucket's init is on a stack some tracers fill */
	if (ps_rl_period_ns || high) {
		now = bpf_ktime_get_ns();
		v = ps_rl_bucket(s, cgroup_id, now);
		if (v && ps_rl_period_ns && !ps_rl_admit(s, v, cgroup_id, now))
			return;
		if (v && high && !ps_fair_admit(rb, s, v, cgroup_id, now))
			return;
	}
	if (bpf_ringbuf_output(rb, data, size, flags))
		ps_count(s, PS_STAT_LOST);
	else
		ps_count(s, PS_STAT_EMITTED);
}

#endif /* PS_COMMON_BPF_H */
