/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The collector's request path, without HTTP: one POSTed body in, a
 * decoded and checked podsnoop.v1.Batch out, or the HTTP status that
 * refuses it. Every byte it allocates for a body (the gunzip output, what
 * protobuf-c unpacks) is bounded per request (struct req_limits) and drawn
 * from a pool shared by all requests (struct mem_pool), so a small hostile
 * body cannot make a large amount of work, and many at once cannot add up
 * past the pool. Thread-safe; tests/fuzz/fuzz_collector_request.c calls it.
 */
#ifndef PS_COLLECTOR_REQUEST_H
#define PS_COLLECTOR_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "podsnoop/v1/batch.pb-c.h"

/* Memory shared by every request; max 0: no bound. */
struct mem_pool {
	size_t used;		/* atomic */
	size_t peak;		/* atomic: the most used at once */
	size_t max;
};

/* 0, or -EAGAIN when n more bytes would pass the pool's bound. */
int pool_take(struct mem_pool *p, size_t n);
void pool_give(struct mem_pool *p, size_t n);

struct req_limits {
	size_t max_raw;		/* bytes after gunzip */
	size_t max_records;	/* Batch.records */
	size_t max_losses;	/* Batch.losses */
	size_t max_decode;	/* bytes protobuf-c may allocate for the batch */
};

/* An agent cannot send more than this many Loss entries (LOSS_KEYS_MAX + other). */
#define REQ_MAX_LOSSES 1024
/* Fields of Batch this collector does not know (a newer agent's) it takes. */
#define REQ_MAX_UNKNOWN 1024

struct view_bufs;

struct req {
	const struct req_limits *lim;
	struct mem_pool *pool;		/* NULL: no shared bound */
	Podsnoop__V1__Batch *batch;	/* when request_decode() answered 200 */
	size_t raw_len;			/* the batch's bytes after gunzip */
	uint64_t skipped;		/* records of kinds this collector does not know */
	size_t held;			/* bytes taken from the pool, given back by request_release() */
	size_t decoded;			/* of which protobuf-c's */
	size_t decode_max;		/* its bound for this batch */
	bool over_limit, pool_full;	/* why an allocation was refused */
	struct view_bufs *vb;
	ProtobufCAllocator alloc;	/* protobuf-c's, counted */
	char msg[256];
};

void request_init(struct req *r, const struct req_limits *lim, struct mem_pool *pool);
/*
 * gunzip (when gzipped), bound, unpack and check one body. Returns the HTTP
 * status: 200 with r->batch set, else 400 (not a batch an agent could
 * send), 413 (more than lim allows), 503 (the pool is full now: retry), with
 * r->msg saying why (and r->batch NULL).
 */
unsigned request_decode(struct req *r, const uint8_t *body, size_t len, bool gzipped);
/*
 * Write the batch's records (after request_decode() answered 200) through
 * the agent's NDJSON writer; records of unknown kinds are skipped.
 */
void request_write_records(struct req *r, FILE *out);
/* Frees the batch and gives back what the request took from the pool. */
void request_release(struct req *r);

#endif
