// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The shipping sink and the shipper thread.
 *
 * Event loop (ship_exec & co.): record -> pbconv -> packed into the open
 * batch; at --batch-records/--batch-bytes/--batch-ms the batch is closed
 * (header with the pending loss counters, gzip) and try-pushed onto the
 * queue. A full queue drops the NEWEST batch, the one being closed: its
 * records are counted (stage ship_queue, or spool when the spool is full
 * too), its sequence number is reused and its loss counters stay pending,
 * so the collector sees no gap and learns of the loss in the next batch.
 *
 * Shipper thread: sends the oldest batch first (the spool's, then the
 * queue's). Retryable failures back off (exponential, jittered, or
 * Retry-After) and, with --spool-dir, park the batch and everything queued
 * behind it in the spool until the collector is back; a long request moves
 * the queue to the spool once it is half full. A rejected batch (4xx) is
 * dropped, counted and logged with the collector's message.
 *
 * The machinery is shared (ship_core.h): the native sink below is one codec
 * over it, ship_otlp.c (--otlp-endpoint) another, each with a queue, spool,
 * thread and tally of its own.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/utsname.h>

#include "agent/attrib/bearer.h"
#include "agent/clock.h"
#include "agent/log.h"
#include "lib/metrics.h"
#include "lib/pbconv.h"
#include "agent/ship/ship.h"
#include "lib/batch.h"
#include "agent/ship/ship_http.h"
#include "agent/ship/ship_queue.h"
#include "agent/ship/ship_spool.h"
#include "agent/ship/ship_core.h"
#include "agent/http/tracer_metrics.h"
#include "lib/version.h"

#define NS_PER_MS 1000000ull
#define RETRY_AFTER_MAX_MS (10u * 60u * 1000u)
#define LOG_EVERY_NS (10ull * 1000000000ull)

/* Log at most once per LOG_EVERY_NS; counts what it held back. */

static bool ratelim_ok(struct ratelim *rl, uint64_t now)
{
	if (rl->last_ns && now - rl->last_ns < LOG_EVERY_NS) {
		rl->held++;
		return false;
	}
	rl->last_ns = now;
	rl->was_held = rl->held;
	rl->held = 0;
	return true;
}

#define BATCHES_HELP "Batches by outcome: sent (2xx), retried (attempts that failed and " \
		     "will be retried), failed (refused by the %s, or dropped)."

/* Who the agent is, for every sink: made once. */
static struct ident {
	bool done;
	char agent_id[33];
	char node[256];
	char kernel[65];
	Podsnoop__V1__Agent agent;
	unsigned int seed;
} I;

/* Every started sink, for /metrics' loss samples. */
static struct ship *ships[3];

static uint64_t mono_ns(void)
{
	return clock_now_ns(CLOCK_MONOTONIC);
}

static void count_lost(struct ship *s, const uint32_t counts[REC_MAX], const char *stage,
		       const char *reason)
{
	for (int t = 0; t < REC_MAX; t++)
		loss_tally_add(&s->losses, rec_tracer(t), stage, reason, counts[t]);
}

/* Why the spool takes no more, as a Loss reason. */
static const char *spool_reason(struct ship *s)
{
	int e = atomic_load(&s->spool_errno);

	return !e ? "full" : e == ENOSPC ? "disk_full" : "write_error";
}

static uint64_t sum(const uint32_t counts[REC_MAX])
{
	uint64_t n = 0;

	for (int t = 0; t < REC_MAX; t++)
		n += counts[t];
	return n;
}

static const char *what(const struct ship *s)
{
	return s->codec->what ? s->codec->what : "records";
}

/* ---- event loop side ---- */

void ship_core_close(struct ship *s)
{
	const struct ship_codec *c = s->codec;
	struct loss_ent snap[LOSS_KEYS_MAX];
	const char *stage = NULL;
	struct batch *b = NULL;
	size_t n;
	int err;

	s->last_close_ns = mono_ns();
	n = loss_tally_take(&s->losses, snap);
	if (c->empty(s->enc) && !n)
		return;
	err = c->close(s->enc, s->next_seq, clock_now_ns(CLOCK_REALTIME), snap, n, &b);
	if (err) {
		count_lost(s, c->counts(s->enc), c->st_encode, "error");
		if (ratelim_ok(&s->drop_log, s->last_close_ns))
			pr_err("%s: cannot encode a batch: %s; %" PRIu64 " records lost",
			       c->log_prefix, strerror(-err), sum(c->counts(s->enc)));
	} else if (shipq_push(&s->q, b)) {
		metric_inc(&s->m_failed);
		/* every bound is full: drop the newest; seq and loss counters stay */
		stage = s->have_spool && atomic_load(&s->spool_full) ? c->st_spool : c->st_queue;
		count_lost(s, b->counts, stage, stage == c->st_spool ? spool_reason(s) : "full");
		if (ratelim_ok(&s->drop_log, s->last_close_ns)) {
			int e = atomic_load(&s->spool_errno);
			char why[160];

			if (stage != c->st_spool)
				snprintf(why, sizeof(why), "send queue full");
			else if (!e)
				snprintf(why, sizeof(why), "send queue and spool full");
			else
				snprintf(why, sizeof(why), "send queue full and the spool not "
					 "writable (%s%s)", strerror(e),
					 e == ENOSPC ? ": its filesystem is full" : "");
			pr_warn("%s: %s, batch of %u %s dropped (counted; %" PRIu64
				" more batches dropped since the last message)", c->log_prefix, why,
				b->n_records, what(s), s->drop_log.was_held);
		}
		batch_free(b);
	} else {
		loss_tally_commit(&s->losses, snap, n);
		s->next_seq++;
	}
	c->reset(s->enc);
}

void ship_core_begin(struct ship *s)
{
	if (s->codec->empty(s->enc))
		s->first_ns = mono_ns();
}

void ship_core_added(struct ship *s, int err, enum rec_type t)
{
	if (err) {
		loss_tally_add(&s->losses, rec_tracer(t), s->codec->st_encode, "too_large", 1);
		return;
	}
	if (s->codec->full(s->enc))
		ship_core_close(s);
}

void ship_core_lost(struct ship *s, const char *tracer, const char *stage, const char *reason,
		    uint64_t n)
{
	loss_tally_add(&s->losses, tracer, stage, reason, n);
}

void ship_core_lost_rec(struct ship *s, const struct loss_rec *l)
{
	if (l->has_cgroup) /* counted per cgroup: the collector keeps them per pod */
		loss_tally_add_cgroup(&s->losses, l->tracer, l->stage, l->cgroup_id, l->pod,
				      l->count);
	else
		loss_tally_add(&s->losses, l->tracer, l->stage, "", l->count);
}

void ship_core_flush(struct ship *s)
{
	uint64_t now = mono_ns(), age = s->cfg->batch_ms * NS_PER_MS;

	if (!s->codec->empty(s->enc) ? now - s->first_ns >= age : now - s->last_close_ns >= age)
		ship_core_close(s); /* an empty one goes only when it carries losses */
}

/* ---- shipper thread ---- */

static bool stopping(struct ship *s, uint64_t *deadline)
{
	return shipq_stopping(&s->q, deadline);
}

/* Park b in the spool (a no-op when it is there already). 0 or -errno. */
static int spool_batch(struct ship *s, struct batch *b)
{
	int err;

	if (b->spool_id)
		return 0;
	if (!s->have_spool)
		return -ENOSPC;
	err = spool_put(&s->spool, b->body, b->len, &b->spool_id);
	if (err) {
		/* a write that failed is as good as full for the drop policy */
		atomic_store(&s->spool_errno, err == -EDQUOT ? 0 : -err);
		atomic_store(&s->spool_full, true);
		if (err != -EDQUOT && ratelim_ok(&s->spool_log, mono_ns()))
			pr_err("spool: cannot write a batch of %zu bytes to %s: %s%s (%zu batches, %"
			       PRIu64 " bytes spooled)", b->len, s->cfg->spool_dir, strerror(-err),
			       err == -ENOSPC ? ": its filesystem is full" : "",
			       spool_count(&s->spool), s->spool.bytes);
	} else {
		atomic_store(&s->spool_full, false); /* room again (a disk freed, say) */
		s->spooled_batches++;
		metric_set(&s->m_spool, (int64_t)s->spool.bytes);
	}
	return err;
}

/* Move the batch in flight (first) and the queued ones to the spool, in order. */
static void spill(struct ship *s)
{
	struct batch *b;

	if (!s->have_spool)
		return;
	if (s->cur && spool_batch(s, s->cur))
		return; /* nothing may overtake it */
	while ((b = shipq_pop(&s->q))) {
		if (spool_batch(s, b)) {
			shipq_unpop(&s->q, b);
			return;
		}
		batch_free(b);
	}
}

/* libcurl calls this often during a request. */
static int on_progress(void *ctx)
{
	struct ship *s = ctx;
	uint64_t deadline;

	if (s->have_spool && shipq_bytes(&s->q) > s->cfg->queue_max_bytes / 2)
		spill(s);
	return stopping(s, &deadline) && mono_ns() >= deadline;
}

/* The oldest batch waiting (the spool's first), or NULL when it is time to stop. */
static struct batch *next_batch(struct ship *s)
{
	uint64_t deadline, id;
	struct batch *b;
	uint8_t *body;
	size_t len;
	int err;

	for (;;) {
		if (s->have_spool && spool_count(&s->spool)) {
			if (stopping(s, &deadline) && mono_ns() >= deadline)
				return NULL;
			err = spool_head(&s->spool, &body, &len, &id);
			if (err) {
				pr_err("spool: skipping a batch in %s, left there: %s",
				       s->cfg->spool_dir, err == -ELOOP ? "a symbolic link" :
				       err == -ENOTSUP ? "not a regular file" :
				       err == -EFBIG ? "larger than a batch can be" : strerror(-err));
				continue;
			}
			b = batch_from_body(body, len, id);
			if (!b) {
				free(body);
				return NULL;
			}
			s->unspooled_batches++;
			return b;
		}
		b = shipq_pop(&s->q);
		if (b)
			return b;
		if (stopping(s, NULL))
			return NULL;
		shipq_wait_item(&s->q);
	}
}

static void done_with(struct ship *s, struct batch *b)
{
	if (b->spool_id) {
		spool_remove_head(&s->spool, b->spool_id);
		atomic_store(&s->spool_full, false);
		metric_set(&s->m_spool, (int64_t)s->spool.bytes);
	}
	batch_free(b);
	s->cur = NULL;
}

/*
 * A 2xx that refused n of b's records all the same (OTLP partial success):
 * final, never retried. The answer does not say which records, so they are
 * counted by type in proportion to the batch's (the remainder to the largest).
 * A batch of no records (metrics) has nothing to charge to a tracer: its
 * items go to the codec's m_refused.
 */
static void on_refused(struct ship *s, struct batch *b, uint64_t n, const char *msg)
{
	uint32_t lost[REC_MAX] = { 0 };
	uint64_t given = 0;
	int big = 0;

	if (!b->have_meta && s->codec->load_meta(b, s->codec->max_raw(s->cfg->batch_bytes)))
		b->n_records = 0;
	if (n > b->n_records)
		n = b->n_records;
	for (int t = 0; t < REC_MAX && b->n_records; t++) {
		lost[t] = (uint32_t)(n * b->counts[t] / b->n_records);
		given += lost[t];
		if (b->counts[t] > b->counts[big])
			big = t;
	}
	if (sum(b->counts))
		lost[big] += (uint32_t)(n - given);
	count_lost(s, lost, s->codec->st_rejected, "partial_success");
	s->refused_records += n;
	if (s->codec->m_refused)
		metric_add(&s->m_refused, n);
	if (ratelim_ok(&s->reject_log, mono_ns()))
		pr_err("%s %s took batch %" PRIu64 " but refused %" PRIu64 " of its %u %s: "
		       "%s; counted as lost, not retried (%" PRIu64 " more rejections since the "
		       "last message)", s->codec->peer, s->url, b->seq, n, b->n_records, what(s),
		       msg[0] ? msg : "(no message)", s->reject_log.was_held);
}

static void on_sent(struct ship *s, struct batch *b, const struct http_result *r)
{
	char msg[256];
	uint64_t n;

	if (s->fails)
		pr_info("%s: batches are accepted again, after %u failed attempts",
			s->codec->peer, s->fails);
	s->fails = 0;
	s->sent_batches++;
	s->sent_bytes += b->len;
	metric_inc(&s->m_sent);
	if (s->codec->refused) {
		msg[0] = '\0';
		n = s->codec->refused(r->body, r->body_len, msg, sizeof(msg));
		if (n)
			on_refused(s, b, n, msg);
	}
	done_with(s, b);
}

static void on_rejected(struct ship *s, struct batch *b, const struct http_result *r)
{
	const char *hint = "";
	char reason[24];
	int err = s->codec->load_meta(b, s->codec->max_raw(s->cfg->batch_bytes));

	s->fails = 0;
	s->rejected_batches++;
	metric_inc(&s->m_failed);
	if ((r->status == 401 || r->status == 403) && s->cfg->token_file)
		hint = " (check --collector-token-file)";
	else if (r->status == 413)
		hint = " (lower --batch-bytes)";
	snprintf(reason, sizeof(reason), "http_%ld", r->status);
	if (!err) {
		count_lost(s, b->counts, s->codec->st_rejected, reason);
		loss_tally_readd(&s->losses, b->losses, b->n_losses);
		if (s->codec->m_refused)
			metric_add(&s->m_refused, b->n_records);
	}
	if (ratelim_ok(&s->reject_log, mono_ns())) {
		if (err)
			pr_err("%s rejected a batch with HTTP %ld%s: %s; dropped, and it "
			       "cannot be decoded to count its records (%s)", s->codec->peer,
			       r->status, hint,
			       r->msg[0] ? r->msg : "(no message)", strerror(-err));
		else
			pr_err("%s rejected batch %" PRIu64 " with HTTP %ld%s: %s; dropped, "
			       "%u %s counted as lost (%" PRIu64 " more rejections since the "
			       "last message)", s->codec->peer, b->seq, r->status, hint,
			       r->msg[0] ? r->msg : "(no message)", b->n_records, what(s),
			       s->reject_log.was_held);
	}
	done_with(s, b);
}

static void on_failed(struct ship *s, struct batch *b, const struct http_result *r,
		      uint64_t delay_ms)
{
	char what[400];

	if (r->status)
		snprintf(what, sizeof(what), "HTTP %ld%s%s", r->status, r->msg[0] ? ": " : "",
			 r->msg);
	else
		snprintf(what, sizeof(what), "%s", r->msg);
	s->fails++;
	s->retries++;
	metric_inc(&s->m_retried);
	if (s->fails == 1 || ratelim_ok(&s->fail_log, mono_ns()))
		pr_warn("%s %s: %s; retrying in %" PRIu64 " ms (%u failed attempts; "
			"batches wait in %s)", s->codec->peer, s->url, what, delay_ms, s->fails,
			s->have_spool ? "the spool" : "memory");
	else
		pr_debug("%s: %s; retry in %" PRIu64 " ms", s->codec->peer, what, delay_ms);
	/* from now on batches wait on disk, in order, behind this one */
	spool_batch(s, b);
}

enum { DELIVERED, DEADLINE };

static int deliver(struct ship *s, struct batch *b)
{
	uint64_t deadline, until, now, delay, seen = 0;
	struct http_result r;
	unsigned attempt = 0;
	uint32_t timeout;

	s->cur = b;
	for (;;) {
		timeout = s->cfg->timeout_ms;
		if (stopping(s, &deadline)) {
			now = mono_ns();
			if (now >= deadline)
				return DEADLINE;
			if ((deadline - now) / NS_PER_MS < timeout)
				timeout = (uint32_t)((deadline - now) / NS_PER_MS) + 1;
		}
		now = mono_ns();
		http_post(&s->http, b->body, b->len, timeout, on_progress, s, &r);
		if (r.status) /* an answer came */
			metric_observe(&s->m_latency, (mono_ns() - now) / NS_PER_MS);
		if (r.aborted)
			return DEADLINE;
		if (r.verdict == HTTP_SENT) {
			on_sent(s, b, &r);
			return DELIVERED;
		}
		if (r.verdict == HTTP_REJECT) {
			on_rejected(s, b, &r);
			return DELIVERED;
		}
		if (r.retry_after_ms)
			delay = r.retry_after_ms < RETRY_AFTER_MAX_MS ? r.retry_after_ms
								      : RETRY_AFTER_MAX_MS;
		else
			delay = backoff_ms(attempt, s->cfg->retry_min_ms, s->cfg->retry_max_ms,
					   (uint32_t)rand_r(&s->rnd));
		attempt++;
		on_failed(s, b, &r, delay);
		until = mono_ns() + delay * NS_PER_MS;
		for (;;) { /* wait, parking whatever arrives meanwhile */
			bool stop;

			spill(s);
			stop = stopping(s, &deadline);
			now = mono_ns();
			if (stop && now >= deadline)
				return DEADLINE;
			if (now >= until)
				break;
			shipq_wait_change(&s->q, stop && deadline < until ? deadline : until, &seen);
		}
	}
}

/* Flush time is up: spool what is left, count what cannot be. */
static void park_rest(struct ship *s)
{
	uint32_t lost[REC_MAX] = { 0 };
	uint64_t lost_batches = 0;
	struct batch *b = s->cur;

	s->cur = NULL;
	while (b || (b = shipq_pop(&s->q))) {
		if (spool_batch(s, b)) {
			metric_inc(&s->m_failed);
			if (!s->codec->load_meta(b, s->codec->max_raw(s->cfg->batch_bytes)))
				for (int t = 0; t < REC_MAX; t++)
					lost[t] += b->counts[t];
			lost_batches++;
		}
		batch_free(b);
		b = NULL;
	}
	if (lost_batches) {
		int e = atomic_load(&s->spool_errno);

		count_lost(s, lost, s->codec->st_shutdown, !s->have_spool ? "no_spool" :
			   e == ENOSPC ? "spool_disk_full" : e ? "spool_write_error" : "spool_full");
		pr_err("%s: %" PRIu64 " records in %" PRIu64 " batches could not be sent before "
		       "--flush-timeout-ms and are lost (%s%s)", s->codec->log_prefix, sum(lost),
		       lost_batches,
		       !s->have_spool ? "no --spool-dir" : e ? "the spool cannot be written: " :
		       "the spool is full", s->have_spool && e ? strerror(e) : "");
	}
	if (s->have_spool && spool_count(&s->spool))
		pr_info("%s: %zu batches (%" PRIu64 " bytes) wait in %s for the next start",
			s->codec->log_prefix, spool_count(&s->spool), s->spool.bytes, s->cfg->spool_dir);
}

static void *ship_main(void *arg)
{
	struct ship *s = arg;
	struct batch *b;

	while ((b = next_batch(s)))
		if (deliver(s, b) == DEADLINE)
			break;
	park_rest(s);
	return NULL;
}

/* ---- /metrics ---- */

/* Our loss stages in podsnoop_events_lost_total's vocabulary (metrics.h). */
static const char *metric_stage(const char *stage)
{
	if (!strcmp(stage, "ship_queue"))
		return "shipping_queue";
	if (!strcmp(stage, "spool"))
		return "spool_full";
	if (!strcmp(stage, "collector"))
		return "rejected";
	return stage; /* ship_encode, shutdown */
}

/* One sink's losses since start, summed per (tracer, stage): on the HTTP thread. */
static void lost_samples_of(struct mw *w, struct ship *s)
{
	struct loss_ent all[LOSS_KEYS_MAX];
	bool done[LOSS_KEYS_MAX] = { false };
	size_t n = loss_tally_all(&s->losses, all);

	for (size_t i = 0; i < n; i++) {
		const char *stage = metric_stage(all[i].stage);
		uint64_t total = 0;

		/* the kernel's own stages come from the tracers' counters */
		if (done[i] || !strncmp(all[i].stage, "kernel_", 7) ||
		    !strcmp(all[i].stage, "rate_limited") || !strcmp(all[i].stage, "shed"))
			continue;
		for (size_t j = i; j < n; j++) {
			if (!strcmp(all[j].tracer, all[i].tracer) &&
			    !strcmp(metric_stage(all[j].stage), stage)) {
				total += all[j].total;
				done[j] = true;
			}
		}
		mw_u64(w, (const char *[]){ "tracer", all[i].tracer, "stage", stage, NULL }, total);
	}
}

static void lost_samples(struct mw *w)
{
	for (size_t i = 0; i < sizeof(ships) / sizeof(ships[0]); i++)
		if (ships[i])
			lost_samples_of(w, ships[i]);
}

static void metrics_start(struct ship *s)
{
	const struct ship_codec *c = s->codec;

	if (!s->metrics_done) { /* the registry keeps them for the life of the process */
		snprintf(s->m_help, sizeof(s->m_help), BATCHES_HELP, c->peer);
		s->m_sent = (struct metric)METRIC_COUNTER(c->m_batches, s->m_help, "result", "sent");
		s->m_retried = (struct metric)METRIC_COUNTER(c->m_batches, s->m_help,
							     "result", "retried");
		s->m_failed = (struct metric)METRIC_COUNTER(c->m_batches, s->m_help,
							    "result", "failed");
		s->m_spool = (struct metric)METRIC_GAUGE(c->m_spool, s->m_spool_help);
		s->m_latency = (struct metric)METRIC_HISTOGRAM(c->m_latency, s->m_latency_help,
							       1e-3);
		snprintf(s->m_spool_help, sizeof(s->m_spool_help),
			 "Bytes of batches for the %s waiting in the spool.", c->peer);
		snprintf(s->m_latency_help, sizeof(s->m_latency_help),
			 "Time from sending a batch to the %s's answer (2xx or not).", c->peer);
		metrics_register(&s->m_sent);
		metrics_register(&s->m_retried);
		metrics_register(&s->m_failed);
		metrics_register(&s->m_spool);
		metrics_register(&s->m_latency);
		if (c->m_refused) {
			snprintf(s->m_refused_help, sizeof(s->m_refused_help),
				 "Items of accepted (partial success) and rejected batches that "
				 "the %s refused.", c->peer);
			s->m_refused = (struct metric)METRIC_COUNTER(c->m_refused,
								     s->m_refused_help);
			metrics_register(&s->m_refused);
		}
		s->metrics_done = true;
	}
	metric_set(&s->m_spool, s->have_spool ? (int64_t)s->spool.bytes : 0);
	for (size_t i = 0; i < sizeof(ships) / sizeof(ships[0]); i++) {
		if (!ships[i]) {
			ships[i] = s;
			break;
		}
	}
	tracer_metrics_set_lost_extra(lost_samples);
}

static void metrics_stop(struct ship *s)
{
	bool any = false;

	for (size_t i = 0; i < sizeof(ships) / sizeof(ships[0]); i++) {
		if (ships[i] == s)
			ships[i] = NULL;
		any |= ships[i] != NULL;
	}
	tracer_metrics_set_lost_extra(any ? lost_samples : NULL);
}

/* ---- start and stop ---- */

int ship_core_readable(const char *what, const char *path)
{
	if (path && access(path, R_OK)) {
		int err = -errno;

		pr_err("%s %s: %s", what, path, strerror(-err));
		return err;
	}
	return 0;
}

static int identity(const struct ship_config *cfg)
{
	const char *node = cfg->node_name;
	unsigned char id[16];
	struct utsname uts;

	if (I.done)
		return 0;
	if (getrandom(id, sizeof(id), 0) != sizeof(id))
		return -errno;
	for (size_t i = 0; i < sizeof(id); i++)
		snprintf(I.agent_id + 2 * i, 3, "%02x", id[i]);
	if (getrandom(&I.seed, sizeof(I.seed), 0) != sizeof(I.seed))
		I.seed = (unsigned int)mono_ns();
	uname(&uts);
	if (!node || !*node)
		node = getenv("NODE_NAME");
	if (!node || !*node)
		node = uts.nodename;
	snprintf(I.node, sizeof(I.node), "%s", node);
	snprintf(I.kernel, sizeof(I.kernel), "%s", uts.release);
	podsnoop__v1__agent__init(&I.agent);
	I.agent.node = I.node;
	I.agent.agent_id = I.agent_id;
	I.agent.version = (char *)PODSNOOP_VERSION;
	I.agent.kernel = I.kernel;
	I.agent.started_ns = clock_now_ns(CLOCK_REALTIME);
	I.done = true;
	return 0;
}

int ship_identity(const struct ship_config *cfg, const char **agent_id, const char **node)
{
	int err = identity(cfg);

	if (err) {
		pr_err("cannot make an agent id: %s", strerror(-err));
		return err;
	}
	*agent_id = I.agent_id;
	*node = I.node;
	return 0;
}

int ship_core_start(struct ship *s, const struct ship_config *cfg, const struct ship_codec *codec,
		    void *enc, const struct sink_ops *sink, void *priv)
{
	sigset_t all, old;
	int err;

	/* (the metrics after m_sent are registered for the life of the process) */
	memset(s, 0, offsetof(struct ship, m_sent));
	s->cfg = cfg;
	s->codec = codec;
	s->enc = enc;
	s->rnd = I.seed++;
	log_url(cfg->url, s->url, sizeof(s->url));
	/*
	 * Batch bodies (tens to hundreds of KiB, one malloc per batch) come and go
	 * on two threads: with glibc's sliding mmap threshold they would stay in
	 * the heap after free. A fixed threshold gives them back at once.
	 */
	mallopt(M_MMAP_THRESHOLD, 64 * 1024);
	loss_tally_init(&s->losses);
	err = shipq_init(&s->q, cfg->queue_max_bytes);
	if (err)
		goto fail_q;
	if (cfg->spool_dir) {
		err = spool_open(&s->spool, cfg->spool_dir, cfg->spool_max_bytes,
				 codec->max_body(cfg->batch_bytes));
		if (err) {
			pr_err("--spool-dir %s: %s", cfg->spool_dir,
			       err == -EBUSY ? "in use by another podsnoop" : strerror(-err));
			goto fail_spool;
		}
		s->have_spool = true;
		if (spool_count(&s->spool))
			pr_info("spool: %zu batches (%" PRIu64 " bytes) for the %s from an earlier "
				"run are sent first", spool_count(&s->spool), s->spool.bytes,
				codec->peer);
		if (s->spool.ignored)
			pr_warn("spool: %zu .batch entries in %s are not regular files or are "
				"larger than a batch of --batch-bytes %u can be (%zu bytes): left "
				"there, not sent", s->spool.ignored, cfg->spool_dir,
				cfg->batch_bytes, codec->max_body(cfg->batch_bytes));
		atomic_store(&s->spool_full, s->spool.bytes >= cfg->spool_max_bytes);
	}
	/* (reference-counted by libcurl: once per sink is right) */
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		err = -ENOMEM;
		pr_err("libcurl: cannot initialise");
		goto fail_curl;
	}
	err = http_init(&s->http, cfg);
	if (err) {
		pr_err("libcurl: %s", strerror(-err));
		goto fail_http;
	}
	s->http.classify = codec->classify;
	s->next_seq = 1;
	s->last_close_ns = mono_ns();

	/* the event loop reads signals from a signalfd: none may land on this thread */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = -pthread_create(&s->thread, NULL, ship_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		pr_err("cannot start the %s shipper thread: %s", codec->log_prefix, strerror(-err));
		goto fail_thread;
	}
	err = out_add_sink(sink, priv);
	if (err) { /* cannot happen with the fixed sinks main.c adds */
		shipq_stop(&s->q, 0);
		pthread_join(s->thread, NULL);
		goto fail_thread;
	}
	s->started = true;
	metrics_start(s);
	return 0;

fail_thread:
	http_free(&s->http);
fail_http:
	curl_global_cleanup();
fail_curl:
	if (s->have_spool)
		spool_close(&s->spool);
fail_spool:
	shipq_destroy(&s->q);
fail_q:
	loss_tally_destroy(&s->losses);
	return err;
}

/* Close the open batch and tell the shipper thread to finish by deadline_ns. */
static void stop_begin(struct ship *s, uint64_t deadline_ns)
{
	if (!s->started || s->stopping)
		return;
	s->stopping = true;
	ship_core_close(s);
	metrics_stop(s); /* the tally goes away in ship_core_stop() */
	shipq_stop(&s->q, deadline_ns);
}

void ship_flush_begin(void)
{
	struct ship *all[sizeof(ships) / sizeof(ships[0])];
	uint64_t now = mono_ns();

	/*
	 * Every sink flushes side by side against a deadline taken once: stopped
	 * one after the other, each with its own --flush-timeout-ms, a node whose
	 * collector and OTLP endpoint are both down would wait once per sink,
	 * past what its terminationGracePeriodSeconds was sized for.
	 */
	memcpy(all, ships, sizeof(all)); /* stop_begin() takes them out */
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (all[i])
			stop_begin(all[i], now + all[i]->cfg->flush_timeout_ms * NS_PER_MS);
}

void ship_core_stop(struct ship *s)
{
	struct loss_ent left[LOSS_KEYS_MAX];
	size_t n;

	if (!s->started)
		return;
	stop_begin(s, mono_ns() + s->cfg->flush_timeout_ms * NS_PER_MS);
	pthread_join(s->thread, NULL);

	pr_info("%s: sent %" PRIu64 " batches (%" PRIu64 " bytes gzipped), %" PRIu64 " retries, "
		"%" PRIu64 " rejected batches, %" PRIu64 " records refused in accepted ones, %"
		PRIu64 " spooled, %" PRIu64 " sent from the spool", s->codec->log_prefix,
		s->sent_batches, s->sent_bytes, s->retries, s->rejected_batches,
		s->refused_records, s->spooled_batches, s->unspooled_batches);
	n = loss_tally_take(&s->losses, left);
	for (size_t i = 0; i < n; i++)
		pr_warn("%s: %" PRIu64 " %s records lost (%s%s%s) and not reported to the %s",
			s->codec->log_prefix, left[i].count, left[i].tracer, left[i].stage,
			left[i].reason[0] ? "/" : "", left[i].reason, s->codec->peer);

	http_free(&s->http);
	curl_global_cleanup();
	if (s->have_spool)
		spool_close(&s->spool);
	shipq_destroy(&s->q);
	loss_tally_destroy(&s->losses);
	s->started = false;
	s->stopping = false;
}

const Podsnoop__V1__Agent *ship_agent_pb(void)
{
	return &I.agent;
}
