// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The OTLP/HTTP sinks (--otlp-endpoint, OTEL_EXPORTER_OTLP_*), each over the
 * shared delivery machinery (ship_core.h) with a queue, thread and tally of
 * its own beside --collector's:
 * - logs: every record one LogRecord (otlp_logs.c), spool --spool-dir/otlp;
 * - metrics: every --interval, the per-pod families and the losses of
 *   /metrics as one cumulative request (otlp_metrics.c). No spool: each
 *   export carries the totals since start, so one that cannot be sent is
 *   made good by the next.
 * Delivery as OTLP/HTTP says: only 429, 502, 503, 504 and dropped
 * connections are retried (Retry-After honoured, else jittered backoff);
 * every other answer is final; a partial success is counted as lost and
 * never retried.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "agent/log.h"
#include "agent/clock.h"
#include "agent/ship/otlp_logs.h"
#include "agent/ship/otlp_metrics.h"
#include "agent/ship/ship_core.h"
#include "agent/ship/ship_otlp.h"
#include "lib/version.h"

static struct ship O;
static struct otlp_logs ENC;
static struct ship_config OCFG;	/* the shared settings, with this sink's URL, TLS, headers */
static char spool_dir[4096];

static struct ship M;
static struct otlp_metrics MENC;
static struct ship_config MCFG;
static uint64_t m_interval_ns, m_last_ns;
static bool m_final_done;

static void o_exec(void *priv, const struct exec_view *v)
{
	ship_core_add(priv, REC_EXEC, otlp_add_exec(&ENC, v));
}

static void o_open(void *priv, const struct open_view *v)
{
	ship_core_add(priv, REC_OPEN, otlp_add_open(&ENC, v));
}

static void o_bio(void *priv, const struct bio_view *v)
{
	ship_core_add(priv, REC_BIO, otlp_add_bio(&ENC, v));
}

static void o_fs(void *priv, const struct fs_view *v)
{
	ship_core_add(priv, REC_FS, otlp_add_fs(&ENC, v));
}

static void o_cache(void *priv, const struct cache_view *v)
{
	ship_core_add(priv, REC_CACHE, otlp_add_cache(&ENC, v));
}

static void o_loss(void *priv, const struct loss_rec *l)
{
	/* a loss record is a LogRecord of its own (counted nowhere when it cannot be packed) */
	ship_core_add(priv, REC_MAX, otlp_add_loss(&ENC, l));
}

static void o_flush(void *priv)
{
	ship_core_flush(priv);
}

/* bio_hist goes out as OTLP metrics, not logs */
static const struct sink_ops otlp_sink = {
	.exec = o_exec,
	.open = o_open,
	.bio = o_bio,
	.loss = o_loss,
	.fs = o_fs,
	.cache = o_cache,
	.flush = o_flush,
};

static bool c_empty(void *enc)
{
	return otlp_logs_empty(enc);
}

static bool c_full(void *enc)
{
	return otlp_logs_full(enc);
}

static const uint32_t *c_counts(void *enc)
{
	return ((struct otlp_logs *)enc)->counts;
}

static int c_close(void *enc, uint64_t seq, uint64_t now_ns, const struct loss_ent *losses,
		   size_t n_losses, struct batch **out)
{
	return otlp_logs_close(enc, seq, now_ns, losses, n_losses, out);
}

static void c_reset(void *enc)
{
	otlp_logs_reset(enc);
}

static const struct ship_codec otlp_codec = {
	.peer = "OTLP endpoint",
	.log_prefix = "otlp",
	.st_queue = "otlp_queue",
	.st_spool = "otlp_spool_full",
	.st_rejected = "otlp_rejected",
	.st_encode = "otlp_encode",
	.st_shutdown = "otlp_shutdown",
	.m_batches = "podsnoop_otlp_batches_total",
	.m_spool = "podsnoop_otlp_spool_bytes",
	.m_latency = "podsnoop_otlp_latency_seconds",
	.empty = c_empty,
	.full = c_full,
	.counts = c_counts,
	.close = c_close,
	.reset = c_reset,
	.load_meta = otlp_logs_load_meta,
	.max_raw = otlp_logs_max_raw,
	.max_body = otlp_logs_max_body,
	.refused = otlp_logs_refused,
	.classify = http_classify_otlp,
};

/* ---- metrics ---- */

static void m_flush(void *priv)
{
	uint64_t now = clock_now_ns(CLOCK_MONOTONIC);

	if (now - m_last_ns < m_interval_ns)
		return;
	m_last_ns = now;
	MENC.due = true;
	ship_core_close(priv);
}

/* records reach the metrics through pod_metrics.c's sink; this one only keeps time */
static const struct sink_ops metrics_sink = {
	.flush = m_flush,
};

static bool m_empty(void *enc)
{
	return !((struct otlp_metrics *)enc)->due;
}

static bool m_full(void *enc)
{
	(void)enc;
	return false;
}

static const uint32_t *m_counts(void *enc)
{
	static const uint32_t none[REC_MAX];

	(void)enc;
	return none;
}

static int m_close(void *enc, uint64_t seq, uint64_t now_ns, const struct loss_ent *losses,
		   size_t n_losses, struct batch **out)
{
	(void)losses; /* never any: a metrics batch holds no records */
	(void)n_losses;
	return otlp_metrics_close(enc, seq, now_ns, out);
}

static void m_reset(void *enc)
{
	((struct otlp_metrics *)enc)->due = false;
}

static size_t m_max_body(uint32_t batch_bytes)
{
	return compressBound((uLong)otlp_metrics_max_raw(batch_bytes)) + 32;
}

static const struct ship_codec metrics_codec = {
	.peer = "OTLP metrics endpoint",
	.log_prefix = "otlp-metrics",
	.what = "data points",
	.st_queue = "otlp_queue",
	.st_spool = "otlp_spool_full",
	.st_rejected = "otlp_rejected",
	.st_encode = "otlp_encode",
	.st_shutdown = "otlp_shutdown",
	.m_batches = "podsnoop_otlp_metrics_batches_total",
	.m_spool = "podsnoop_otlp_metrics_spool_bytes",
	.m_latency = "podsnoop_otlp_metrics_latency_seconds",
	.m_refused = "podsnoop_otlp_metrics_points_refused_total",
	.empty = m_empty,
	.full = m_full,
	.counts = m_counts,
	.close = m_close,
	.reset = m_reset,
	.load_meta = otlp_metrics_load_meta,
	.max_raw = otlp_metrics_max_raw,
	.max_body = m_max_body,
	.refused = otlp_metrics_refused,
	.classify = http_classify_otlp,
};

static int metrics_start(const struct ps_config *pcfg, const struct otlp_resource *res)
{
	int err;

	MCFG = OCFG;
	MCFG.url = pcfg->ship.otlp.metrics_url;
	MCFG.spool_dir = NULL;
	err = otlp_metrics_init(&MENC, (int)MCFG.gzip_level, ship_agent_pb()->started_ns, res);
	if (err) {
		pr_err("otlp: %s", err == -E2BIG ? "OTEL_RESOURCE_ATTRIBUTES too large" :
		       strerror(-err));
		return err;
	}
	m_interval_ns = (uint64_t)pcfg->interval_s * 1000000000ull;
	m_last_ns = clock_now_ns(CLOCK_MONOTONIC);
	m_final_done = false;
	err = ship_core_start(&M, &MCFG, &metrics_codec, &MENC, &metrics_sink, &M);
	if (err) {
		otlp_metrics_free(&MENC);
		return err;
	}
	pr_info("exporting OTLP metrics to %s every %u s", M.url, pcfg->interval_s);
	return 0;
}

int ship_otlp_start(const struct ps_config *pcfg)
{
	const struct otlp_config *oc = &pcfg->ship.otlp;
	struct otlp_resource res = { 0 };
	const char *id, *node;
	struct utsname uts;
	int err;

	OCFG = pcfg->ship;
	OCFG.url = oc->logs_url;
	OCFG.token_file = NULL;
	OCFG.ca_file = oc->ca_file;
	OCFG.cert_file = oc->cert_file;
	OCFG.key_file = oc->key_file;
	OCFG.timeout_ms = oc->timeout_ms;
	OCFG.headers = oc->headers;
	OCFG.n_headers = oc->n_headers;
	if (pcfg->ship.spool_dir) {
		/* a directory of its own: a spool is locked by one sink */
		if (mkdir(pcfg->ship.spool_dir, 0700) && errno != EEXIST) {
			err = -errno;
			pr_err("--spool-dir %s: %s", pcfg->ship.spool_dir, strerror(-err));
			return err;
		}
		if ((size_t)snprintf(spool_dir, sizeof(spool_dir), "%s/otlp",
				     pcfg->ship.spool_dir) >= sizeof(spool_dir))
			return -ENAMETOOLONG;
		OCFG.spool_dir = spool_dir;
	}
	err = ship_core_readable("--otlp-ca", oc->ca_file);
	if (!err)
		err = ship_core_readable("--otlp-cert", oc->cert_file);
	if (!err)
		err = ship_core_readable("--otlp-key", oc->key_file);
	if (!err)
		err = ship_identity(&pcfg->ship, &id, &node);
	if (err)
		return err;
	uname(&uts);
	res.service_name = oc->service_name ? oc->service_name : OTLP_SERVICE_NAME_DEF;
	res.service_version = PODSNOOP_VERSION;
	res.instance_id = id;
	res.node = node;
	res.host = uts.nodename;
	res.extra = oc->resource;
	res.n_extra = oc->n_resource;
	if (oc->metrics_url) {
		err = metrics_start(pcfg, &res);
		if (err)
			return err;
	}
	if (!oc->logs_url)
		return 0;
	err = otlp_logs_init(&ENC, OCFG.batch_records, OCFG.batch_bytes, (int)OCFG.gzip_level,
			     &res);
	if (err) {
		pr_err("otlp: %s", err == -E2BIG ? "OTEL_RESOURCE_ATTRIBUTES too large" :
		       strerror(-err));
		return err;
	}
	err = ship_core_start(&O, &OCFG, &otlp_codec, &ENC, &otlp_sink, &O);
	if (err) {
		otlp_logs_free(&ENC);
		return err;
	}
	pr_info("exporting OTLP logs to %s as service.instance.id %s of node %s%s%s", O.url, id,
		node, O.have_spool ? ", spool " : "", O.have_spool ? spool_dir : "");
	return 0;
}

void ship_otlp_final(void)
{
	if (!M.started || m_final_done)
		return;
	m_final_done = true;
	MENC.due = true;
	ship_core_close(&M);
}

void ship_otlp_stop(void)
{
	if (M.started) {
		ship_otlp_final(); /* when the tracers did not get as far */
		ship_core_stop(&M);
		otlp_metrics_free(&MENC);
	}
	if (!O.started)
		return;
	ship_core_stop(&O);
	otlp_logs_free(&ENC);
}
