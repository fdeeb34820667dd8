// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The native shipping sink (--collector): each record converted by pbconv
 * and packed by lib/batch.c's builder into podsnoop.v1.Batch, over the
 * shared delivery machinery (ship.c, ship_core.h).
 */
#include <errno.h>

#include "agent/attrib/bearer.h"
#include "agent/log.h"
#include "agent/ship/ship.h"
#include "agent/ship/ship_core.h"
#include "lib/pbconv.h"

static struct ship S;
static struct batch_builder BB;

static void ship_add(struct ship *s, const Podsnoop__V1__Record *r)
{
	ship_core_add(s, rec_type_of(r), bb_add(&BB, r));
}

static void ship_exec(void *priv, const struct exec_view *v)
{
	struct pb_exec_buf b;

	ship_add(priv, pbconv_exec(&b, v));
}

static void ship_open(void *priv, const struct open_view *v)
{
	struct pb_open_buf b;

	ship_add(priv, pbconv_open(&b, v));
}

static void ship_bio(void *priv, const struct bio_view *v)
{
	struct pb_bio_buf b;

	ship_add(priv, pbconv_bio(&b, v));
}

static void ship_bio_hist(void *priv, const struct bio_hist_view *v)
{
	struct pb_bio_hist_buf b;

	ship_add(priv, pbconv_bio_hist(&b, v));
}

static void ship_fs(void *priv, const struct fs_view *v)
{
	struct pb_fs_buf b;

	ship_add(priv, pbconv_fs(&b, v));
}

static void ship_cache(void *priv, const struct cache_view *v)
{
	struct pb_cache_buf b;

	ship_add(priv, pbconv_cache(&b, v));
}

static void ship_loss(void *priv, const struct loss_rec *l)
{
	ship_core_lost_rec(priv, l);
}

static void ship_flush(void *priv)
{
	ship_core_flush(priv);
}

const struct sink_ops ship_sink = {
	.exec = ship_exec,
	.open = ship_open,
	.bio = ship_bio,
	.bio_hist = ship_bio_hist,
	.loss = ship_loss,
	.fs = ship_fs,
	.cache = ship_cache,
	.flush = ship_flush,
};

/* The native codec: lib/batch.c's builder */
static bool nat_empty(void *enc)
{
	return bb_empty(enc);
}

static bool nat_full(void *enc)
{
	return bb_full(enc);
}

static const uint32_t *nat_counts(void *enc)
{
	return ((struct batch_builder *)enc)->counts;
}

static int nat_close(void *enc, uint64_t seq, uint64_t now_ns, const struct loss_ent *losses,
		     size_t n_losses, struct batch **out)
{
	return bb_close(enc, seq, now_ns, losses, n_losses, out);
}

static void nat_reset(void *enc)
{
	bb_reset(enc);
}

static const struct ship_codec native_codec = {
	.peer = "collector",
	.log_prefix = "ship",
	.st_queue = "ship_queue",
	.st_spool = "spool",
	.st_rejected = "collector",
	.st_encode = "ship_encode",
	.st_shutdown = "shutdown",
	.m_batches = "podsnoop_ship_batches_total",
	.m_spool = "podsnoop_spool_bytes",
	.m_latency = "podsnoop_collector_latency_seconds",
	.empty = nat_empty,
	.full = nat_full,
	.counts = nat_counts,
	.close = nat_close,
	.reset = nat_reset,
	.load_meta = batch_load_meta,
	.max_raw = batch_max_raw,
	.max_body = batch_max_body,
	.classify = http_classify,
};

int ship_start(const struct ps_config *pcfg)
{
	const struct ship_config *cfg = &pcfg->ship;
	const char *id, *node;
	int err;

	/* a token file must hold a token now: empty, no batch would carry one */
	err = cfg->token_file ? bearer_check(cfg->token_file) : 0;
	if (err)
		pr_err("--collector-token-file %s: %s", cfg->token_file, bearer_strerror(err));
	if (!err)
		err = ship_core_readable("--collector-ca", cfg->ca_file);
	if (!err)
		err = ship_core_readable("--collector-cert", cfg->cert_file);
	if (!err)
		err = ship_core_readable("--collector-key", cfg->key_file);
	if (!err)
		err = ship_identity(cfg, &id, &node);
	if (err)
		return err;
	err = bb_init(&BB, cfg->batch_records, cfg->batch_bytes, (int)cfg->gzip_level, ship_agent_pb());
	if (err)
		return err;
	err = ship_core_start(&S, cfg, &native_codec, &BB, &ship_sink, &S);
	if (err) {
		bb_free(&BB);
		return err;
	}
	pr_info("shipping to %s as agent %s of node %s%s%s", S.url, id, node,
		S.have_spool ? ", spool " : "", S.have_spool ? cfg->spool_dir : "");
	return 0;
}

void ship_stop(void)
{
	if (!S.started)
		return;
	ship_core_stop(&S);
	bb_free(&BB);
}
