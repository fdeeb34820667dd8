// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The OTLP/HTTP logs sink (--otlp-endpoint, OTEL_EXPORTER_OTLP_*): every
 * record one LogRecord (otlp_logs.c) over the shared delivery machinery
 * (ship_core.h), with a queue, spool (--spool-dir/otlp), thread and loss
 * tally of its own beside --collector's. Delivery as OTLP/HTTP says: only
 * 429, 502, 503, 504 and dropped connections are retried (Retry-After
 * honoured, else jittered backoff); every other answer is final; a partial
 * success is counted as lost and never retried.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "agent/log.h"
#include "agent/ship/otlp_logs.h"
#include "agent/ship/ship_core.h"
#include "agent/ship/ship_otlp.h"
#include "lib/version.h"

static struct ship O;
static struct otlp_logs ENC;
static struct ship_config OCFG;	/* the shared settings, with this sink's URL, TLS, headers */
static char spool_dir[4096];

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

void ship_otlp_stop(void)
{
	if (!O.started)
		return;
	ship_core_stop(&O);
	otlp_logs_free(&ENC);
}
