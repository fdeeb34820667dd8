/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What clickhouse.c lends its other parts (chretention.c): statements on one
 * server, the servers the schema went to, names as stored.
 */
#ifndef PS_CH_INT_H
#define PS_CH_INT_H

#include <stddef.h>

#include "collector/chrows.h"
#include "collector/clickhouse.h"

/* DDL and other statements without an answer, at server base: 0 or -errno. */
int ch_exec_sql(const char *base, const char *sql, char *err, size_t errsz);
/* sql's answer (TabSeparated) from base into *ans (malloc'd): 0 or -errno. */
int ch_select_sql(const char *base, const char *sql, char **ans, size_t max, char *err,
		  size_t errsz);
/* url without user:password@, for messages */
void ch_without_credentials(const char *url, char *out, size_t outsz);
/* Where table t's rows are stored: <name>, or <name>_local under a cluster. */
void ch_stored_name(const struct ch_table *t, char *out, size_t outsz);
/* Server i of the schema (0: the --clickhouse URL), NULL past the last. */
const char *ch_server(unsigned i);
/* Partitions --retention-days dropped, for /metrics. */
void ch_count_dropped(unsigned n);

/* The first retention pass, then its thread (c: database and retention settings). */
int ch_retention_start(const struct ch_conf *c, char *err, size_t errsz);
/* Safe when it did not start. */
void ch_retention_stop(void);

#endif
