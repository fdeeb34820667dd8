// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The tracers' figures in /metrics: the per-tracer BPF counters (ps_stats),
 * ring buffer fill and the hook method in use. Read on the HTTP thread at
 * scrape time: a map lookup and two loads from a read-only mapping of the
 * ring buffer's position pages; the event path is not involved.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <bpf/bpf.h>

#include "lib/metrics.h"
#include "agent/tracers/tracer.h"
#include "agent/http/tracer_metrics.h"
#include "lib/version.h"

static struct {
	bool live;			/* published with release once started */
	const char *method;
	volatile const uint64_t *cons, *prod;	/* ring buffer positions, or NULL */
	void *map;
	size_t map_len;
	uint64_t size;			/* ring buffer data size in bytes */
} st[CFG_MAX_TRACERS];

static struct metric build_info = METRIC_GAUGE("podsnoop_build_info",
	"Always 1; the version label says which agent this is.", "version", PODSNOOP_VERSION);
static struct metric ready = METRIC_GAUGE("podsnoop_ready",
	"1 once every selected tracer is attached and the agent is tracing.");
static bool registered;
static void (*lost_extra)(struct mw *w);

void tracer_metrics_set_lost_extra(void (*fn)(struct mw *w))
{
	__atomic_store_n(&lost_extra, fn, __ATOMIC_RELEASE);
}

/* Map the consumer and producer position pages of a BPF ring buffer, read-only. */
static void map_positions(size_t i, int fd)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	long page = sysconf(_SC_PAGESIZE);
	void *p;

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len))
		return;
	/* page 0: consumer_pos, page 1: producer_pos (kernel/bpf/ringbuf.c) */
	p = mmap(NULL, 2 * (size_t)page, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return;
	st[i].map = p;
	st[i].map_len = 2 * (size_t)page;
	st[i].cons = p;
	st[i].prod = (const uint64_t *)((char *)p + page);
	st[i].size = info.max_entries;
}

void tracer_metrics_started(size_t i, const char *method)
{
	if (i >= CFG_MAX_TRACERS || i >= tracer_count)
		return;
	st[i].method = method;
	map_positions(i, tracer_ringbuf_fd(tracer_table[i]));
	__atomic_store_n(&st[i].live, true, __ATOMIC_RELEASE);
}

void tracer_metrics_stopped(size_t i)
{
	if (i < CFG_MAX_TRACERS)
		__atomic_store_n(&st[i].live, false, __ATOMIC_RELEASE);
}

void tracer_metrics_set_ready(bool on)
{
	metric_set(&ready, on);
}

static bool live(size_t i)
{
	return __atomic_load_n(&st[i].live, __ATOMIC_ACQUIRE);
}

static void counter_family(struct mw *w, const char *name, const char *help, enum ps_stat which,
			   const struct ps_stats *s, const bool *ok)
{
	mw_family(w, name, MT_COUNTER, help);
	for (size_t i = 0; i < tracer_count; i++)
		if (ok[i])
			mw_u64(w, (const char *[]){ "tracer", tracer_table[i]->name, NULL },
			       s[i].v[which]);
}

static void collect(struct mw *w, void *priv)
{
	struct ps_stats s[CFG_MAX_TRACERS] = { 0 };
	bool ok[CFG_MAX_TRACERS] = { false };

	(void)priv;
	for (size_t i = 0; i < tracer_count; i++)
		ok[i] = live(i) && tracer_read_stats(tracer_table[i], &s[i]) == 0;

	counter_family(w, "podsnoop_events_seen_total",
		       "Events the tracer's hooks saw (before filtering).", PS_STAT_SEEN, s, ok);
	counter_family(w, "podsnoop_events_filtered_total",
		       "Events dropped in the kernel by the cgroup/mntns/other filters.",
		       PS_STAT_FILTERED, s, ok);
	counter_family(w, "podsnoop_events_emitted_total",
		       "Events written to the tracer's ring buffer.", PS_STAT_EMITTED, s, ok);
	mw_family(w, "podsnoop_events_lost_total", MT_COUNTER,
		  "Events lost, by tracer and stage (kernel_ringbuf: ring buffer full; "
		  "kernel_map_full: in-flight or histogram map full; rate_limited: refused "
		  "by a cgroup's --rate-limit bucket; shed: refused by --shed, the cgroup above "
		  "its fair share of a nearly full ring buffer; shipping: "
		  "shipping_queue, spool_full, rejected, ship_encode, shutdown).");
	for (size_t i = 0; i < tracer_count; i++) {
		const char *name = tracer_table[i]->name;

		if (!ok[i])
			continue;
		mw_u64(w, (const char *[]){ "tracer", name, "stage", "kernel_ringbuf", NULL },
		       s[i].v[PS_STAT_LOST]);
		mw_u64(w, (const char *[]){ "tracer", name, "stage", "kernel_map_full", NULL },
		       s[i].v[PS_STAT_MAP_FULL]);
		if (tracer_table[i]->rate_limited)
		{
			mw_u64(w, (const char *[]){ "tracer", name, "stage", "rate_limited", NULL },
			       s[i].v[PS_STAT_RATE_LIMITED]);
			mw_u64(w, (const char *[]){ "tracer", name, "stage", "shed", NULL },
			       s[i].v[PS_STAT_SHED]);
		}
	}
	{
		void (*extra)(struct mw *w) = __atomic_load_n(&lost_extra, __ATOMIC_ACQUIRE);

		if (extra)
			extra(w);
	}
	counter_family(w, "podsnoop_read_errors_total",
		       "Events emitted with a field that could not be read (flagged in the record).",
		       PS_STAT_READ_ERR, s, ok);

	mw_family(w, "podsnoop_ringbuf_fill_ratio", MT_GAUGE,
		  "Fraction of the tracer's ring buffer holding records not yet read.");
	for (size_t i = 0; i < tracer_count; i++) {
		uint64_t cons, prod;

		if (!live(i) || !st[i].cons || !st[i].size)
			continue;
		cons = __atomic_load_n(st[i].cons, __ATOMIC_ACQUIRE);
		prod = __atomic_load_n(st[i].prod, __ATOMIC_ACQUIRE);
		mw_f64(w, (const char *[]){ "tracer", tracer_table[i]->name, NULL },
		       prod > cons ? (double)(prod - cons) / (double)st[i].size : 0.0);
	}
	mw_family(w, "podsnoop_ringbuf_size_bytes", MT_GAUGE,
		  "Size of the tracer's ring buffer.");
	for (size_t i = 0; i < tracer_count; i++)
		if (live(i) && st[i].size)
			mw_u64(w, (const char *[]){ "tracer", tracer_table[i]->name, NULL },
			       st[i].size);
	mw_family(w, "podsnoop_tracer_info", MT_GAUGE,
		  "1 for each running tracer; the method label is the hook method it uses.");
	for (size_t i = 0; i < tracer_count; i++)
		if (live(i))
			mw_u64(w, (const char *[]){ "tracer", tracer_table[i]->name, "method",
						    st[i].method, NULL },
			       1);
}

int tracer_metrics_init(void)
{
	int err;

	if (registered)
		return 0;
	err = metrics_register(&build_info);
	if (!err)
		err = metrics_register(&ready);
	if (!err)
		err = metrics_add_collector(collect, NULL);
	if (err)
		return err;
	metric_set(&build_info, 1);
	registered = true;
	return 0;
}

void tracer_metrics_free(void)
{
	for (size_t i = 0; i < CFG_MAX_TRACERS; i++) {
		st[i].live = false;
		if (st[i].map)
			munmap(st[i].map, st[i].map_len);
		memset(&st[i], 0, sizeof(st[i]));
	}
}
