/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One HTTP client (libcurl easy handle, so the connection is reused) that
 * POSTs batch bodies and says what to do with the answer. Shipper thread
 * only; no logging here.
 */
#ifndef PS_SHIP_HTTP_H
#define PS_SHIP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <curl/curl.h>

#include "agent/ship/ship_config.h"

enum http_verdict {
	HTTP_SENT,	/* 2xx: the collector has it */
	HTTP_RETRY,	/* connection error, timeout, 5xx, 408, 429 (OTLP: 429, 502-504) */
	HTTP_REJECT,	/* any other answer: the collector will never take it */
};

struct http_result {
	enum http_verdict verdict;
	long status;			/* 0 when there was no HTTP answer */
	bool aborted;			/* the progress callback stopped it */
	uint64_t retry_after_ms;	/* from Retry-After; 0 when absent */
	char msg[320];			/* curl's error, or the start of the answer's body */
	const char *body;		/* the answer's body (its first sizeof(resp) bytes) */
	size_t body_len;		/* (valid until the next http_post) */
};

struct http_client {
	CURL *curl;
	const struct ship_config *cfg;
	struct curl_slist *hdrs;
	struct timespec token_mtime;	/* of the token file when last read */
	off_t token_size;
	enum http_verdict (*classify)(bool transport_ok, long status); /* NULL: http_classify */
	char resp[4096];		/* start of the answer's body */
	size_t resp_len;
	char errbuf[CURL_ERROR_SIZE];
};

/* curl_global_init must have run. -errno. */
int http_init(struct http_client *h, const struct ship_config *cfg);
void http_free(struct http_client *h);
/*
 * POST body. timeout_ms bounds the whole request; progress (may be NULL) is
 * called often during it and stops it by returning nonzero.
 */
void http_post(struct http_client *h, const void *body, size_t len, uint32_t timeout_ms,
	       int (*progress)(void *ctx), void *ctx, struct http_result *r);

/* What to do after a request: transport_ok is false when no answer came. */
enum http_verdict http_classify(bool transport_ok, long status);
/* The same as OTLP/HTTP says: only 429, 502, 503, 504 and no answer are retried. */
enum http_verdict http_classify_otlp(bool transport_ok, long status);
/*
 * Delay before retry number attempt (0-based): min_ms doubling up to
 * max_ms, then a random point in its upper half ("equal jitter"), from rnd.
 */
uint64_t backoff_ms(unsigned attempt, uint32_t min_ms, uint32_t max_ms, uint32_t rnd);

#endif
