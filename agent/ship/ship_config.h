/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Settings of the shipper (--collector and friends). Kept apart from
 * config.c: config.c lists SHIP_LONG_OPTIONS in its option table and hands
 * their values to ship_config_opt().
 */
#ifndef PS_SHIP_CONFIG_H
#define PS_SHIP_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "agent/ship/otlp_config.h"

/* where batches go on a --collector URL given without a path */
#define SHIP_DEFAULT_PATH "/v1/batches"

/* Defaults of the shipping flags (--help prints them from here) */
#define SHIP_TIMEOUT_MS_DEF 10000
#define SHIP_BATCH_RECORDS_DEF 5000
#define SHIP_BATCH_BYTES_DEF (512u << 10)
#define SHIP_BATCH_BYTES_MIN (64u << 10)
#define SHIP_BATCH_MS_DEF 1000
#define SHIP_QUEUE_MAX_BYTES_DEF (8ull << 20)
#define SHIP_SPOOL_MAX_BYTES_DEF (256ull << 20)
#define SHIP_RETRY_MIN_MS_DEF 250
#define SHIP_RETRY_MAX_MS_DEF 30000
#define SHIP_FLUSH_TIMEOUT_MS_DEF 5000
#define SHIP_GZIP_LEVEL_DEF 1

struct ship_config {
	const char *url;		/* --collector; NULL: no shipping */
	const char *token_file;
	const char *ca_file;
	const char *cert_file;
	const char *key_file;
	const char *node_name;		/* NULL: $NODE_NAME, else the hostname */
	const char *spool_dir;		/* NULL: no spool */
	uint64_t spool_max_bytes;
	uint64_t queue_max_bytes;
	uint32_t batch_records;
	uint32_t batch_bytes;
	uint32_t batch_ms;
	uint32_t timeout_ms;		/* one request, connect included */
	uint32_t retry_min_ms;
	uint32_t retry_max_ms;
	uint32_t flush_timeout_ms;	/* at SIGTERM */
	uint32_t gzip_level;
	bool given;			/* some shipping flag was used */
	/* more request headers, "Name: value" (--otlp-header and its variables) */
	const char *const *headers;
	size_t n_headers;
	struct otlp_config otlp;	/* --otlp-endpoint and the OTEL_* variables */
};

enum {
	OPT_SHIP_FIRST = 0x1000,
	OPT_COLLECTOR = OPT_SHIP_FIRST,
	OPT_COLLECTOR_TOKEN,
	OPT_COLLECTOR_CA,
	OPT_COLLECTOR_CERT,
	OPT_COLLECTOR_KEY,
	OPT_COLLECTOR_TIMEOUT,
	OPT_NODE_NAME,
	OPT_BATCH_RECORDS,
	OPT_BATCH_BYTES,
	OPT_BATCH_MS,
	OPT_QUEUE_MAX_BYTES,
	OPT_SPOOL_DIR,
	OPT_SPOOL_MAX_BYTES,
	OPT_RETRY_MIN_MS,
	OPT_RETRY_MAX_MS,
	OPT_FLUSH_TIMEOUT,
	OPT_GZIP_LEVEL,
	OPT_OTLP_ENDPOINT,
	OPT_OTLP_HEADER,
	OPT_OTLP_CA,
	OPT_OTLP_CERT,
	OPT_OTLP_KEY,
	OPT_OTLP_TIMEOUT,
	OPT_SHIP_LAST = OPT_OTLP_TIMEOUT,
};

/* Entries for getopt_long's table (struct option). */
#define SHIP_LONG_OPTIONS \
	{ "collector", required_argument, NULL, OPT_COLLECTOR }, \
	{ "collector-token-file", required_argument, NULL, OPT_COLLECTOR_TOKEN }, \
	{ "collector-ca", required_argument, NULL, OPT_COLLECTOR_CA }, \
	{ "collector-cert", required_argument, NULL, OPT_COLLECTOR_CERT }, \
	{ "collector-key", required_argument, NULL, OPT_COLLECTOR_KEY }, \
	{ "collector-timeout-ms", required_argument, NULL, OPT_COLLECTOR_TIMEOUT }, \
	{ "node-name", required_argument, NULL, OPT_NODE_NAME }, \
	{ "batch-records", required_argument, NULL, OPT_BATCH_RECORDS }, \
	{ "batch-bytes", required_argument, NULL, OPT_BATCH_BYTES }, \
	{ "batch-ms", required_argument, NULL, OPT_BATCH_MS }, \
	{ "queue-max-bytes", required_argument, NULL, OPT_QUEUE_MAX_BYTES }, \
	{ "spool-dir", required_argument, NULL, OPT_SPOOL_DIR }, \
	{ "spool-max-bytes", required_argument, NULL, OPT_SPOOL_MAX_BYTES }, \
	{ "retry-min-ms", required_argument, NULL, OPT_RETRY_MIN_MS }, \
	{ "retry-max-ms", required_argument, NULL, OPT_RETRY_MAX_MS }, \
	{ "flush-timeout-ms", required_argument, NULL, OPT_FLUSH_TIMEOUT }, \
	{ "gzip-level", required_argument, NULL, OPT_GZIP_LEVEL }, \
	{ "otlp-endpoint", required_argument, NULL, OPT_OTLP_ENDPOINT }, \
	{ "otlp-header", required_argument, NULL, OPT_OTLP_HEADER }, \
	{ "otlp-ca", required_argument, NULL, OPT_OTLP_CA }, \
	{ "otlp-cert", required_argument, NULL, OPT_OTLP_CERT }, \
	{ "otlp-key", required_argument, NULL, OPT_OTLP_KEY }, \
	{ "otlp-timeout-ms", required_argument, NULL, OPT_OTLP_TIMEOUT }

typedef int (*ship_err_fn)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

void ship_config_defaults(struct ship_config *sc);
/*
 * One shipping option; err_fn prints a one-line error and returns -EINVAL
 * (config.c's). Returns 0 or -EINVAL.
 */
int ship_config_opt(struct ship_config *sc, int opt, const char *arg,
		    ship_err_fn err_fn);
/* Checks across options, after parsing; reads the OTEL_* variables first. */
int ship_config_check(struct ship_config *sc, ship_err_fn err_fn);

/* otlp_config.c: one --otlp-* option; the variables (after every option) */
int otlp_config_opt(struct otlp_config *oc, int opt, const char *arg, ship_err_fn err_fn);
int otlp_config_env(struct otlp_config *oc, ship_err_fn err_fn);
void otlp_config_usage(FILE *f);
void otlp_config_print(const struct otlp_config *oc, FILE *f);
void ship_config_usage(FILE *f);
/* The settings, one "key: value" per line (--check-config). */
void ship_config_print(const struct ship_config *sc, FILE *f);

#endif
