// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cache tracer (cachestat, per pod): page-cache accesses, insertions (the
 * misses), dirtied pages and dirtied buffers, counted per (cgroup, mount
 * namespace) of the task that caused them. The agent reads the totals every
 * --interval.
 *
 * Hooks by method (the agent chooses before load and disables the rest):
 *   fentry / kprobe: folio_mark_accessed (or mark_page_accessed),
 *     filemap_add_folio (or add_to_page_cache_lru), folio_account_dirtied
 *     (or account_page_dirtied), mark_buffer_dirty, as bcc's cachestat;
 *     where a function cannot be hooked (folio_account_dirtied is static and
 *     usually inlined) the matching tracepoint stands in.
 *   tp_btf / tracepoint: mm_filemap_add_to_page_cache, writeback_dirty_folio
 *     (writeback_dirty_page before 5.17), block_dirty_buffer, and for
 *     accesses, which no tracepoint reports, an estimate: the page range of
 *     each page-cache read (mm_filemap_get_pages, 6.11+) plus buffer-head
 *     lookups (block_touch_buffer).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "common.bpf.h"
#include "core_fixes.bpf.h"
#include "cache.h"

const volatile __u32 targ_page_shift = 12; /* set by the agent */

/* allocated as it fills: a row is inserted once per (cgroup, mntns), deleted when idle */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, CACHE_MAX_CGROUPS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct cache_key);
	__type(value, struct cache_val);
} ps_cache_cg SEC(".maps");

enum { C_ACCESSED, C_ADDED, C_DIRTIED, C_BUF_DIRTIED };

static const struct cache_val zero_val = {};

/* Add n to the current task's row. The caller has done the selection. */
static __always_inline void cache_add(struct ps_stats *s, int which, __u64 n)
{
	struct cache_key key;
	struct cache_val *v;

	key.cgroup_id = ps_current_cgroup_id();
	key.mntns_id = ps_task_mntns((struct task_struct *)bpf_get_current_task());
	v = bpf_map_lookup_elem(&ps_cache_cg, &key);
	if (!v) {
		/* a racing insert on another CPU makes ours fail with EEXIST: fine */
		bpf_map_update_elem(&ps_cache_cg, &key, &zero_val, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&ps_cache_cg, &key);
		if (!v) {
			ps_count(s, PS_STAT_MAP_FULL);
			return;
		}
	}
	/* this CPU's slot: no atomics needed */
	switch (which) {
	case C_ACCESSED:
		v->accessed += n;
		break;
	case C_ADDED:
		v->added += n;
		break;
	case C_DIRTIED:
		v->dirtied += n;
		break;
	default:
		v->buf_dirtied += n;
		break;
	}
	ps_count(s, PS_STAT_EMITTED);
}

/* A hook fired: count it as seen, then as filtered unless selected. */
static __always_inline bool cache_selected(struct ps_stats *s)
{
	ps_count(s, PS_STAT_SEEN);
	if (!ps_current_selected()) {
		ps_count(s, PS_STAT_FILTERED);
		return false;
	}
	return true;
}

static __always_inline void cache_count(int which, __u64 n)
{
	struct ps_stats *s = ps_stats_get();

	if (cache_selected(s))
		cache_add(s, which, n);
}

/*
 * ---- fentry and kprobes: the same functions, counted alike; the agent loads
 * the kind it chose (ps_cache_fe_* or ps_cache_kp_*) ----
 */
#define FN_HOOK(name, fn, which, pages, ...)                         \
	SEC("fentry/" #fn)                                           \
	int BPF_PROG(ps_cache_fe_##name, __VA_ARGS__)                \
	{                                                            \
		cache_count(which, pages);                           \
		return 0;                                            \
	}                                                            \
	SEC("kprobe/" #fn)                                           \
	int BPF_KPROBE(ps_cache_kp_##name, __VA_ARGS__)              \
	{                                                            \
		cache_count(which, pages);                           \
		return 0;                                            \
	}

FN_HOOK(acc, folio_mark_accessed, C_ACCESSED, ps_folio_nr_pages(folio), struct folio *folio)
FN_HOOK(acc_pg, mark_page_accessed, C_ACCESSED, 1, struct page *page)
FN_HOOK(add, filemap_add_folio, C_ADDED, ps_folio_nr_pages(folio), struct address_space *mapping,
	struct folio *folio)
FN_HOOK(add_pg, add_to_page_cache_lru, C_ADDED, 1, struct page *page)
FN_HOOK(dirty, folio_account_dirtied, C_DIRTIED, ps_folio_nr_pages(folio), struct folio *folio)
FN_HOOK(dirty_pg, account_page_dirtied, C_DIRTIED, 1, struct page *page)
FN_HOOK(bufd, mark_buffer_dirty, C_BUF_DIRTIED, 1, struct buffer_head *bh)

/* ---- BTF tracepoints ---- */

SEC("tp_btf/mm_filemap_add_to_page_cache")
int BPF_PROG(ps_cache_tb_add, struct folio *folio)
{
	cache_count(C_ADDED, ps_folio_nr_pages(folio));
	return 0;
}

SEC("tp_btf/writeback_dirty_folio")
int BPF_PROG(ps_cache_tb_dirty, struct folio *folio)
{
	cache_count(C_DIRTIED, ps_folio_nr_pages(folio));
	return 0;
}

SEC("tp_btf/block_dirty_buffer")
int BPF_PROG(ps_cache_tb_bufd)
{
	cache_count(C_BUF_DIRTIED, 1);
	return 0;
}

SEC("tp_btf/block_touch_buffer")
int BPF_PROG(ps_cache_tb_touch)
{
	cache_count(C_ACCESSED, 1);
	return 0;
}

/* ---- classic tracepoints ---- */

SEC("tracepoint/filemap/mm_filemap_add_to_page_cache")
int ps_cache_tp_add(void *ctx)
{
	cache_count(C_ADDED, ps_tp_add_pages(ctx));
	return 0;
}

SEC("tracepoint/writeback/writeback_dirty_folio")
int ps_cache_tp_dirty(void *ctx)
{
	/* no folio size in this record: a large folio counts as one page */
	cache_count(C_DIRTIED, 1);
	return 0;
}

SEC("tracepoint/writeback/writeback_dirty_page")
int ps_cache_tp_dirty_pg(void *ctx)
{
	cache_count(C_DIRTIED, 1);
	return 0;
}

SEC("tracepoint/block/block_dirty_buffer")
int ps_cache_tp_bufd(void *ctx)
{
	cache_count(C_BUF_DIRTIED, 1);
	return 0;
}

SEC("tracepoint/block/block_touch_buffer")
int ps_cache_tp_touch(void *ctx)
{
	cache_count(C_ACCESSED, 1);
	return 0;
}

/*
 * ---- the access estimate ----
 *
 * filemap_get_pages() reports [index, last] once per batch of folios it
 * hands to filemap_read() or a splice, with `last` the end of the whole
 * request: a 1 MiB read reports 0..255, then 31..255, ... and a read cut
 * short by a folio not yet up to date repeats part of its range. Per
 * thread we remember the file, the previous start and the highest page
 * counted: a call starting at or after the previous start and inside what
 * was counted adds only the pages beyond it (so small sequential reads count
 * each page once, as filemap_read marks a folio accessed once for reads
 * that stay in it); anything else (another file, a re-read from an earlier
 * offset) counts its whole range. With the BPF tracepoint the range is also
 * cut at end of file; the classic one has no file size, so a read asking
 * past EOF counts the pages it asked for.
 */
struct ra_state {
	__u64 ino;
	__u64 prev_index;
	__u64 hi;
	__u32 dev;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct ra_state);
} ps_cache_ra SEC(".maps");

static __always_inline void count_read(__u32 dev, __u64 ino, __u64 index, __u64 last)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct ra_state *st, fresh = {};
	struct ps_stats *s = ps_stats_get();
	__u64 pages;

	if (last < index || !cache_selected(s))
		return;
	pages = last - index + 1;
	st = bpf_map_lookup_elem(&ps_cache_ra, &tid);
	if (st && st->dev == dev && st->ino == ino && index >= st->prev_index &&
	    index <= st->hi) {
		pages = last > st->hi ? last - st->hi : 0;
		if (last > st->hi)
			st->hi = last;
		st->prev_index = index;
	} else if (st) {
		st->dev = dev;
		st->ino = ino;
		st->prev_index = index;
		st->hi = last;
	} else {
		fresh.dev = dev;
		fresh.ino = ino;
		fresh.prev_index = index;
		fresh.hi = last;
		bpf_map_update_elem(&ps_cache_ra, &tid, &fresh, BPF_ANY);
	}
	if (pages)
		cache_add(s, C_ACCESSED, pages);
}

SEC("tp_btf/mm_filemap_get_pages")
int BPF_PROG(ps_cache_tb_read, struct address_space *mapping, unsigned long index,
	     unsigned long last_index)
{
	struct inode *host = BPF_CORE_READ(mapping, host);
	loff_t size = BPF_CORE_READ(host, i_size);
	__u64 last = last_index;

	if (size <= 0)
		return 0;
	if (last > (__u64)(size - 1) >> targ_page_shift)
		last = (__u64)(size - 1) >> targ_page_shift;
	count_read(BPF_CORE_READ(host, i_sb, s_dev), BPF_CORE_READ(host, i_ino), index, last);
	return 0;
}

SEC("tracepoint/filemap/mm_filemap_get_pages")
int ps_cache_tp_read(struct trace_event_raw_mm_filemap_op_page_cache_range *ctx)
{
	count_read(ctx->s_dev, ctx->i_ino, ctx->index, ctx->last_index);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
