/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Between the collector's files: collector.c (flags, start, the main
 * thread), http.c (connections, deadlines, the request handler), output.c
 * (a batch into --out as one unit, and the batches an earlier run left
 * there), request.c (decoding and checking one request within its bounds),
 * clickhouse.c (--clickhouse: a batch into ClickHouse; chrows.c: its rows).
 */
#ifndef PS_COLLECTOR_H
#define PS_COLLECTOR_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <microhttpd.h>

#include "collector/dedup.h"
#include "collector/request.h"

#define PATH_V1 "/v1/batches"
#define MAX_REJECT_SEQ 64
#define MIB (1024u * 1024u)
/* Retry-After for 503s: the pool is busy for a moment; a full disk needs a person */
#define RETRY_BUSY_S 2
#define RETRY_DISK_S 30
/* ... and ClickHouse down, slow or refusing: the agent backs off from there */
#define RETRY_CH_S 5

struct collector_opts {
	const char *listen;
	const char *out_path;
	const char *token_file;
	const char *tls_cert, *tls_key, *tls_client_ca;
	const char *save_dir;
	/* --clickhouse */
	const char *ch_url, *ch_database, *ch_user, *ch_password_file, *ch_ca, *ch_cluster;
	long ch_timeout_ms;
	unsigned ch_retention_days, ch_retention_check_s;
	size_t max_body;
	struct req_limits lim;
	size_t max_buffered;
	unsigned max_conns, max_conns_per_ip;
	unsigned header_timeout, body_timeout;
	size_t dedup_agents;
	bool fsync;
	int verbose;
	/* faults */
	long fail_status;
	long fail_count;
	long retry_after;
	const char *fail_message;
	long stall_ms;
	long stall_count;
	bool stall_after_write;
	uint64_t reject_seq[MAX_REJECT_SEQ];
	int n_reject_seq;
};
extern struct collector_opts opt;

struct collector_stats {
	uint64_t batches, duplicates, rejected, records, skipped, bytes, raw_bytes, lost;
	uint64_t write_failed, busy, cut, ch_failed, ch_outages;
	bool ch_down;		/* in a ClickHouse outage */
};

extern pthread_mutex_t mu;	/* output, dedup, faults, stats */
extern struct collector_stats st;
extern FILE *out;		/* NULL: no NDJSON (--clickhouse without --out) */
extern off_t out_good;		/* --out's size after the last whole unit; -1: not a file */
extern char *token;
extern struct dedup seen;
extern struct mem_pool pool;	/* bodies, gunzip output, decoded batches */

void collector_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_err(...) collector_log("error", __VA_ARGS__)
#define log_warn(...) collector_log("warning", __VA_ARGS__)
#define log_info(...) collector_log("info", __VA_ARGS__)
#define log_debug(...) do { if (opt.verbose) collector_log("debug", __VA_ARGS__); } while (0)

/* output.c */
/* Decode, check and write one body. Returns the HTTP status; r->msg says why. */
unsigned process(struct req *r, const uint8_t *body, size_t len, bool gzipped,
		 long *retry_after);
/* One of the batch's loss entries as the NDJSON line --out has for it. */
void write_loss(FILE *f, const Podsnoop__V1__Loss *l, uint64_t ts_ns);
/* --stall-*: true when it stalled (when: "before" or "after" writing). */
bool stall(const char *when);
/* The batches already in --out count as seen; an unfinished last one is cut off. */
int load_seen(const char *path);

/* metrics.c: GET /metrics (the agent's registry renders it) */
int collector_metrics_init(void);

/* http.c: libmicrohttpd's callbacks, and the deadline sweep of the main thread */
enum MHD_Result http_handler(void *cls, struct MHD_Connection *c, const char *url,
			     const char *method, const char *version, const char *data,
			     size_t *data_size, void **con_cls);
void http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
		    enum MHD_RequestTerminationCode toe);
void http_notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			    enum MHD_ConnectionNotificationCode code);
void http_reap(void);

#endif
