/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The metrics registry behind /metrics (Prometheus text format 0.0.4).
 *
 * Two ways for a module to publish figures, both read by the HTTP thread at
 * scrape time without ever blocking the event path:
 *
 * 1. Static metrics: a struct the module owns, registered once, updated with
 *    one relaxed atomic instruction (no lock, no syscall, no allocation):
 *
 *	static struct metric hits = METRIC_COUNTER("podsnoop_attribution_total",
 *		"Records by attribution result.", "result", "hit");
 *	static struct metric misses = METRIC_COUNTER("podsnoop_attribution_total",
 *		"Records by attribution result.", "result", "miss");
 *	metrics_register(&hits);		// at start, any thread
 *	metrics_register(&misses);
 *	metric_inc(&hits);			// on the event path
 *
 *    Metrics sharing a name form one family (same help and type; they differ
 *    by their constant labels, at most METRIC_MAX_LABELS pairs).
 *    Gauges: METRIC_GAUGE + metric_set()/metric_add(). Latency histograms
 *    observed in user space: METRIC_HISTOGRAM(name, help, unit_seconds)
 *    + metric_observe(&h, value_in_units) (log2 buckets, like the kernel's).
 *
 * 2. Collectors: a callback run on the HTTP thread at every scrape that
 *    writes whole families through the writer below. For figures that live
 *    elsewhere (BPF maps, ring buffer positions) or whose label sets come
 *    and go (pods). It must not take locks the event path holds for long.
 *
 *	static void ship_collect(struct mw *w, void *priv)
 *	{
 *		mw_family(w, "podsnoop_spool_bytes", MT_GAUGE, "...");
 *		mw_u64(w, NULL, spool_bytes());
 *	}
 *	metrics_add_collector(ship_collect, NULL);
 *
 *    Per-pod histograms and counters: a hist_agg (below) bounds the series;
 *    kept from scrape to scrape it sums records into cumulative series
 *    (agent/http/pod_metrics.c: every per-pod family, fed by one sink,
 *    written by a collector per family).
 *
 * Names in use or reserved, so parallel work stays consistent:
 *   podsnoop_events_{seen,filtered,emitted}_total{tracer}
 *   podsnoop_events_lost_total{tracer,stage}   stage: kernel_ringbuf, kernel_map_full,
 *                                              attribution_queue, shipping_queue,
 *                                              spool_full, rejected, otlp_queue,
 *                                              otlp_spool_full, otlp_rejected
 *   podsnoop_read_errors_total{tracer}, podsnoop_ringbuf_{fill_ratio,size_bytes}{tracer}
 *   podsnoop_tracer_info{tracer,method}, podsnoop_build_info{version}, podsnoop_ready
 *   podsnoop_attribution_total{result="hit|partial|miss"},
 *   podsnoop_attribution_waits_total{result}, podsnoop_cri_latency_seconds{method}
 *   podsnoop_ship_batches_total{result="sent|retried|failed"}, podsnoop_spool_bytes,
 *   podsnoop_collector_latency_seconds (histogram)
 *   podsnoop_otlp_batches_total{result}, podsnoop_otlp_spool_bytes,
 *   podsnoop_otlp_latency_seconds (histogram)
 *   podsnoop_bio_latency_seconds{namespace,pod,container,disk,op} (histogram)
 *   podsnoop_fs_latency_seconds{namespace,pod,container,op,fs} (histogram)
 *   podsnoop_open_latency_seconds{namespace,pod,container} (histogram)
 *   podsnoop_{execs,opens}_total{namespace,pod,container,result="ok|failed"}
 *   podsnoop_pagecache_{hits,misses}_total{namespace,pod,container}
 *   podsnoop_pod_events_lost_total{namespace,pod,container,tracer,stage}
 *   podsnoop_metrics_series_folded{family}
 */
#ifndef PS_METRICS_H
#define PS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define METRIC_MAX_LABELS 2
/* log2 slots of a user-space histogram: values up to 2^32 units */
#define METRIC_HIST_SLOTS 33

enum metric_type { MT_COUNTER, MT_GAUGE, MT_HISTOGRAM };

struct metric {
	const char *name;
	const char *help;
	enum metric_type type;
	/* constant labels: name, value, name, value; unused pairs NULL */
	const char *labels[2 * METRIC_MAX_LABELS];
	double unit;			/* histograms: seconds per unit of a value */
	uint64_t v;			/* counter; gauge (as int64_t) */
	uint64_t slots[METRIC_HIST_SLOTS];	/* histogram */
	uint64_t sum;			/* histogram: sum of values, in units */
	struct metric *next;		/* registry link */
};

#define METRIC_COUNTER(n, h, ...) { .name = (n), .help = (h), .type = MT_COUNTER, \
				    .labels = { __VA_ARGS__ } }
#define METRIC_GAUGE(n, h, ...) { .name = (n), .help = (h), .type = MT_GAUGE, \
				  .labels = { __VA_ARGS__ } }
#define METRIC_HISTOGRAM(n, h, unit_s, ...) { .name = (n), .help = (h), .type = MT_HISTOGRAM, \
					      .unit = (unit_s), .labels = { __VA_ARGS__ } }

/* Register once (the struct must outlive the registry). -EINVAL on a bad name/label. */
int metrics_register(struct metric *m);

static inline void metric_add(struct metric *m, uint64_t n)
{
	__atomic_fetch_add(&m->v, n, __ATOMIC_RELAXED);
}

static inline void metric_inc(struct metric *m)
{
	metric_add(m, 1);
}

static inline void metric_set(struct metric *m, int64_t v)
{
	__atomic_store_n(&m->v, (uint64_t)v, __ATOMIC_RELAXED);
}

/* The log2 slot of a value, as the BPF side computes it: 0 and 1 -> 0, else floor(log2 v). */
static inline unsigned int metric_log2_slot(uint64_t v)
{
	return v < 2 ? 0 : 63u - (unsigned int)__builtin_clzll(v);
}

/* Record one value (in the histogram's units). Lock-free, no syscall. */
static inline void metric_observe(struct metric *m, uint64_t v)
{
	unsigned int s = metric_log2_slot(v);

	if (s >= METRIC_HIST_SLOTS)
		s = METRIC_HIST_SLOTS - 1;
	__atomic_fetch_add(&m->slots[s], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&m->sum, v, __ATOMIC_RELAXED);
}

/* ---- collectors and the writer they use */

struct mw;
typedef void (*metrics_collect_fn)(struct mw *w, void *priv);

int metrics_add_collector(metrics_collect_fn fn, void *priv);

/*
 * Start a family: HELP and TYPE lines. Samples of a family must follow it.
 * name must outlive the scrape (a string literal): the folded-series gauge
 * written after every collector refers to it.
 */
void mw_family(struct mw *w, const char *name, enum metric_type type, const char *help);
/*
 * One sample of the current family. labels: NULL, or name/value pairs ending
 * with a NULL name, e.g. (const char *[]){ "tracer", "exec", NULL }.
 * Values are escaped (and invalid UTF-8 replaced); names must be valid.
 */
void mw_u64(struct mw *w, const char *const *labels, uint64_t v);
void mw_f64(struct mw *w, const char *const *labels, double v);
/*
 * A histogram sample from log2 slots (slot i: values v with metric_log2_slot(v)
 * == i, in units of `unit` seconds; the last slot also holds everything
 * larger). Buckets le = (2^(i+1) - 1) * unit for all but the last slot, then
 * +Inf; _sum in seconds (sum_units * unit); _count = total.
 */
void mw_hist_log2(struct mw *w, const char *const *labels, const uint64_t *slots,
		  size_t n_slots, double unit, uint64_t sum_units);

/*
 * Bounded-cardinality aggregation of log2 histograms by label values (e.g.
 * many cgroups -> one pod/container/disk/op series). Up to max_series label
 * sets; beyond that, samples fold into one series whose label values are all
 * "_other", and the gauge podsnoop_metrics_series_folded{family} says how
 * many distinct label sets were folded at this scrape.
 * Allocates only when a label set is first seen (and on expiry): the event
 * path may add to one under a lock the scrape holds briefly (pod_metrics.c).
 */
#define HIST_AGG_MAX_LABELS 8
#define HIST_AGG_MAX_VALUE 253	/* longer label values are cut (a DNS name fits) */

struct hist_agg;
/* NULL on allocation failure or more than HIST_AGG_MAX_LABELS labels. */
struct hist_agg *hist_agg_new(const char *const *label_names, size_t n_labels,
			      size_t n_slots, size_t max_series);
/* values: n_labels strings; slots: n_slots counts; sum in units. -ENOMEM */
int hist_agg_add(struct hist_agg *a, const char *const *values, const uint64_t *slots,
		 uint64_t sum_units);
size_t hist_agg_series(const struct hist_agg *a);
/*
 * Kept from scrape to scrape, a hist_agg holds cumulative series (kernel maps
 * drained every interval, Prometheus counters that only grow). Each add
 * stamps its series with `now` (any clock); hist_agg_expire() drops the
 * series last added to before `before`, making room for new label sets (what
 * was folded into _other stays there). Returns how many were dropped.
 */
int hist_agg_add_at(struct hist_agg *a, const char *const *values, const uint64_t *slots,
		    uint64_t sum_units, uint64_t now);
size_t hist_agg_expire(struct hist_agg *a, uint64_t before);
/* The unit of sums, in seconds, when it differs from the slots' (slots in us, sums in ns). */
void hist_agg_set_sum_unit(struct hist_agg *a, double unit);
/* Write every series (sorted by label values) as samples of the current family. */
void hist_agg_write(struct mw *w, const struct hist_agg *a, double unit);
/* The same for counters: one-slot series (n_slots 1), slot 0 the value. */
void hist_agg_write_counters(struct mw *w, const struct hist_agg *a);
void hist_agg_free(struct hist_agg *a);

/*
 * The same figures handed to a visitor instead of written as text (the OTLP
 * metrics export, agent/ship/otlp_metrics.c): one family() call per family,
 * then one sample() per sample of it. On the caller's thread, under the
 * registry lock and each collector's own (as a scrape).
 */
struct metrics_sample {
	const char *const *labels;	/* name/value pairs, NULL name last; or NULL */
	uint64_t v;			/* counter (gauge: 0 when below) */
	double d;			/* the value as a double; histograms: the sum, seconds */
	const uint64_t *slots;		/* histograms: log2 slots (else NULL) */
	size_t n_slots;
	double unit;			/* seconds per unit of the slots */
	/* hist_agg series: the `now` of its first add (pod_metrics: CLOCK_BOOTTIME); else 0 */
	uint64_t born;
};

struct metrics_visitor {
	void (*family)(void *priv, const char *name, enum metric_type type, const char *help);
	void (*sample)(void *priv, const char *family, enum metric_type type,
		       const struct metrics_sample *s);
};

void metrics_visit(const struct metrics_visitor *vis, void *priv);
/* The upper bound of log2 slot i (all but the last), in seconds: the `le` of /metrics. */
double metrics_log2_bound(size_t i, double unit);

/*
 * Render every registered metric and collector as Prometheus text into a
 * malloc'd buffer (*len bytes, NUL-terminated). Takes the registry lock.
 * Returns NULL on allocation failure.
 */
char *metrics_render(size_t *len);

/* Forget every registration (tests; shutdown). */
void metrics_reset(void);

/* Exposed for tests: is this a valid metric / label name? */
bool metrics_valid_name(const char *s, bool label);

#endif
