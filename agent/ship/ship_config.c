// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "agent/log.h"
#include "agent/ship/ship_config.h"

#define KIB 1024ull
#define MIB (1024ull * 1024ull)
#define GIB (1024ull * 1024ull * 1024ull)

void ship_config_defaults(struct ship_config *sc)
{
	memset(sc, 0, sizeof(*sc));
	sc->spool_max_bytes = SHIP_SPOOL_MAX_BYTES_DEF;
	sc->queue_max_bytes = SHIP_QUEUE_MAX_BYTES_DEF;
	sc->batch_records = SHIP_BATCH_RECORDS_DEF;
	sc->batch_bytes = SHIP_BATCH_BYTES_DEF;
	sc->batch_ms = SHIP_BATCH_MS_DEF;
	sc->timeout_ms = SHIP_TIMEOUT_MS_DEF;
	sc->retry_min_ms = SHIP_RETRY_MIN_MS_DEF;
	sc->retry_max_ms = SHIP_RETRY_MAX_MS_DEF;
	sc->flush_timeout_ms = SHIP_FLUSH_TIMEOUT_MS_DEF;
	sc->gzip_level = SHIP_GZIP_LEVEL_DEF;
}

/* A byte count as --help writes it: 512K, 8M (exact multiples only). */
static const char *size_str(uint64_t b, char buf[24])
{
	static const char sfx[] = "GMK";

	for (int i = 0; i < 3; i++) {
		uint64_t unit = 1ull << (10 * (3 - i));

		if (b >= unit && b % unit == 0) {
			snprintf(buf, 24, "%" PRIu64 "%c", b / unit, sfx[i]);
			return buf;
		}
	}
	snprintf(buf, 24, "%" PRIu64, b);
	return buf;
}

void ship_config_usage(FILE *f)
{
	char bb[24], bmin[24], q[24], sp[24];

	fprintf(f,
"Shipping to a collector (protobuf batches over HTTP; docs/shipping.md):\n"
"      --collector URL       POST batches to URL (http:// or https://; without a\n"
"                            path: " SHIP_DEFAULT_PATH "); local output is then off\n"
"                            unless --output is given too\n"
"      --collector-token-file FILE\n"
"                            send \"Authorization: Bearer <contents>\" (re-read\n"
"                            when the file changes)\n"
"      --collector-ca FILE   CA certificates (PEM) to verify the collector with\n"
"      --collector-cert FILE client certificate (PEM); its key in the same file\n"
"                            or in --collector-key FILE\n"
"      --collector-timeout-ms N\n"
"                            give up on one request after N ms (default %u)\n"
"      --node-name NAME      node name in batches (default: $NODE_NAME, else\n"
"                            the hostname)\n"
"      --batch-records N     close a batch at N records (default %u)\n"
"      --batch-bytes SIZE    ... or at SIZE encoded bytes (default %s, min %s)\n"
"      --batch-ms N          ... or N ms after its first record (default %u)\n"
"      --queue-max-bytes SIZE\n"
"                            memory for closed batches waiting to be sent\n"
"                            (gzipped; default %s)\n"
"      --spool-dir DIR       keep batches the collector cannot take yet in DIR\n"
"                            (survives restarts; sent first, in order)\n"
"      --spool-max-bytes SIZE\n"
"                            at most SIZE of batches in DIR (default %s)\n"
"      --retry-min-ms N, --retry-max-ms N\n"
"                            backoff between retries: doubling from N up to\n"
"                            N, with jitter (default %u, %u); a\n"
"                            Retry-After header overrides it\n"
"      --flush-timeout-ms N  at SIGINT/SIGTERM, try to send for at most N ms,\n"
"                            then spool the rest (default %u)\n"
"      --gzip-level N        zlib level 1..9 (default %u; 1: fastest)\n"
"                            SIZE takes a K, M or G suffix (powers of 1024)\n"
"\n",
		SHIP_TIMEOUT_MS_DEF, SHIP_BATCH_RECORDS_DEF, size_str(SHIP_BATCH_BYTES_DEF, bb),
		size_str(SHIP_BATCH_BYTES_MIN, bmin), SHIP_BATCH_MS_DEF,
		size_str(SHIP_QUEUE_MAX_BYTES_DEF, q), size_str(SHIP_SPOOL_MAX_BYTES_DEF, sp),
		SHIP_RETRY_MIN_MS_DEF, SHIP_RETRY_MAX_MS_DEF, SHIP_FLUSH_TIMEOUT_MS_DEF,
		SHIP_GZIP_LEVEL_DEF);
}

static int parse_num(const char *opt, const char *s, uint64_t min, uint64_t max, bool size,
		     uint64_t *out, ship_err_fn err_fn)
{
	unsigned long long v;
	uint64_t mult = 1;
	char *end;

	errno = 0;
	if (!s || !*s || *s == '-' || *s == '+')
		return err_fn("%s: '%s' is not a number", opt, s ? s : "");
	v = strtoull(s, &end, 10);
	if (size && *end && !end[1]) {
		switch (*end) {
		case 'k': case 'K': mult = KIB; end++; break;
		case 'm': case 'M': mult = MIB; end++; break;
		case 'g': case 'G': mult = GIB; end++; break;
		}
	}
	if (errno || *end || end == s)
		return err_fn("%s: '%s' is not a %s", opt, s, size ? "size" : "number");
	if (v > UINT64_MAX / mult)
		return err_fn("%s: '%s' is too large", opt, s);
	v *= mult;
	if (v < min || v > max)
		return err_fn("%s: %llu is out of range %" PRIu64 "..%" PRIu64, opt, v, min, max);
	*out = v;
	return 0;
}

static int parse_path(const char *opt, const char *arg, const char **out, ship_err_fn err_fn)
{
	if (!*arg)
		return err_fn("%s: empty path", opt);
	*out = arg;
	return 0;
}

#define U32(f) offsetof(struct ship_config, f), sizeof(uint32_t)
#define U64(f) offsetof(struct ship_config, f), sizeof(uint64_t)

/* The numeric options: range, whether a K/M/G suffix is allowed, where they go. */
static const struct num_opt {
	int opt;
	const char *name;
	uint64_t min, max;
	bool size;
	size_t off, width;
} num_opts[] = {
	{ OPT_COLLECTOR_TIMEOUT, "--collector-timeout-ms", 100, 3600000, false, U32(timeout_ms) },
	{ OPT_BATCH_RECORDS, "--batch-records", 1, 1000000, false, U32(batch_records) },
	/* an exec record with the longest path and arguments is about 21 KiB */
	{ OPT_BATCH_BYTES, "--batch-bytes", SHIP_BATCH_BYTES_MIN, 256 * MIB, true, U32(batch_bytes) },
	{ OPT_BATCH_MS, "--batch-ms", 1, 600000, false, U32(batch_ms) },
	{ OPT_QUEUE_MAX_BYTES, "--queue-max-bytes", 1, 16 * GIB, true, U64(queue_max_bytes) },
	{ OPT_SPOOL_MAX_BYTES, "--spool-max-bytes", 1, UINT64_MAX, true, U64(spool_max_bytes) },
	{ OPT_RETRY_MIN_MS, "--retry-min-ms", 1, 3600000, false, U32(retry_min_ms) },
	{ OPT_RETRY_MAX_MS, "--retry-max-ms", 1, 3600000, false, U32(retry_max_ms) },
	{ OPT_FLUSH_TIMEOUT, "--flush-timeout-ms", 0, 3600000, false, U32(flush_timeout_ms) },
	{ OPT_GZIP_LEVEL, "--gzip-level", 1, 9, false, U32(gzip_level) },
};

int ship_config_opt(struct ship_config *sc, int opt, const char *arg, ship_err_fn err_fn)
{
	uint64_t v = 0;
	int err;

	if (opt >= OPT_OTLP_ENDPOINT && opt <= OPT_OTLP_TIMEOUT)
		return otlp_config_opt(&sc->otlp, opt, arg, err_fn);
	sc->given = true;
	for (size_t i = 0; i < sizeof(num_opts) / sizeof(num_opts[0]); i++) {
		const struct num_opt *n = &num_opts[i];

		if (n->opt != opt)
			continue;
		err = parse_num(n->name, arg, n->min, n->max, n->size, &v, err_fn);
		if (err)
			return err;
		if (n->width == sizeof(uint32_t)) {
			uint32_t v32 = (uint32_t)v;

			memcpy((char *)sc + n->off, &v32, sizeof(v32));
		} else {
			memcpy((char *)sc + n->off, &v, sizeof(v));
		}
		return 0;
	}
	switch (opt) {
	case OPT_COLLECTOR: {
		static char with_path[2048];
		const char *host = strstr(arg, "://");

		if ((strncmp(arg, "http://", 7) && strncmp(arg, "https://", 8)) || !host[3] ||
		    host[3] == '/')
			return err_fn("--collector: '%s' is not an http:// or https:// URL", arg);
		/* a bare http(s)://host[:port] means the reference collector's path */
		if (!strpbrk(host + 3, "/?#")) {
			if ((size_t)snprintf(with_path, sizeof(with_path), "%s%s", arg,
					     SHIP_DEFAULT_PATH) >= sizeof(with_path))
				return err_fn("--collector: URL too long");
			arg = with_path;
		}
		sc->url = arg;
		return 0;
	}
	case OPT_COLLECTOR_TOKEN:
		return parse_path("--collector-token-file", arg, &sc->token_file, err_fn);
	case OPT_COLLECTOR_CA:
		return parse_path("--collector-ca", arg, &sc->ca_file, err_fn);
	case OPT_COLLECTOR_CERT:
		return parse_path("--collector-cert", arg, &sc->cert_file, err_fn);
	case OPT_COLLECTOR_KEY:
		return parse_path("--collector-key", arg, &sc->key_file, err_fn);
	case OPT_SPOOL_DIR:
		return parse_path("--spool-dir", arg, &sc->spool_dir, err_fn);
	case OPT_NODE_NAME:
		if (!*arg || strlen(arg) > 253)
			return err_fn("--node-name: '%s' is not a node name", arg);
		sc->node_name = arg;
		return 0;
	}
	return err_fn("internal: unknown shipping option %d", opt);
}

int ship_config_check(struct ship_config *sc, ship_err_fn err_fn)
{
	int err = otlp_config_env(&sc->otlp, err_fn);

	if (err)
		return err;
	if (sc->given && !sc->url && !sc->otlp.logs_url && !sc->otlp.metrics_url)
		return err_fn("shipping options need --collector URL or --otlp-endpoint URL");
	if (sc->retry_min_ms > sc->retry_max_ms)
		return err_fn("--retry-min-ms %u is above --retry-max-ms %u", sc->retry_min_ms,
			      sc->retry_max_ms);
	if (sc->key_file && !sc->cert_file)
		return err_fn("--collector-key needs --collector-cert");
	if (sc->url && !strncmp(sc->url, "http://", 7) &&
	    (sc->ca_file || sc->cert_file))
		return err_fn("--collector-ca/--collector-cert need an https:// collector");
	return 0;
}

void ship_config_print(const struct ship_config *sc, FILE *f)
{
	char url[2048];

	fprintf(f, "collector: %s\n", sc->url ? log_url(sc->url, url, sizeof(url)) : "off");
	otlp_config_print(&sc->otlp, f);
	if (!sc->url && !sc->otlp.logs_url && !sc->otlp.metrics_url)
		return;
	if (sc->url)
		fprintf(f, "collector-token-file: %s\ncollector-ca: %s\ncollector-cert: %s\n"
		"collector-key: %s\ncollector-timeout-ms: %u\nnode-name: %s\n",
		sc->token_file ? sc->token_file : "none", sc->ca_file ? sc->ca_file : "system",
		sc->cert_file ? sc->cert_file : "none", sc->key_file ? sc->key_file : "none",
		sc->timeout_ms, sc->node_name ? sc->node_name : "auto");
	fprintf(f, "batch-records: %u\nbatch-bytes: %u\nbatch-ms: %u\nqueue-max-bytes: %llu\n",
		sc->batch_records, sc->batch_bytes, sc->batch_ms,
		(unsigned long long)sc->queue_max_bytes);
	fprintf(f, "spool-dir: %s\nspool-max-bytes: %llu\nretry-min-ms: %u\nretry-max-ms: %u\n"
		"flush-timeout-ms: %u\ngzip-level: %u\n", sc->spool_dir ? sc->spool_dir : "none",
		(unsigned long long)sc->spool_max_bytes, sc->retry_min_ms, sc->retry_max_ms,
		sc->flush_timeout_ms, sc->gzip_level);
}
