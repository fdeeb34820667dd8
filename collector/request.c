// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/dedup.h"
#include "collector/request.h"
#include "lib/batch.h"
#include "lib/ndjson.h"
#include "lib/pbconv.h"
#include "lib/records.h"

#define ID_CHARS "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-"
/* Batch fields counted before unpacking (length-delimited) */
#define BATCH_LOSSES 4u
#define BATCH_RECORDS 5u
#define BATCH_LAST 5u
/* what malloc adds to each block, and where our allocator keeps the size */
#define ALLOC_HDR 16u
/*
 * What decoding a batch may take: DECODE_RATIO times its size, and a little.
 * Real batches take about 4 times; the least a record can hold (a cache
 * record of zeros: its Record, Cache and Task structs for some 24 bytes)
 * takes about 20; a bomb of empty records 40.
 */
#define DECODE_RATIO 32u
#define DECODE_SLACK (1u << 20)

struct view_bufs {
	struct exec_view_buf exec;
	struct open_view_buf open;
	struct bio_view_buf bio;
	struct bio_hist_view_buf bio_hist;
	struct fs_view_buf fs;
	struct cache_view_buf cache;
};

int pool_take(struct mem_pool *p, size_t n)
{
	size_t used = __atomic_load_n(&p->used, __ATOMIC_RELAXED), peak;

	do {
		if (p->max && (n > p->max || used > p->max - n))
			return -EAGAIN;
	} while (!__atomic_compare_exchange_n(&p->used, &used, used + n, true, __ATOMIC_RELAXED,
					      __ATOMIC_RELAXED));
	peak = __atomic_load_n(&p->peak, __ATOMIC_RELAXED);
	while (used + n > peak &&
	       !__atomic_compare_exchange_n(&p->peak, &peak, used + n, true, __ATOMIC_RELAXED,
					    __ATOMIC_RELAXED))
		;
	return 0;
}

void pool_give(struct mem_pool *p, size_t n)
{
	__atomic_fetch_sub(&p->used, n, __ATOMIC_RELAXED);
}

static int take(struct req *r, size_t n)
{
	if (r->pool && pool_take(r->pool, n)) {
		r->pool_full = true;
		return -EAGAIN;
	}
	r->held += n;
	return 0;
}

static void give(struct req *r, size_t n)
{
	if (r->pool)
		pool_give(r->pool, n);
	r->held -= n;
}

/* protobuf-c's allocations for one batch: counted, bounded, from the pool */
static void *pb_alloc(void *ctx, size_t size)
{
	struct req *r = ctx;
	size_t n = size + ALLOC_HDR;
	uint8_t *p;

	if (n < size || r->decoded + n > r->decode_max) {
		r->over_limit = true;
		return NULL;
	}
	if (take(r, n))
		return NULL;
	p = malloc(n);
	if (!p) {
		give(r, n);
		return NULL;
	}
	memcpy(p, &n, sizeof(n));
	r->decoded += n;
	return p + ALLOC_HDR;
}

static void pb_free(void *ctx, void *ptr)
{
	struct req *r = ctx;
	uint8_t *p = ptr;
	size_t n;

	if (!p)
		return;
	p -= ALLOC_HDR;
	memcpy(&n, p, sizeof(n));
	r->decoded -= n;
	give(r, n);
	free(p);
}

/* the gunzip buffer, from the pool */
static int gz_grow(void *ctx, size_t have, size_t want)
{
	struct req *r = ctx;

	if (take(r, want - have))
		return -EAGAIN;
	return 0;
}

void request_init(struct req *r, const struct req_limits *lim, struct mem_pool *pool)
{
	memset(r, 0, sizeof(*r));
	r->lim = lim;
	r->pool = pool;
	r->alloc.alloc = pb_alloc;
	r->alloc.free = pb_free;
	r->alloc.allocator_data = r;
}

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (*p == end)
			return -EBADMSG;
		x |= (uint64_t)(**p & 0x7f) << shift;
		if (!(*(*p)++ & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -EBADMSG;
}

/*
 * Count Batch.records, Batch.losses and the fields of Batch this collector
 * does not know, on the wire: protobuf-c would allocate for each of them
 * (and a slab to scan them) before any check.
 */
static int count_fields(const uint8_t *p, size_t len, size_t *records, size_t *losses,
			size_t *unknown)
{
	const uint8_t *end = p + len;
	uint64_t tag, n;

	*records = *losses = *unknown = 0;
	while (p < end) {
		if (varint(&p, end, &tag))
			return -EBADMSG;
		if (tag >> 3 < 1 || tag >> 3 > BATCH_LAST)
			(*unknown)++;
		switch (tag & 7) {
		case 0:
			if (varint(&p, end, &n))
				return -EBADMSG;
			break;
		case 1:
			if ((size_t)(end - p) < 8)
				return -EBADMSG;
			p += 8;
			break;
		case 2:
			if (varint(&p, end, &n) || n > (uint64_t)(end - p))
				return -EBADMSG;
			p += n;
			if (tag >> 3 == BATCH_RECORDS)
				(*records)++;
			else if (tag >> 3 == BATCH_LOSSES)
				(*losses)++;
			break;
		case 5:
			if ((size_t)(end - p) < 4)
				return -EBADMSG;
			p += 4;
			break;
		default: /* groups: never in our schema */
			return -EBADMSG;
		}
	}
	return 0;
}

/*
 * One record through the agent's NDJSON writer; out NULL only checks.
 * Returns 0, -EINVAL for a record no agent would send, -ENOTSUP for a kind
 * this collector does not know (a newer agent's: protobuf-c leaves the
 * oneof unset and keeps the field as unknown).
 */
static int record(const Podsnoop__V1__Record *r, struct view_bufs *vb, FILE *out)
{
	int err;

	switch (r->kind_case) {
	case PODSNOOP__V1__RECORD__KIND_EXEC: {
		struct exec_view v;

		if (!(err = pbconv_exec_view(r->exec, &vb->exec, &v)) && out)
			ndjson_sink.exec(out, &v);
		return err;
	}
	case PODSNOOP__V1__RECORD__KIND_OPEN: {
		struct open_view v;

		if (!(err = pbconv_open_view(r->open, &vb->open, &v)) && out)
			ndjson_sink.open(out, &v);
		return err;
	}
	case PODSNOOP__V1__RECORD__KIND_BIO: {
		struct bio_view v;

		if (!(err = pbconv_bio_view(r->bio, &vb->bio, &v)) && out)
			ndjson_sink.bio(out, &v);
		return err;
	}
	case PODSNOOP__V1__RECORD__KIND_BIO_HIST: {
		struct bio_hist_view v;

		if (!(err = pbconv_bio_hist_view(r->bio_hist, &vb->bio_hist, &v)) && out)
			ndjson_sink.bio_hist(out, &v);
		return err;
	}
	case PODSNOOP__V1__RECORD__KIND_FS: {
		struct fs_view v;

		if (!(err = pbconv_fs_view(r->fs, &vb->fs, &v)) && out)
			ndjson_sink.fs(out, &v);
		return err;
	}
	case PODSNOOP__V1__RECORD__KIND_CACHE: {
		struct cache_view v;

		if (!(err = pbconv_cache_view(r->cache, &vb->cache, &v)) && out)
			ndjson_sink.cache(out, &v);
		return err;
	}
	case PODSNOOP__V1__RECORD__KIND__NOT_SET:
		return r->base.n_unknown_fields ? -ENOTSUP : -EINVAL;
	default:
		return -ENOTSUP;
	}
}

static unsigned refuse(struct req *r, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static unsigned refuse(struct req *r, unsigned status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
	return status;
}

static unsigned unpack(struct req *r, const uint8_t *raw, size_t len)
{
	size_t n_records, n_losses, n_unknown;

	if (count_fields(raw, len, &n_records, &n_losses, &n_unknown))
		return refuse(r, 400, "body is not a podsnoop.v1.Batch");
	if (n_records > r->lim->max_records)
		return refuse(r, 413, "batch of %zu records, more than --max-records (%zu)",
			      n_records, r->lim->max_records);
	if (n_losses > r->lim->max_losses)
		return refuse(r, 413, "batch of %zu loss counters, more than an agent sends (%zu)",
			      n_losses, r->lim->max_losses);
	if (n_unknown > REQ_MAX_UNKNOWN)
		return refuse(r, 413, "batch with %zu fields this collector does not know, more "
			      "than a newer agent would add (%u)", n_unknown, REQ_MAX_UNKNOWN);
	r->decode_max = len < r->lim->max_decode / DECODE_RATIO ?
			len * DECODE_RATIO + DECODE_SLACK : r->lim->max_decode;
	if (r->decode_max > r->lim->max_decode)
		r->decode_max = r->lim->max_decode;
	r->batch = podsnoop__v1__batch__unpack(&r->alloc, len, raw);
	if (r->batch)
		return 200;
	if (r->pool_full)
		return refuse(r, 503, "collector busy: too much buffered now, retry");
	if (r->over_limit)
		return refuse(r, 413, "batch of %zu bytes takes more than %zu to decode (at most %u "
			      "times its size, and --max-decode-bytes)", len, r->decode_max,
			      DECODE_RATIO);
	return refuse(r, 400, "body is not a podsnoop.v1.Batch");
}

static unsigned check(struct req *r)
{
	const Podsnoop__V1__Batch *b = r->batch;
	const char *id = b->agent ? b->agent->agent_id : "";
	size_t id_len = strlen(id);

	if (!id_len || id_len > DEDUP_ID_MAX || strspn(id, ID_CHARS) != id_len)
		return refuse(r, 400, "batch without a valid agent.agent_id (1..64 of [0-9A-Za-z_-])");
	if (!b->seq)
		return refuse(r, 400, "batch without seq");
	for (size_t i = 0; i < b->n_records; i++) {
		int err = record(b->records[i], r->vb, NULL);

		if (err == -ENOTSUP)
			r->skipped++;
		else if (err)
			return refuse(r, 400, "record %zu of batch %" PRIu64 " is malformed", i, b->seq);
	}
	return 200;
}

unsigned request_decode(struct req *r, const uint8_t *body, size_t len, bool gzipped)
{
	uint8_t *raw = NULL;
	size_t raw_len = len, raw_held = 0;
	unsigned status;
	int err = 0;

	if (!body) /* (no body at all) */
		body = (const uint8_t *)"";
	if (!gzipped && len > r->lim->max_raw)
		return refuse(r, 413, "batch larger than --max-raw-bytes (%zu)", r->lim->max_raw);
	if (gzipped) {
		size_t before = r->held;

		err = pb_gunzip_grow(body, len, r->lim->max_raw, gz_grow, r, &raw, &raw_len);
		raw_held = r->held - before;
	}
	if (err) {
		give(r, raw_held);
		if (err == -EAGAIN)
			return refuse(r, 503, "collector busy: too much buffered now, retry");
		if (err == -E2BIG)
			return refuse(r, 413, "batch larger than --max-raw-bytes (%zu) when "
				      "decompressed", r->lim->max_raw);
		if (err == -ENOMEM)
			return refuse(r, 503, "out of memory");
		return refuse(r, 400, "body is not a gzipped podsnoop.v1.Batch");
	}
	r->raw_len = raw_len;
	status = unpack(r, raw ? raw : body, raw_len);
	free(raw);
	give(r, raw_held);
	if (status != 200)
		return status;
	r->vb = malloc(sizeof(*r->vb)); /* large: not on a thread's stack */
	status = r->vb ? check(r) : refuse(r, 503, "out of memory");
	if (status != 200) {
		podsnoop__v1__batch__free_unpacked(r->batch, &r->alloc);
		r->batch = NULL;
	}
	return status;
}

void request_write_records(struct req *r, FILE *out)
{
	for (size_t i = 0; i < r->batch->n_records; i++)
		record(r->batch->records[i], r->vb, out);
}

void request_release(struct req *r)
{
	if (r->batch)
		podsnoop__v1__batch__free_unpacked(r->batch, &r->alloc);
	r->batch = NULL;
	free(r->vb);
	r->vb = NULL;
}
