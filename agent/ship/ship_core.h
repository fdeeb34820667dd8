/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The delivery machinery every shipping sink shares (ship.c): the open
 * batch on the event loop, the bounded queue, the shipper thread with its
 * retries, backoff and Retry-After, the spool, the loss tally and the
 * /metrics figures. What differs between sinks is a codec: how records are
 * packed and batches closed (--collector: podsnoop.v1.Batch; --otlp-endpoint:
 * ExportLogsServiceRequest), which answers are retried, what a 2xx answer
 * may still refuse, and the names of its loss stages and metrics.
 */
#ifndef PS_SHIP_CORE_H
#define PS_SHIP_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/metrics.h"
#include "agent/ship/ship_config.h"
#include "agent/ship/ship_http.h"
#include "agent/ship/ship_queue.h"
#include "agent/ship/ship_spool.h"
#include "lib/batch.h"

struct ship_codec {
	const char *peer;		/* "collector", "OTLP endpoint": in messages */
	const char *log_prefix;		/* "ship", "otlp" */
	const char *what;		/* what a batch holds, in messages: NULL "records" */
	/* loss stages, as the tally, the batches and /metrics name them */
	const char *st_queue, *st_spool, *st_rejected, *st_encode, *st_shutdown;
	/* /metrics names: {result=sent|retried|failed}, spool gauge, latency histogram */
	const char *m_batches, *m_spool, *m_latency;
	/*
	 * Optional: a counter of the batches' items the peer refused (rejected
	 * batches and partial successes), for codecs whose batches hold no
	 * records (counts all 0: OTLP metrics' data points), which the loss
	 * tally cannot charge to a tracer.
	 */
	const char *m_refused;
	bool (*empty)(void *enc);
	bool (*full)(void *enc);
	const uint32_t *(*counts)(void *enc);	/* records per type in the open batch */
	int (*close)(void *enc, uint64_t seq, uint64_t now_ns, const struct loss_ent *losses,
		     size_t n_losses, struct batch **out);
	void (*reset)(void *enc);
	/* meta fields of a batch read back from the spool; -errno */
	int (*load_meta)(struct batch *b, size_t max_raw);
	size_t (*max_raw)(uint32_t batch_bytes);
	size_t (*max_body)(uint32_t batch_bytes);
	/*
	 * A 2xx answer's body: how many records the peer refused all the same
	 * (OTLP partial success), its message in msg. NULL: a 2xx takes all.
	 */
	uint64_t (*refused)(const void *body, size_t len, char *msg, size_t size);
	/* which answers are retried */
	enum http_verdict (*classify)(bool transport_ok, long status);
};

struct ratelim {
	uint64_t last_ns;
	uint64_t held;		/* held back since the last message */
	uint64_t was_held;	/* held back before the message being written now */
};

struct ship {
	const struct ship_config *cfg;	/* url, TLS, headers, spool_dir: this sink's */
	const struct ship_codec *codec;
	void *enc;
	char url[2048];			/* cfg->url without credentials, for messages */
	bool started;
	bool stopping;			/* its flush has begun (stop_begin()) */

	/* event loop side */
	uint64_t next_seq;
	uint64_t first_ns;		/* CLOCK_MONOTONIC: first record of the open batch */
	uint64_t last_close_ns;
	struct ratelim drop_log;

	/* shared */
	struct loss_tally losses;
	struct ship_queue q;
	atomic_bool spool_full;
	atomic_int spool_errno;		/* why: 0 at --spool-max-bytes, else the write's errno */

	/* shipper thread side */
	pthread_t thread;
	struct http_client http;
	struct spool spool;
	bool have_spool;
	struct batch *cur;		/* being delivered */
	unsigned fails;			/* attempts failed in a row */
	unsigned int rnd;
	struct ratelim fail_log, reject_log, spool_log;
	uint64_t sent_batches, sent_bytes, retries;
	uint64_t rejected_batches, spooled_batches, unspooled_batches, refused_records;

	/* registered once, kept for the life of the process (not cleared by a start) */
	struct metric m_sent, m_retried, m_failed, m_spool, m_latency, m_refused;
	char m_help[200], m_spool_help[120], m_latency_help[120], m_refused_help[160];
	bool metrics_done;
};

/* The agent's id and node name (--node-name, $NODE_NAME, hostname), made once. -errno. */
int ship_identity(const struct ship_config *cfg, const char **agent_id, const char **node);
/* The same as the native batches carry it (after ship_identity). */
const Podsnoop__V1__Agent *ship_agent_pb(void);
/* 0 when path is NULL or readable, else -errno after logging "what path: why". */
int ship_core_readable(const char *what, const char *path);

/*
 * Start s: queue, spool (cfg->spool_dir), HTTP client, shipper thread, then
 * out_add_sink(sink, priv). The codec's encoder enc is ready. -errno, logged.
 */
int ship_core_start(struct ship *s, const struct ship_config *cfg, const struct ship_codec *codec,
		    void *enc, const struct sink_ops *sink, void *priv);
/*
 * Close the open batch, flush until the deadline ship_flush_begin() set (else
 * --flush-timeout-ms from now), spool the rest, stop.
 */
void ship_core_stop(struct ship *s);

/* Event loop: around adding one record of type t to the encoder. */
void ship_core_begin(struct ship *s);
/* err: the encoder's; -ENOSPC asks for close-and-add-again (ship_core_add's loop) */
void ship_core_added(struct ship *s, int err, enum rec_type t);
void ship_core_close(struct ship *s);
/* After every drain: close the batch once it is --batch-ms old. */
void ship_core_flush(struct ship *s);
/* n records of tracer were lost at stage (reason may be ""): they travel in the next batch */
void ship_core_lost(struct ship *s, const char *tracer, const char *stage, const char *reason,
		    uint64_t n);
/* A tracer's loss record: a cgroup's (rate_limited) is counted as that cgroup's. */
void ship_core_lost_rec(struct ship *s, const struct loss_rec *l);

/* Add one record through the encoder call ADD (an expression giving 0/-errno). */
#define ship_core_add(s, t, ADD)						\
	do {									\
		int err_;							\
		ship_core_begin(s);						\
		err_ = (ADD);							\
		if (err_ == -ENOSPC) {						\
			ship_core_close(s);					\
			ship_core_begin(s);					\
			err_ = (ADD);						\
		}								\
		ship_core_added(s, err_, t);					\
	} while (0)

#endif
