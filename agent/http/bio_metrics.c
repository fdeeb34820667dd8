// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "agent/http/bio_metrics.h"
#include "agent/clock.h"
#include "agent/log.h"
#include "agent/http/metrics.h"
#include "agent/out/output.h"

#define NS_PER_S 1000000000ull
/* how often idle series are looked for */
#define EXPIRE_EVERY_NS (60ull * NS_PER_S)

static const char *const labels[] = { "namespace", "pod", "container", "disk", "op" };

/* taken once per histogram on the event loop and once per scrape: never per request */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct hist_agg *agg;
static uint64_t last_expire_ns;
static bool registered, warned;

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

static void sink_bio_hist(void *priv, const struct bio_hist_view *v)
{
	const struct pod_ref *p = v->pod;
	char disk[BIO_DISK_NAME_LEN + 1];
	const char *values[5];
	uint64_t now = clock_now_ns(CLOCK_BOOTTIME);
	int err = 0;

	(void)priv;
	memcpy(disk, v->disk, v->disk_len < BIO_DISK_NAME_LEN ? v->disk_len : BIO_DISK_NAME_LEN);
	disk[v->disk_len < BIO_DISK_NAME_LEN ? v->disk_len : BIO_DISK_NAME_LEN] = '\0';
	/* a host task's I/O: empty pod labels, which Prometheus takes as absent */
	values[0] = p ? or_empty(p->namespace_) : "";
	values[1] = p ? or_empty(p->pod) : "";
	values[2] = p ? or_empty(p->container) : "";
	values[3] = disk;
	values[4] = v->op;
	pthread_mutex_lock(&lock);
	if (agg) {
		if (now - last_expire_ns >= EXPIRE_EVERY_NS && now > BIO_METRICS_IDLE_S * NS_PER_S) {
			hist_agg_expire(agg, now - BIO_METRICS_IDLE_S * NS_PER_S);
			last_expire_ns = now;
		}
		err = hist_agg_add_at(agg, values, (const uint64_t *)v->slots, v->sum_ns, now);
	}
	pthread_mutex_unlock(&lock);
	if (err && !warned) {
		warned = true;
		pr_warn("metrics: podsnoop_bio_latency_seconds misses a histogram: %s",
			strerror(-err));
	}
}

static const struct sink_ops sink = {
	.bio_hist = sink_bio_hist,
};

static void collect(struct mw *w, void *priv)
{
	(void)priv;
	mw_family(w, "podsnoop_bio_latency_seconds", MT_HISTOGRAM,
		  "Block I/O device time (issue to completion) by pod, container, disk and op "
		  "(R, W, D, F, N), since the agent started; buckets are the kernel's log2 "
		  "slots of whole microseconds.");
	pthread_mutex_lock(&lock);
	if (agg)
		hist_agg_write(w, agg, 1e-6);
	pthread_mutex_unlock(&lock);
}

int bio_metrics_start(void)
{
	struct hist_agg *a;
	int err;

	if (registered)
		return -EALREADY;
	a = hist_agg_new(labels, sizeof(labels) / sizeof(labels[0]), BIO_HIST_SLOTS,
			 BIO_METRICS_MAX_SERIES);
	if (!a)
		return -ENOMEM;
	hist_agg_set_sum_unit(a, 1e-9); /* sum_ns */
	pthread_mutex_lock(&lock);
	agg = a;
	last_expire_ns = clock_now_ns(CLOCK_BOOTTIME);
	pthread_mutex_unlock(&lock);
	err = metrics_add_collector(collect, NULL);
	if (!err)
		err = out_add_sink(&sink, NULL);
	if (err) {
		bio_metrics_stop();
		return err;
	}
	registered = true;
	return 0;
}

void bio_metrics_stop(void)
{
	pthread_mutex_lock(&lock);
	hist_agg_free(agg);
	agg = NULL;
	pthread_mutex_unlock(&lock);
}
