// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "agent/http/pod_metrics.h"
#include "agent/clock.h"
#include "agent/log.h"
#include "lib/metrics.h"
#include "agent/out/output.h"

#define NS_PER_S 1000000000ull
/* how often idle series are looked for */
#define EXPIRE_EVERY_NS (60ull * NS_PER_S)
/* namespace, pod, container, then the family's own */
#define POD_LABELS 3
#define MAX_LABELS (POD_LABELS + 2)

/*
 * One per-pod family: its series in a hist_agg, taken under its lock once
 * per record (or histogram) on the event loop and once per scrape.
 */
struct pod_family {
	const char *name;	/* a string literal: the folded gauge refers to it */
	const char *help;
	enum metric_type type;	/* MT_HISTOGRAM (log2 slots of us) or MT_COUNTER */
	const char *labels[MAX_LABELS];
	size_t n_labels;
	size_t n_slots;
	double sum_unit;	/* seconds per unit of the sums (histograms) */
	pthread_mutex_t lock;
	struct hist_agg *agg;
	uint64_t last_expire_ns;
	bool registered, warned;
};

#define POD_HIST(n, h, ...) { .name = (n), .help = (h), .type = MT_HISTOGRAM, \
	.labels = { "namespace", "pod", "container", __VA_ARGS__ }, \
	.n_slots = BIO_HIST_SLOTS, .sum_unit = 1e-9, .lock = PTHREAD_MUTEX_INITIALIZER }
#define POD_COUNTER(n, h, ...) { .name = (n), .help = (h), .type = MT_COUNTER, \
	.labels = { "namespace", "pod", "container", __VA_ARGS__ }, \
	.n_slots = 1, .lock = PTHREAD_MUTEX_INITIALIZER }

static struct pod_family bio_lat = POD_HIST("podsnoop_bio_latency_seconds",
	"Block I/O device time (issue to completion) by pod, container, disk and op "
	"(R, W, D, F, N), since the agent started; buckets are the kernel's log2 "
	"slots of whole microseconds.", "disk", "op");
static struct pod_family fs_lat = POD_HIST("podsnoop_fs_latency_seconds",
	"Filesystem operations slower than --fs-min-us (the fs records), by pod, "
	"container, op and filesystem, since the agent started; buckets are log2 "
	"slots of whole microseconds, as the block I/O ones.", "op", "fs");
static struct pod_family open_lat = POD_HIST("podsnoop_open_latency_seconds",
	"open(2) family calls (the open records) by pod and container, entry to return, "
	"since the agent started; buckets are log2 slots of whole microseconds.");
static struct pod_family opens = POD_COUNTER("podsnoop_opens_total",
	"open records by pod, container and result (ok, failed).", "result");
static struct pod_family execs = POD_COUNTER("podsnoop_execs_total",
	"exec records by pod, container and result (ok, failed).", "result");
static struct pod_family cache_hits = POD_COUNTER("podsnoop_pagecache_hits_total",
	"Page cache hits by pod and container (the cache rows; rows whose kernel gives "
	"no access count add none).");
static struct pod_family cache_misses = POD_COUNTER("podsnoop_pagecache_misses_total",
	"Page cache misses by pod and container (the cache rows).");
static struct pod_family pod_lost = POD_COUNTER("podsnoop_pod_events_lost_total",
	"Events lost by pod, container, tracer and stage, for losses that name their "
	"cgroup (rate_limited, shed); podsnoop_events_lost_total has every loss.", "tracer", "stage");

static size_t max_series = POD_METRICS_MAX_SERIES;
static bool sink_added;
static int lost_users;	/* tracers whose families are started: pod_lost is theirs */

void pod_metrics_set_max_series(size_t n)
{
	max_series = n ? n : POD_METRICS_MAX_SERIES;
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

/* labels: the family's own values after the pod's; slots: n_slots counts */
static void fam_add(struct pod_family *f, const struct pod_ref *p, const char *const *own,
		    const uint64_t *slots, uint64_t sum)
{
	const char *values[MAX_LABELS];
	uint64_t now;
	int err = 0;

	if (!__atomic_load_n(&f->agg, __ATOMIC_RELAXED))
		return; /* not started: nothing to take the lock for */
	/* a host task's: empty pod labels, which Prometheus takes as absent */
	values[0] = p ? or_empty(p->namespace_) : "";
	values[1] = p ? or_empty(p->pod) : "";
	values[2] = p ? or_empty(p->container) : "";
	for (size_t i = POD_LABELS; i < f->n_labels; i++)
		values[i] = own[i - POD_LABELS];
	now = clock_now_ns(CLOCK_BOOTTIME);
	pthread_mutex_lock(&f->lock);
	if (f->agg) {
		if (now - f->last_expire_ns >= EXPIRE_EVERY_NS &&
		    now > POD_METRICS_IDLE_S * NS_PER_S) {
			hist_agg_expire(f->agg, now - POD_METRICS_IDLE_S * NS_PER_S);
			f->last_expire_ns = now;
		}
		err = hist_agg_add_at(f->agg, values, slots, sum, now);
	}
	pthread_mutex_unlock(&f->lock);
	if (err && !f->warned) {
		f->warned = true;
		pr_warn("metrics: %s misses a sample: %s", f->name, strerror(-err));
	}
}

static void fam_count(struct pod_family *f, const struct pod_ref *p, const char *const *own,
		      uint64_t n)
{
	fam_add(f, p, own, &n, 0);
}

/* One latency, in the bio histograms' slots: log2 of whole microseconds. */
static void fam_observe(struct pod_family *f, const struct pod_ref *p, const char *const *own,
			uint64_t ns)
{
	uint64_t slots[BIO_HIST_SLOTS] = { 0 };
	unsigned int s = metric_log2_slot(ns / 1000);

	slots[s < BIO_HIST_SLOTS ? s : BIO_HIST_SLOTS - 1] = 1;
	fam_add(f, p, own, slots, ns);
}

static void sink_bio_hist(void *priv, const struct bio_hist_view *v)
{
	char disk[BIO_DISK_NAME_LEN + 1];
	size_t n = v->disk_len < BIO_DISK_NAME_LEN ? v->disk_len : BIO_DISK_NAME_LEN;

	(void)priv;
	memcpy(disk, v->disk, n);
	disk[n] = '\0';
	fam_add(&bio_lat, v->pod, (const char *[]){ disk, v->op }, (const uint64_t *)v->slots,
		v->sum_ns);
}

static void sink_fs(void *priv, const struct fs_view *v)
{
	(void)priv;
	fam_observe(&fs_lat, v->pod,
		    (const char *[]){ fs_op_name(v->e->op), fs_type_name(v->e->fs) },
		    v->e->latency_ns);
}

static void sink_open(void *priv, const struct open_view *v)
{
	(void)priv;
	fam_observe(&open_lat, v->pod, NULL, v->e->latency_ns);
	fam_count(&opens, v->pod, (const char *[]){ v->e->ret < 0 ? "failed" : "ok" }, 1);
}

static void sink_exec(void *priv, const struct exec_view *v)
{
	(void)priv;
	fam_count(&execs, v->pod, (const char *[]){ v->e->retval < 0 ? "failed" : "ok" }, 1);
}

static void sink_cache(void *priv, const struct cache_view *v)
{
	(void)priv;
	if (v->accesses_known && v->hits)
		fam_count(&cache_hits, v->pod, NULL, v->hits);
	if (v->misses)
		fam_count(&cache_misses, v->pod, NULL, v->misses);
}

static void sink_loss(void *priv, const struct loss_rec *l)
{
	(void)priv;
	if (l->has_cgroup && l->count)
		fam_count(&pod_lost, l->pod, (const char *[]){ l->tracer, l->stage }, l->count);
}

static const struct sink_ops sink = {
	.bio_hist = sink_bio_hist,
	.fs = sink_fs,
	.open = sink_open,
	.exec = sink_exec,
	.cache = sink_cache,
	.loss = sink_loss,
};

static void collect(struct mw *w, void *priv)
{
	struct pod_family *f = priv;

	mw_family(w, f->name, f->type, f->help);
	pthread_mutex_lock(&f->lock);
	if (f->agg) {
		if (f->type == MT_HISTOGRAM)
			hist_agg_write(w, f->agg, 1e-6);
		else
			hist_agg_write_counters(w, f->agg);
	}
	pthread_mutex_unlock(&f->lock);
}

static int fam_start(struct pod_family *f)
{
	struct hist_agg *a;
	int err;

	if (f->registered)
		return 0;
	while (f->n_labels < MAX_LABELS && f->labels[f->n_labels])
		f->n_labels++;
	a = hist_agg_new(f->labels, f->n_labels, f->n_slots, max_series);
	if (!a)
		return -ENOMEM;
	if (f->sum_unit > 0)
		hist_agg_set_sum_unit(a, f->sum_unit);
	err = metrics_add_collector(collect, f);
	if (err) {
		hist_agg_free(a);
		return err;
	}
	pthread_mutex_lock(&f->lock);
	f->last_expire_ns = clock_now_ns(CLOCK_BOOTTIME);
	__atomic_store_n(&f->agg, a, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&f->lock);
	f->registered = true;
	return 0;
}

static void fam_stop(struct pod_family *f)
{
	pthread_mutex_lock(&f->lock);
	hist_agg_free(f->agg);
	__atomic_store_n(&f->agg, NULL, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&f->lock);
}

/* The tracer's families, the loss family every tracer shares, the one sink. */
static int start(struct pod_family *const *fams, size_t n)
{
	int err = fam_start(&pod_lost);

	for (size_t i = 0; !err && i < n; i++)
		err = fam_start(fams[i]);
	if (!err && !sink_added) {
		err = out_add_sink(&sink, NULL);
		sink_added = !err;
	}
	if (!err)
		lost_users++;
	return err;
}

static void stop(struct pod_family *const *fams, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fam_stop(fams[i]);
	if (lost_users > 0 && --lost_users == 0)
		fam_stop(&pod_lost);
}

#define FAMS(...) (struct pod_family *const[]){ __VA_ARGS__ }, \
	sizeof((struct pod_family *const[]){ __VA_ARGS__ }) / sizeof(struct pod_family *)
#define START(...) start(FAMS(__VA_ARGS__))
#define STOP(...) stop(FAMS(__VA_ARGS__))

int pod_metrics_bio_start(void)
{
	return START(&bio_lat);
}

int pod_metrics_fs_start(void)
{
	return START(&fs_lat);
}

int pod_metrics_open_start(void)
{
	return START(&open_lat, &opens);
}

int pod_metrics_exec_start(void)
{
	return START(&execs);
}

int pod_metrics_cache_start(void)
{
	return START(&cache_hits, &cache_misses);
}

void pod_metrics_bio_stop(void)
{
	STOP(&bio_lat);
}

void pod_metrics_fs_stop(void)
{
	STOP(&fs_lat);
}

void pod_metrics_open_stop(void)
{
	STOP(&open_lat, &opens);
}

void pod_metrics_exec_stop(void)
{
	STOP(&execs);
}

void pod_metrics_cache_stop(void)
{
	STOP(&cache_hits, &cache_misses);
}
