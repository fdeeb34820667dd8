// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Block I/O tracer: a record per slow request (biosnoop) and log2 latency
 * histograms per (cgroup, disk, op) (biolatency), attributed to the cgroup
 * the I/O belongs to.
 *
 * Attribution is decided where the request is made, in the submitting
 * task's context (block_io_start, or block_getrq before 6.5): never at
 * completion, which runs in interrupt context with an unrelated `current`.
 * When the request's bio carries a blkcg on cgroup v2 that the submitter is
 * not inside (cgroup writeback: a flusher kworker writing pages a pod
 * dirtied), the I/O is charged to that blkcg's cgroup instead. The state
 * lives in a hash keyed by the request until block_rq_complete.
 *
 * Hook sets, picked by the agent before load: tp_btf or raw_tp, with
 * block_io_start (6.5+) or block_getrq as the start, and block_rq_insert /
 * block_rq_issue with or without the request_queue argument they had
 * before 5.11.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "common.bpf.h"
#include "core_fixes.bpf.h"
#include "bio.h"

#define PS_EEXIST 17

const volatile __u64 targ_min_ns = BIO_MIN_US_DEF * 1000ull;
const volatile __u8 targ_method = BIO_M_IO_START;
const volatile bool targ_getrq = false; /* start state is keyed by bio, moved to the request */

/* Which histogram map is being filled; the agent flips it each interval and drains the other. */
__u32 hist_gen = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20); /* resized by the agent */
} ps_bio_rb SEC(".maps");

/* Requests in flight, by address; more than any sum of queue depths here. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct bio_rq);
} ps_bio_inflight SEC(".maps");

/* block_getrq methods: between block_getrq (a bio) and the request's first insert/issue. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096); /* 1 when unused */
	__type(key, __u64);
	__type(value, struct bio_rq);
} ps_bio_bios SEC(".maps");

/* Requests merged into another, until that one completes (struct bio_merge_key). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct bio_merge_key);
	__type(value, struct bio_rq);
} ps_bio_merged SEC(".maps");

/* Set at the first merge: completions look for merged parts only from then on. */
__u32 merges_seen = 0;

/*
 * Two generations of histograms: one filled, one drained by the agent. Resized by the agent.
 * Preallocated: rows are inserted at completion, in interrupt context, where a map that
 * allocates as it fills can fail for want of free elements (counted as map full).
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BIO_HIST_ENTRIES_DEF);
	__type(key, struct bio_hist_key);
	__type(value, struct bio_hist_val);
} ps_bio_hist0 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, BIO_HIST_ENTRIES_DEF);
	__type(key, struct bio_hist_key);
	__type(value, struct bio_hist_val);
} ps_bio_hist1 SEC(".maps");

static const struct bio_hist_val zero_hist = {};

static __always_inline bool filter_active(void)
{
	struct ps_filter_cfg *cfg;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&ps_filter_cfg, &zero);
	return cfg && cfg->flags;
}

/*
 * Selection for I/O charged to a cgroup rather than a task: the cgroup or
 * one of its ancestors is selected. Mount-namespace selectors cannot match
 * (no task), and --exclude-host alone lets it through (it is no host task).
 */
static __always_inline bool cgroup_selected(struct cgroup *cg, __u32 cg_level)
{
	struct ps_filter_cfg *cfg;
	__u32 zero = 0, levels;
	__u64 id;
	__u32 lvl;

	cfg = bpf_map_lookup_elem(&ps_filter_cfg, &zero);
	if (!cfg || !cfg->flags)
		return true;
	if (!(cfg->flags & PS_F_CGROUP))
		return !(cfg->flags & PS_F_MNTNS);
	levels = cfg->cgroup_levels;
	for (lvl = 0; lvl < PS_CGROUP_MAX_LEVEL; lvl++) {
		if (!(levels & (1u << lvl)))
			continue;
		if (lvl > cg_level)
			break;
		id = ps_cgroup_ancestor_id(cg, lvl);
		if (id && bpf_map_lookup_elem(&ps_cgroup_ids, &id))
			return true;
	}
	return false;
}

/*
 * tp_btf hands the programs trusted pointers: plain loads then, where raw_tp
 * needs a probe read per step (bench/README.md, block I/O). targ_method is rodata, so
 * the verifier drops the branch a program cannot take.
 */
#define BIO_BTF (targ_method == BIO_M_IO_START || targ_method == BIO_M_GETRQ)
/* one field of p: a plain load with tp_btf, a probe read with raw_tp */
#define BIO_READ(p, f) (BIO_BTF ? (p)->f : BPF_CORE_READ(p, f))

/* The cgroup the bio is charged to (its blkcg's), or NULL. */
static __always_inline struct cgroup *bio_blk_cgroup(struct bio *bio)
{
	struct blkcg_gq *blkg;

	/* bi_blkg exists with CONFIG_BLK_CGROUP */
	if (!bio || !bpf_core_field_exists(bio->bi_blkg))
		return NULL;
	if (BIO_BTF) {
		blkg = bio->bi_blkg;
		return blkg ? blkg->blkcg->css.cgroup : NULL;
	}
	return BPF_CORE_READ(bio, bi_blkg, blkcg, css.cgroup);
}

/* The root of the current task's cgroup v2 hierarchy (only compared, never read). */
static __always_inline __u64 current_dfl_root(void)
{
	/* trusted pointers: plain loads instead of three probe reads */
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
		return (__u64)bpf_get_current_task_btf()->cgroups->dfl_cgrp->root;
	return (__u64)BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), cgroups,
				    dfl_cgrp, root);
}

/* The submitter, once the request is known to be selected. */
static __always_inline void submitter(struct bio_rq *r)
{
	__u64 id = bpf_get_current_pid_tgid();

	r->start_ns = bpf_ktime_get_ns();
	r->pid = id >> 32;
	r->tid = (__u32)id;
	bpf_get_current_comm(&r->comm, sizeof(r->comm));
}

/*
 * Who a new request belongs to, in the submitter's context. Returns whether
 * it is selected. Every request of every task pays what comes before the
 * selection decision, so the submitter's details are read only after it.
 */
static __always_inline bool submit_info(struct bio *bio, struct bio_rq *r)
{
	struct cgroup *blk_cg = NULL;
	__u32 level;

	blk_cg = bio_blk_cgroup(bio);
	if (blk_cg) {
		/* on a hybrid node the io controller may sit on a v1 hierarchy: other ids */
		if ((__u64)BIO_READ(blk_cg, root) != current_dfl_root()) {
			r->flags |= BIO_F_BLKCG_V1;
		} else {
			level = BIO_READ(blk_cg, level);
			r->blkcg_id = BIO_BTF ? blk_cg->kn->id : BPF_CORE_READ(blk_cg, kn, id);
			/*
			 * The root blkcg says nothing; a blkcg the submitter is
			 * inside is coarser than the submitter's own cgroup.
			 */
			if (level > 0 && level < PS_CGROUP_MAX_LEVEL &&
			    bpf_get_current_ancestor_cgroup_id(level) != r->blkcg_id) {
				if (!cgroup_selected(blk_cg, level))
					return false;
				r->attribution = BIO_A_BLKCG;
				r->cgroup_id = r->blkcg_id;
				r->mntns_id = 0;
				submitter(r);
				return true;
			}
		}
	}
	if (!ps_current_selected())
		return false;
	r->attribution = BIO_A_SUBMITTER;
	r->cgroup_id = ps_current_cgroup_id();
	r->mntns_id = ps_current_mntns();
	submitter(r);
	return true;
}

static __always_inline void decode_op(__u32 cmd, __u8 *op, __u8 *op_flags)
{
	__u8 f = 0;

	switch (cmd & 0xff) { /* REQ_OP_MASK: the low 8 bits since 4.10 */
	case 0:
		*op = BIO_OP_READ;
		break;
	case 1:
		*op = BIO_OP_WRITE;
		break;
	case 2:
		*op = BIO_OP_FLUSH;
		break;
	case 3:
		*op = BIO_OP_DISCARD;
		break;
	case 5:
		*op = BIO_OP_DISCARD;
		f |= BIO_OPF_SECURE;
		break;
	default:
		*op = BIO_OP_OTHER;
	}
	if (cmd & (1u << bpf_core_enum_value(enum req_flag_bits, __REQ_SYNC)))
		f |= BIO_OPF_SYNC;
	if (cmd & (1u << bpf_core_enum_value(enum req_flag_bits, __REQ_META)))
		f |= BIO_OPF_META;
	if (cmd & (1u << bpf_core_enum_value(enum req_flag_bits, __REQ_FUA)))
		f |= BIO_OPF_FUA;
	if (cmd & (1u << bpf_core_enum_value(enum req_flag_bits, __REQ_PREFLUSH)))
		f |= BIO_OPF_PREFLUSH;
	if (cmd & (1u << bpf_core_enum_value(enum req_flag_bits, __REQ_RAHEAD)))
		f |= BIO_OPF_RAHEAD;
	*op_flags = f;
}

/* Which disk and operation rq is, and its size so far, for a record made without its completion. */
static __always_inline void where(struct request *rq, struct bio_rq *r)
{
	struct gendisk *disk = ps_rq_disk(rq);

	r->disk = (__u64)disk;
	r->dev = (BPF_CORE_READ(disk, major) << 20) | BPF_CORE_READ(disk, first_minor);
	decode_op(BIO_READ(rq, cmd_flags), &r->op, &r->op_flags);
	r->sector = BIO_READ(rq, __sector);
	r->bytes = BIO_READ(rq, __data_len);
}

/* The in-flight state of rq; made on first sight when no start was seen. */
static __always_inline struct bio_rq *rq_entry(struct request *rq)
{
	__u64 key = (__u64)rq, bkey;
	struct bio_rq *r, fresh = {};

	if (targ_getrq) {
		bkey = (__u64)BPF_CORE_READ(rq, bio);
		r = bpf_map_lookup_elem(&ps_bio_bios, &bkey);
		if (r) {
			long err;

			/* an entry at the request's address: an earlier one, completed unseen, lost */
			if (bpf_map_lookup_elem(&ps_bio_inflight, &key) &&
			    !bpf_map_delete_elem(&ps_bio_inflight, &key))
				ps_count(ps_stats_get(), PS_STAT_MAP_FULL);
			err = bpf_map_update_elem(&ps_bio_inflight, &key, r, BPF_ANY);
			bpf_map_delete_elem(&ps_bio_bios, &bkey);
			if (err) {
				ps_count(ps_stats_get(), PS_STAT_MAP_FULL);
				return NULL;
			}
			r = bpf_map_lookup_elem(&ps_bio_inflight, &key);
			if (r)
				where(rq, r);
			return r;
		}
	}
	r = bpf_map_lookup_elem(&ps_bio_inflight, &key);
	if (r)
		return r;
	/*
	 * Started before we attached, or made without a submitter (the flush
	 * sequence, passthrough commands): unattributed, so never selected.
	 */
	if (filter_active())
		return NULL;
	fresh.start_ns = bpf_ktime_get_ns();
	fresh.attribution = BIO_A_NONE;
	where(rq, &fresh);
	if (bpf_map_update_elem(&ps_bio_inflight, &key, &fresh, BPF_NOEXIST) == -PS_EEXIST)
		return bpf_map_lookup_elem(&ps_bio_inflight, &key);
	r = bpf_map_lookup_elem(&ps_bio_inflight, &key);
	if (!r)
		ps_count(ps_stats_get(), PS_STAT_MAP_FULL);
	return r;
}

static __always_inline int on_insert(struct request *rq)
{
	struct bio_rq *r = rq_entry(rq);

	if (r) {
		r->insert_ns = bpf_ktime_get_ns();
		r->flags |= BIO_F_QUEUED;
	}
	return 0;
}

static __always_inline int on_issue(struct request *rq)
{
	struct bio_rq *r = rq_entry(rq);

	if (r) {
		r->issue_ns = bpf_ktime_get_ns();
		/* at completion these already move with partial completions */
		r->sector = BIO_READ(rq, __sector);
		r->bytes = BIO_READ(rq, __data_len);
	}
	return 0;
}

static __always_inline __u64 log2_u64(__u64 v)
{
	__u64 r = 0, shift;

	shift = (v > 0xffffffffull) << 5; v >>= shift; r |= shift;
	shift = (v > 0xffff) << 4; v >>= shift; r |= shift;
	shift = (v > 0xff) << 3; v >>= shift; r |= shift;
	shift = (v > 0xf) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline void hist_add_to(void *map, struct bio_hist_key *k, __u64 ns,
					struct gendisk *disk, bool merged)
{
	struct bio_hist_val *v;
	__u64 slot;
	long err;

	v = bpf_map_lookup_elem(map, k);
	if (!v) {
		err = bpf_map_update_elem(map, k, &zero_hist, BPF_NOEXIST);
		if (err && err != -PS_EEXIST) {
			/* bounded: what does not fit is counted, never silently dropped */
			ps_count(ps_stats_get(), PS_STAT_MAP_FULL);
			return;
		}
		v = bpf_map_lookup_elem(map, k);
		if (!v)
			return;
		if (!err)
			bpf_core_read_str(v->disk, sizeof(v->disk), &disk->disk_name);
	}
	/* 64-bit all the way: older verifiers lose a bound checked on a 32-bit copy */
	slot = log2_u64(ns / 1000);
	if (slot >= BIO_HIST_SLOTS)
		slot = BIO_HIST_SLOTS - 1;
	barrier_var(slot);
	__sync_fetch_and_add(&v->slots[slot], 1);
	__sync_fetch_and_add(&v->count, 1);
	__sync_fetch_and_add(&v->sum_ns, ns);
	if (merged)
		__sync_fetch_and_add(&v->merged, 1);
}

static __always_inline void hist_add(struct bio_event *e, struct gendisk *disk)
{
	struct bio_hist_key hk;

	/* device time, as biolatency: requests never issued, or whose completion was not seen, are not in it */
	if (e->flags & (BIO_F_NO_ISSUE | BIO_F_UNSEEN))
		return;
	hk.cgroup_id = e->cgroup_id;
	hk.dev = e->dev;
	hk.op = e->op;
	if (*(volatile __u32 *)&hist_gen & 1)
		hist_add_to(&ps_bio_hist1, &hk, e->latency_ns, disk, e->flags & BIO_F_MERGED);
	else
		hist_add_to(&ps_bio_hist0, &hk, e->latency_ns, disk, e->flags & BIO_F_MERGED);
}

static __always_inline void emit(struct ps_stats *s, struct bio_event *e, struct gendisk *disk)
{
	hist_add(e, disk);
	/* a request whose latency is unknown is in no histogram: its record is its only account */
	if (e->latency_ns < targ_min_ns && !(e->flags & BIO_F_UNSEEN)) {
		ps_count(s, PS_STAT_FILTERED);
		return;
	}
	ps_output(&ps_bio_rb, s, e->cgroup_id, e, sizeof(*e));
}

/* The in-flight fields of r into e: who, where, and the times up to the issue. */
static __always_inline void fill(struct bio_event *e, const struct bio_rq *r)
{
	e->cgroup_id = r->cgroup_id;
	e->mntns_id = r->mntns_id;
	e->blkcg_id = r->blkcg_id;
	e->sector = r->sector;
	e->bytes = r->bytes;
	e->pid = r->pid;
	e->tid = r->tid;
	e->attribution = r->attribution;
	e->flags = r->flags;
	__builtin_memcpy(e->comm, r->comm, sizeof(e->comm));
}

/*
 * The sector where the parts already merged into a request [start, end)
 * begin: its own part ends there. Parts are keyed by where their own part
 * ends, and lie back to back up to end.
 */
static __always_inline __u64 own_end(__u64 disk, __u64 start, __u64 end)
{
	struct bio_merge_key k = { .disk = disk };
	struct bio_rq *p;

	for (int i = 0; i < BIO_MERGE_WALK && end > start; i++) {
		k.sector = end;
		p = bpf_map_lookup_elem(&ps_bio_merged, &k);
		if (!p || p->sector >= end)
			break;
		end = p->sector;
	}
	return end;
}

/*
 * The request [start, end) completed: so did every request merged into it.
 * Each is recorded as itself (its cgroup, its own bytes), with the device time
 * of the request it went out in and BIO_F_MERGED. e holds what the parts share
 * with the request (disk, op, status, completion; latency_ns from its issue
 * at issue_ns, 0 when that is unknown). Returns the bytes of the parts, which
 * are not the request's own.
 */
static __always_inline __u32 complete_parts(struct ps_stats *s, struct bio_event *e,
					    struct gendisk *disk, __u64 start, __u64 end,
					    __u64 issue_ns, __u64 now)
{
	struct bio_merge_key k = { .disk = (__u64)disk };
	struct bio_event pe;
	struct bio_rq *p;
	__u32 bytes = 0;

	for (int i = 0; i < BIO_MERGE_WALK && end > start; i++) {
		k.sector = end;
		p = bpf_map_lookup_elem(&ps_bio_merged, &k);
		if (!p || p->sector >= end)
			break;
		end = p->sector;
		bytes += p->bytes;
		ps_count(s, PS_STAT_SEEN);
		if (p->flags & BIO_RQ_F_SKIP) {
			ps_count(s, PS_STAT_FILTERED);
		} else {
			pe = *e;
			fill(&pe, p);
			pe.flags = (p->flags & ~BIO_RQ_F_SKIP) | BIO_F_MERGED | (e->flags & BIO_F_UNSEEN);
			if (issue_ns) {
				pe.latency_ns = e->latency_ns;
				pe.queue_ns = (p->flags & BIO_F_QUEUED) && p->insert_ns <= issue_ns ?
						      issue_ns - p->insert_ns : 0;
			} else {
				pe.flags |= BIO_F_NO_ISSUE;
				pe.latency_ns = now - p->start_ns;
				pe.queue_ns = 0;
			}
			emit(s, &pe, disk);
		}
		bpf_map_delete_elem(&ps_bio_merged, &k);
	}
	return bytes;
}


static __always_inline int on_complete(struct request *rq, int status, unsigned int nr_bytes)
{
	struct ps_stats *s = ps_stats_get();
	__u64 key = (__u64)rq, now, sector, issue_ns = 0;
	__u32 len = BIO_READ(rq, __data_len), parts = 0;
	struct gendisk *disk;
	struct bio_event e;
	struct bio_rq *r;

	/* a partial completion: the request goes on */
	if (nr_bytes < len)
		return 0;
	ps_count(s, PS_STAT_SEEN);
	r = bpf_map_lookup_elem(&ps_bio_inflight, &key);
	if (!r && !*(volatile __u32 *)&merges_seen) {
		ps_count(s, PS_STAT_FILTERED); /* not selected, or started before we attached */
		return 0;
	}
	now = bpf_ktime_get_ns();
	__builtin_memset(&e, 0, sizeof(e));
	e.ts_ns = bpf_ktime_get_boot_ns();
	e.status = status;
	e.method = targ_method;
	decode_op(BIO_READ(rq, cmd_flags), &e.op, &e.op_flags);
	disk = ps_rq_disk(rq);
	e.dev = (BPF_CORE_READ(disk, major) << 20) | BPF_CORE_READ(disk, first_minor);
	bpf_core_read_str(e.disk, sizeof(e.disk), &disk->disk_name);
	if (r && r->issue_ns) {
		issue_ns = r->issue_ns;
		e.latency_ns = now - issue_ns;
	}
	/* what is left of the request now ends where the whole of it did */
	sector = BIO_READ(rq, __sector);
	if (*(volatile __u32 *)&merges_seen)
		parts = complete_parts(s, &e, disk, 0, sector + (len >> 9), issue_ns, now);
	if (!r) {
		ps_count(s, PS_STAT_FILTERED);
		return 0;
	}
	fill(&e, r);
	if (r->issue_ns) {
		if ((r->flags & BIO_F_QUEUED) && r->insert_ns <= r->issue_ns)
			e.queue_ns = r->issue_ns - r->insert_ns;
	} else {
		e.flags |= BIO_F_NO_ISSUE;
		e.latency_ns = now - r->start_ns;
		e.sector = sector;
		e.bytes = len;
	}
	/* the issue saw the merged requests' bytes too */
	e.bytes = e.bytes > parts ? e.bytes - parts : 0;
	bpf_map_delete_elem(&ps_bio_inflight, &key);
	emit(s, &e, disk);
	return 0;
}

/*
 * Room for forget()'s copy of an entry, off the 512-byte stack: one slot per
 * nesting level on a CPU (a start interrupted by an issue that runs the queue).
 */
#define BIO_SCRATCH_LEVELS 4
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BIO_SCRATCH_LEVELS + 1); /* the last: the level in use, in start_ns */
	__type(key, __u32);
	__type(value, struct bio_rq);
} ps_bio_scratch SEC(".maps");

/* and for the record unseen() makes of it */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BIO_SCRATCH_LEVELS);
	__type(key, __u32);
	__type(value, struct bio_event);
} ps_bio_escratch SEC(".maps");

/*
 * The request r, whose entry a new request at its address found: the block
 * layer frees a request only once it completed (or was merged, which
 * block_rq_merge follows), so it completed without this tracer seeing it (the
 * kernel runs no BPF program for some completions: bench/README.md, block
 * I/O). It is recorded now, with its merged parts, as BIO_F_UNSEEN: its bytes
 * and cgroup are known, its latency is not.
 */
static __always_inline void unseen(const struct bio_rq *r, struct bio_event *ep)
{
	struct ps_stats *s = ps_stats_get();
	struct gendisk *disk = (struct gendisk *)r->disk;
	struct bio_event *e = ep;
	__u32 parts = 0;

	ps_count(s, PS_STAT_SEEN);
	if (r->flags & BIO_RQ_F_SKIP) {
		ps_count(s, PS_STAT_FILTERED);
		return;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->method = targ_method;
	e->op = r->op;
	e->op_flags = r->op_flags;
	e->dev = r->dev;
	bpf_core_read_str(e->disk, sizeof(e->disk), &disk->disk_name);
	e->flags = BIO_F_UNSEEN;
	if (*(volatile __u32 *)&merges_seen && r->bytes)
		parts = complete_parts(s, e, disk, r->sector, r->sector + (r->bytes >> 9),
				       r->issue_ns, bpf_ktime_get_ns());
	fill(e, r);
	e->flags |= BIO_F_UNSEEN;
	if (!r->issue_ns)
		e->flags |= BIO_F_NO_ISSUE;
	else if ((r->flags & BIO_F_QUEUED) && r->insert_ns <= r->issue_ns)
		e->queue_ns = r->issue_ns - r->insert_ns;
	e->bytes = e->bytes > parts ? e->bytes - parts : 0;
	/*
	 * Not through the rate limit or the fair share: this record is the
	 * request's only account (it is in no histogram), and a cgroup cannot
	 * have more of them than it had requests.
	 */
	if (bpf_ringbuf_output(&ps_bio_rb, e, sizeof(*e), 0))
		ps_count(s, PS_STAT_LOST);
	else
		ps_count(s, PS_STAT_EMITTED);
}


/* An entry at the address of a request that starts is an earlier one, completed unseen. */
static __always_inline void forget(void *map, __u64 key)
{
	__u32 lk = BIO_SCRATCH_LEVELS, slot;
	struct bio_rq *old, *copy, *lvl;
	struct bio_event *ev;

	/* a lookup is cheaper than a delete, which takes the bucket's lock */
	old = bpf_map_lookup_elem(map, &key);
	if (!old)
		return;
	lvl = bpf_map_lookup_elem(&ps_bio_scratch, &lk);
	if (!lvl)
		return;
	slot = lvl->start_ns++;
	copy = slot < BIO_SCRATCH_LEVELS ? bpf_map_lookup_elem(&ps_bio_scratch, &slot) : NULL;
	ev = slot < BIO_SCRATCH_LEVELS ? bpf_map_lookup_elem(&ps_bio_escratch, &slot) : NULL;
	if (copy && ev) {
		*copy = *old;
		/* whoever deletes it records it, once */
		if (!bpf_map_delete_elem(map, &key))
			unseen(copy, ev);
	} else if (!bpf_map_delete_elem(map, &key)) {
		ps_count(ps_stats_get(), PS_STAT_MAP_FULL);
	}
	lvl->start_ns--;
}

static __always_inline void track(void *map, __u64 key, const struct bio_rq *r)
{
	long err = bpf_map_update_elem(map, &key, r, BPF_NOEXIST);

	if (err == -PS_EEXIST) {
		forget(map, key);
		err = bpf_map_update_elem(map, &key, r, BPF_NOEXIST);
	}
	if (err) /* full (E2BIG, ENOMEM) or another start at this address in between */
		ps_count(ps_stats_get(), PS_STAT_MAP_FULL);
}

static __always_inline int on_start(struct request *rq)
{
	struct bio_rq r = {};
	__u64 key = (__u64)rq;

	if (!submit_info(BIO_READ(rq, bio), &r)) {
		forget(&ps_bio_inflight, key);
		return 0;
	}
	where(rq, &r);
	track(&ps_bio_inflight, key, &r);
	return 0;
}

static __always_inline int on_getrq(struct bio *bio)
{
	struct bio_rq r = {};
	__u64 key = (__u64)bio;

	long err;

	/*
	 * The request is not made yet: where() runs at its first insert or
	 * issue. An entry at this bio's address is a bio that never reached
	 * either, nor was merged: lost.
	 */
	if (!submit_info(bio, &r)) {
		if (bpf_map_lookup_elem(&ps_bio_bios, &key) && !bpf_map_delete_elem(&ps_bio_bios, &key))
			ps_count(ps_stats_get(), PS_STAT_MAP_FULL);
		return 0;
	}
	err = bpf_map_update_elem(&ps_bio_bios, &key, &r, BPF_NOEXIST);
	if (err == -PS_EEXIST) {
		ps_count(ps_stats_get(), PS_STAT_MAP_FULL); /* the earlier bio, lost */
		err = bpf_map_update_elem(&ps_bio_bios, &key, &r, BPF_EXIST);
	}
	if (err)
		ps_count(ps_stats_get(), PS_STAT_MAP_FULL);
	return 0;
}

/*
 * block_rq_merge: rq was merged into the request just before it on the disk
 * (attempt_merge(): that one's range ends where rq's begins) and is freed
 * without completing; its bios complete with that request. Its state moves to
 * ps_bio_merged until then, keyed by where its own part ends. A request not
 * selected leaves a part too: its bytes are not the other request's.
 */
static __always_inline int on_merge(struct request *rq)
{
	__u64 key = (__u64)rq, bkey, start, end;
	struct ps_stats *s = ps_stats_get();
	struct bio_merge_key mk;
	struct bio_rq part = {}, *r;
	void *map = &ps_bio_inflight;
	long err;

	start = BIO_READ(rq, __sector);
	end = start + (BIO_READ(rq, __data_len) >> 9);
	mk.disk = (__u64)ps_rq_disk(rq);
	mk.sector = own_end(mk.disk, start, end);
	r = bpf_map_lookup_elem(map, &key);
	if (!r && targ_getrq) {
		/* merged at its insert (elv_attempt_insert_merge): still keyed by its bio */
		bkey = (__u64)BIO_READ(rq, bio);
		key = bkey;
		map = &ps_bio_bios;
		r = bpf_map_lookup_elem(map, &key);
	}
	if (r) {
		part = *r;
		bpf_map_delete_elem(map, &key);
	} else {
		part.start_ns = bpf_ktime_get_ns();
		part.attribution = BIO_A_NONE;
		if (filter_active()) /* not selected, or started before we attached */
			part.flags |= BIO_RQ_F_SKIP;
	}
	part.sector = start;
	part.bytes = (__u32)((mk.sector - start) << 9);
	err = bpf_map_update_elem(&ps_bio_merged, &mk, &part, BPF_NOEXIST);
	if (err) /* full, or two parts ending at one sector: this one is lost */
		ps_count(s, PS_STAT_MAP_FULL);
	if (!merges_seen)
		merges_seen = 1;
	return 0;
}

/* block_io_start (6.5+): in blk_mq_bio_to_request, the submitter's context */
SEC("tp_btf/block_io_start")
int BPF_PROG(ps_bio_start, struct request *rq)
{
	return on_start(rq);
}

SEC("raw_tp/block_io_start")
int BPF_PROG(ps_bio_start_r, struct request *rq)
{
	return on_start(rq);
}

/* block_getrq: a new request for this bio, in the submitter's context */
SEC("tp_btf/block_getrq")
int BPF_PROG(ps_bio_getrq, struct bio *bio)
{
	return on_getrq(bio);
}

SEC("raw_tp/block_getrq")
int BPF_PROG(ps_bio_getrq_r, struct bio *bio)
{
	return on_getrq(bio);
}

/* before 5.11: block_getrq(q, bio, rw) */
SEC("tp_btf/block_getrq")
int BPF_PROG(ps_bio_getrq_q, struct request_queue *q, struct bio *bio, int rw)
{
	return on_getrq(bio);
}

SEC("raw_tp/block_getrq")
int BPF_PROG(ps_bio_getrq_qr, struct request_queue *q, struct bio *bio, int rw)
{
	return on_getrq(bio);
}

/*
 * block_rq_insert and block_rq_issue, each as tp_btf and raw_tp, with the
 * request alone and (before 5.11) after the request_queue: NAME, NAME_r,
 * NAME_q, NAME_qr.
 */
#define PS_RQ_HOOKS(tp, name, fn)						\
	SEC("tp_btf/" tp)							\
	int BPF_PROG(name, struct request *rq)					\
	{									\
		return fn(rq);							\
	}									\
	SEC("raw_tp/" tp)							\
	int BPF_PROG(name##_r, struct request *rq)				\
	{									\
		return fn(rq);							\
	}									\
	SEC("tp_btf/" tp)							\
	int BPF_PROG(name##_q, struct request_queue *q, struct request *rq)	\
	{									\
		return fn(rq);							\
	}									\
	SEC("raw_tp/" tp)							\
	int BPF_PROG(name##_qr, struct request_queue *q, struct request *rq)	\
	{									\
		return fn(rq);							\
	}

PS_RQ_HOOKS("block_rq_insert", ps_bio_insert, on_insert)
PS_RQ_HOOKS("block_rq_issue", ps_bio_issue, on_issue)

/* block_rq_merge(rq) on every kernel here; the _q variants for symmetry are not needed */
SEC("tp_btf/block_rq_merge")
int BPF_PROG(ps_bio_merge, struct request *rq)
{
	return on_merge(rq);
}

SEC("raw_tp/block_rq_merge")
int BPF_PROG(ps_bio_merge_r, struct request *rq)
{
	return on_merge(rq);
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(ps_bio_done, struct request *rq, int error, unsigned int nr_bytes)
{
	return on_complete(rq, error, nr_bytes);
}

SEC("raw_tp/block_rq_complete")
int BPF_PROG(ps_bio_done_r, struct request *rq, int error, unsigned int nr_bytes)
{
	return on_complete(rq, error, nr_bytes);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
