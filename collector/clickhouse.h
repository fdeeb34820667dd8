/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * --clickhouse: every batch into ClickHouse over its HTTP interface, one
 * gzipped JSONEachRow INSERT per table per batch (collector/chrows.h has
 * the tables). The schema is created at start, idempotently, and recorded
 * in schema_version. A batch is answered 200 only after ClickHouse took
 * all its rows; tables are ReplacingMergeTree keyed on (agent_id, seq,
 * idx), so a batch sent again (a retry, through any collector) replaces its
 * rows: read with FINAL. With a cluster, those tables are <type>_local on
 * every server of it, and <type> a Distributed table over them sharded by
 * (agent_id, seq): a batch's copies all land in one shard, where they merge.
 * Returns 0/-errno; errors are described in the
 * caller's buffer, nothing is logged here.
 */
#ifndef PS_COLLECTOR_CLICKHOUSE_H
#define PS_COLLECTOR_CLICKHOUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "collector/request.h"

/*
 * 1: the tables; 2: batches.raw_bytes. A version only adds columns: at
 * start, a column of ours that a table lacks is added (ALTER TABLE ADD
 * COLUMN), so a database of any older version is brought up to date and
 * its rows stay.
 */
#define CH_SCHEMA_VERSION 4

struct ch_conf {
	const char *url;		/* http(s)://host:port */
	const char *database;
	const char *user;
	const char *password;
	const char *ca;			/* CA file for https */
	const char *cluster;		/* remote_servers cluster: Distributed tables; NULL: none */
	long timeout_ms;		/* a request to ClickHouse */
	bool no_schema;			/* reading only (query.c): create nothing */
	unsigned retention_days;	/* 0: keep every partition */
	unsigned retention_check_s;	/* between two retention passes */
};

#define CH_INSERT_SLOTS 24	/* log2 µs; the last, 2^23 µs (8 s) and up, open */

struct ch_stats {
	uint64_t rows[8];		/* per table (enum in chrows.h) */
	uint64_t inserts, inserts_failed;
	uint64_t insert_ns;		/* time spent in inserts that succeeded */
	uint64_t insert_us_slots[CH_INSERT_SLOTS];	/* their times, log2 µs */
	uint64_t insert_us_sum;
	uint64_t partitions_dropped;	/* by --retention-days */
};

/*
 * curl_global_init, the schema, with retention_days the first retention
 * pass (and a thread for the next ones, which logs what it drops and what
 * fails). err: one line saying what failed.
 */
int ch_init(const struct ch_conf *c, char *err, size_t errsz);
void ch_fini(void);
/*
 * The batch of r (decoded and checked: request_decode() answered 200),
 * whose body was body_len bytes, into ClickHouse. 0 once every table took
 * its rows; -EAGAIN when the pool has no room now; else -errno with err
 * saying what ClickHouse answered (the caller answers 503: send it again).
 */
int ch_write_batch(struct req *r, size_t body_len, char *err, size_t errsz);
void ch_get_stats(struct ch_stats *s);
/* Runs sql, answer into *out (malloc'd, NUL-terminated). HTTP status or -errno. */
long ch_query(const char *sql, char **out, char *err, size_t errsz);
/* The servers the schema and retention go to (1 without a cluster). */
unsigned ch_servers(void);
/* The URL without user:password@, for messages. */
const char *ch_url_shown(void);

#endif
