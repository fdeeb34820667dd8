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

/* Flags for bpf_ringbuf_submit/output implementing the batched wakeup. */
static __always_inline __u64 ps_rb_flags(void *rb)
{
	return bpf_ringbuf_query(rb, BPF_RB_AVAIL_DATA) >= ps_wakeup_bytes ?
		       BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

/*
 * Bytes this CPU has written to the object's ring buffer since it last
 * looked at how much is queued. Reading the ring's fill level means reading
 * its consumer position, a cache line the reader keeps writing from another
 * CPU: a measurable share of an open() when done for every record
 * (bench/README.md).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ps_rb_unchecked SEC(".maps");

/*
 * ps_rb_flags(), asked only once every ps_wakeup_bytes / 64 bytes a CPU
 * writes: the reader may then be woken up to 1/64 of the threshold per CPU
 * later (the threshold is 1/8 of the ring; the reader drains on a timer too).
 */
static __always_inline __u64 ps_rb_flags_every(void *rb, __u64 size)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&ps_rb_unchecked, &zero);

	if (n) {
		*n += size;
		if (*n < (ps_wakeup_bytes >> 6))
			return BPF_RB_NO_WAKEUP;
		*n = 0;
	}
	return ps_rb_flags(rb);
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

/* The buckets of this tracer by cgroup id (PS_RL_ENTRIES; 1 entry when there is no limit). */
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

/* Attempts at the bucket's compare-and-exchange before a record counts as refused. */
#define PS_RL_TRIES 4

static __always_inline void ps_rl_refuse(struct ps_stats *s, struct ps_rl_val *v, __u64 cgroup_id,
					 __u64 now)
{
	struct ps_rl_note note = { .cgroup_id = cgroup_id, .tracer = ps_rl_tracer };
	__u64 noted;

	/* the tracer's count first: the agent reads the buckets, then this, and finds it >= */
	ps_count(s, PS_STAT_RATE_LIMITED);
	__sync_fetch_and_add(&v->dropped, 1);
	v->last_ns = now;
	noted = v->noted_ns;
	if (noted && now - noted < PS_RL_NOTE_NS)
		return;
	/* one CPU sends the note; a full notes ring is caught by the agent's next interval */
	if (ps_rl_cas) {
		if (__sync_val_compare_and_swap(&v->noted_ns, noted, now) != noted)
			return;
	} else {
		v->noted_ns = now;
	}
	bpf_ringbuf_output(&ps_rl_notes, &note, sizeof(note), BPF_RB_FORCE_WAKEUP);
}

/*
 * May this cgroup write another record? GCRA: the bucket is one time stamp,
 * moved on by a period per admitted record and never behind now, so a
 * compare-and-exchange is the whole update: CPUs that race retry against
 * the winner's value, no lock (tracing programs may not take bpf_spin_lock).
 * Runs after the selection: filtered-out events never get here.
 */
static __always_inline bool ps_rl_admit(struct ps_stats *s, __u64 cgroup_id)
{
	struct ps_rl_val *v, init = {};
	__u64 now, tat, t0, next;
	int i;

	if (!ps_rl_period_ns)
		return true;
	now = bpf_ktime_get_ns();
	v = bpf_map_lookup_elem(&ps_rl, &cgroup_id);
	if (!v) {
		init.tat_ns = init.first_ns = init.last_ns = now;
		/* EEXIST: another CPU made it first; an LRU hash evicts, it is never full */
		bpf_map_update_elem(&ps_rl, &cgroup_id, &init, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&ps_rl, &cgroup_id);
		if (!v) {
			ps_count(s, PS_STAT_MAP_FULL);
			return true; /* no bucket to charge: the ring decides */
		}
	}
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
	ps_rl_refuse(s, v, cgroup_id, now);
	return false;
}

/*
 * Copy a finished record of this cgroup into the ring buffer, after its
 * token bucket, counting the outcome.
 */
static __always_inline void ps_output(void *rb, struct ps_stats *s, __u64 cgroup_id, void *data,
				      __u64 size)
{
	if (!ps_rl_admit(s, cgroup_id))
		return;
	if (bpf_ringbuf_output(rb, data, size, ps_rb_flags_every(rb, size)))
		ps_count(s, PS_STAT_LOST);
	else
		ps_count(s, PS_STAT_EMITTED);
}

#endif /* PS_COMMON_BPF_H */
