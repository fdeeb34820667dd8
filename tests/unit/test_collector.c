// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The collector without HTTP: its request path (collector/request.c) on
 * real batches and on bodies made to cost it (the bombs of issue 15), and
 * its de-duplication (collector/dedup.c): bounded, and not to be poisoned.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "unit.h"
#include "exec_fixture.h"
#include "agent/tracers/exec.h"
#include "lib/pbconv.h"
#include "lib/batch.h"
#include "collector/dedup.h"
#include "collector/request.h"

#define MIB (1024u * 1024u)
#define ID "0123456789abcdef0123456789abcdef"

static Podsnoop__V1__Agent agent = {
	PROTOBUF_C_MESSAGE_INIT(&podsnoop__v1__agent__descriptor),
	"node-1", ID, "9.9", "6.18.0", 1700000000000000000ull,
};

/* the collector's defaults */
static const struct req_limits lim = {
	.max_raw = 16 * MIB, .max_records = 100000, .max_losses = REQ_MAX_LOSSES,
	.max_decode = 128 * MIB,
};

static struct exec_event ev;

/* A real batch from the agent's builder: n exec records. */
static struct batch *real_batch(int n, uint64_t seq)
{
	static const char args[] = "true\0x";
	struct batch_builder bb;
	struct pb_exec_buf b;
	struct exec_view v;
	struct batch *out;
	size_t size;

	assert_int_equal(bb_init(&bb, 100000, 16 * MIB, 1, &agent), 0);
	for (int i = 0; i < n; i++) {
		size = exec_fill(&ev, "/bin/true", args, sizeof(args));
		ev.pid = 7 + i;
		ev.method = EXEC_M_SYSCALLS;
		assert_int_equal(exec_decode(&ev, size, 64, &v), 0);
		v.wall_ns = 42;
		assert_int_equal(bb_add(&bb, pbconv_exec(&b, &v)), 0);
	}
	assert_int_equal(bb_close(&bb, seq, 1234, NULL, 0, &out), 0);
	bb_free(&bb);
	return out;
}

static uint8_t *gz(const uint8_t *in, size_t len, size_t *out_len)
{
	z_stream z = { 0 };
	uint8_t *out;
	size_t cap;

	assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY), Z_OK);
	cap = deflateBound(&z, len);
	out = malloc(cap);
	assert_non_null(out);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
	*out_len = z.total_out;
	deflateEnd(&z);
	return out;
}

/* A Batch with our agent and seq, then `tail` repeated n times. */
static uint8_t *raw_batch(uint64_t seq, const uint8_t *tail, size_t tail_len, size_t n,
			  size_t *len)
{
	Podsnoop__V1__Batch b = PODSNOOP__V1__BATCH__INIT;
	size_t hl;
	uint8_t *out;

	b.agent = &agent;
	b.seq = seq;
	hl = podsnoop__v1__batch__get_packed_size(&b);
	out = malloc(hl + tail_len * n);
	assert_non_null(out);
	podsnoop__v1__batch__pack(&b, out);
	for (size_t i = 0; i < n; i++)
		memcpy(out + hl + i * tail_len, tail, tail_len);
	*len = hl + tail_len * n;
	return out;
}

static unsigned decode(const uint8_t *body, size_t len, bool gzipped, struct mem_pool *pool,
		       struct req *r)
{
	request_init(r, &lim, pool);
	return request_decode(r, body, len, gzipped);
}

/* The NDJSON the collector writes for r's records (free it). */
static char *written(struct req *r, size_t *lines)
{
	char *text = NULL;
	size_t len;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	request_write_records(r, f);
	fclose(f);
	*lines = 0;
	for (const char *p = text; *p; p++)
		*lines += *p == '\n';
	return text;
}

static void test_real_batch(void **state)
{
	struct batch *b = real_batch(50, 3);
	struct mem_pool pool = { 0 };
	size_t lines;
	char *text;
	struct req r;

	(void)state;
	assert_int_equal(decode(b->body, b->len, true, &pool, &r), 200);
	assert_int_equal(r.batch->seq, 3);
	assert_int_equal(r.batch->n_records, 50);
	assert_int_equal(r.skipped, 0);
	assert_true(pool.used > 0 && pool.used == r.held && r.held == r.decoded);
	text = written(&r, &lines);
	assert_int_equal(lines, 50);
	assert_non_null(strstr(text, "\"filename\":\"/bin/true\""));
	request_release(&r);
	assert_int_equal(pool.used, 0); /* all given back */
	/* the same body, not gzipped: refused as it is not a Batch */
	assert_int_equal(decode(b->body, b->len, false, &pool, &r), 400);
	request_release(&r);
	free(text);
	batch_free(b);
}

/*
 * Issue 15's bomb: gzip of 2^24 empty records (2a 00), 32 MiB, in a body of
 * some 32 KB. Refused at once from gzip's trailer, and, when the trailer
 * lies, after at most --max-raw-bytes of gunzip; nothing reaches protobuf-c.
 */
static void test_empty_records_bomb(void **state)
{
	static const uint8_t empty[] = { 0x2a, 0x00 };
	struct mem_pool pool = { 0 };
	size_t raw_len, gz_len;
	uint8_t *raw = raw_batch(1, empty, 2, 1u << 24, &raw_len), *body;
	struct req r;

	(void)state;
	body = gz(raw, raw_len, &gz_len);
	assert_true(gz_len < 64 * 1024);
	assert_int_equal(decode(body, gz_len, true, &pool, &r), 413);
	assert_int_equal(pool.peak, 0); /* nothing inflated */
	request_release(&r);
	memset(body + gz_len - 4, 0, 4); /* a trailer that says 0 bytes */
	assert_int_equal(decode(body, gz_len, true, &pool, &r), 413);
	assert_non_null(strstr(r.msg, "decompressed"));
	assert_true(pool.peak <= lim.max_raw);
	assert_int_equal(r.decoded, 0);
	request_release(&r);
	assert_int_equal(pool.used, 0);
	free(body);
	free(raw);
}

/* Fewer records than --max-records allows and more than it: counted before unpacking. */
static void test_record_count(void **state)
{
	static const uint8_t empty[] = { 0x2a, 0x00 };
	struct mem_pool pool = { 0 };
	size_t raw_len;
	uint8_t *raw;
	struct req r;

	(void)state;
	raw = raw_batch(1, empty, 2, lim.max_records + 1, &raw_len);
	assert_int_equal(decode(raw, raw_len, false, &pool, &r), 413);
	assert_non_null(strstr(r.msg, "--max-records"));
	assert_int_equal(pool.peak, 0); /* protobuf-c never ran */
	request_release(&r);
	free(raw);
	/* under the count: unpacked within its bound, then refused (no kind) */
	raw = raw_batch(1, empty, 2, lim.max_records, &raw_len);
	assert_int_equal(decode(raw, raw_len, false, &pool, &r), 413);
	assert_non_null(strstr(r.msg, "to decode"));
	assert_true(pool.peak <= raw_len * 32 + MIB);
	request_release(&r);
	free(raw);
	raw = raw_batch(1, empty, 2, 10, &raw_len);
	assert_int_equal(decode(raw, raw_len, false, &pool, &r), 400);
	assert_non_null(strstr(r.msg, "record 0 of batch 1 is malformed"));
	request_release(&r);
	assert_int_equal(pool.used, 0);
	free(raw);
}

/* Unknown fields: protobuf-c keeps each (24 bytes and a copy): bounded too. */
static void test_unknown_fields_bomb(void **state)
{
	static const uint8_t unknown[] = { 0x78, 0x00 }; /* field 15, varint 0 */
	struct mem_pool pool = { 0 };
	size_t raw_len, gz_len;
	uint8_t *raw = raw_batch(1, unknown, 2, 1u << 20, &raw_len), *body;
	struct req r;

	(void)state;
	body = gz(raw, raw_len, &gz_len);
	assert_int_equal(decode(body, gz_len, true, &pool, &r), 413);
	assert_non_null(strstr(r.msg, "fields this collector does not know"));
	assert_int_equal(r.decoded, 0); /* counted before protobuf-c ran */
	request_release(&r);
	assert_int_equal(pool.used, 0);
	free(body);
	free(raw);
	/* inside records (unknown kinds, 35 times their size): bounded by decoding */
	{
		static const uint8_t rec[] = { 0x2a, 0x02, 0x78, 0x00 }; /* Record { 15: 0 } */

		raw = raw_batch(1, rec, sizeof(rec), lim.max_records, &raw_len);
		assert_int_equal(decode(raw, raw_len, false, &pool, &r), 413);
		assert_non_null(strstr(r.msg, "to decode"));
		assert_true(pool.peak <= raw_len * 32 + MIB);
		request_release(&r);
		free(raw);
	}
	/* a few, as a newer agent's Batch may have: taken */
	raw = raw_batch(1, unknown, 2, 8, &raw_len);
	assert_int_equal(decode(raw, raw_len, false, &pool, &r), 200);
	request_release(&r);
	free(raw);
}

/*
 * A record of a kind this collector does not know (a newer agent's, say
 * field 50 of Record) is skipped and counted; the rest of the batch is taken.
 */
static void test_unknown_record_kind(void **state)
{
	/* Record { 50: "abc" } */
	static const uint8_t rec[] = { 0x2a, 0x06, 0x92, 0x03, 0x03, 'a', 'b', 'c' };
	struct batch *b = real_batch(3, 9);
	struct mem_pool pool = { 0 };
	uint8_t *raw, *mixed;
	size_t raw_len, lines;
	struct req r;

	(void)state;
	assert_int_equal(pb_gunzip(b->body, b->len, MIB, &raw, &raw_len), 0);
	mixed = malloc(raw_len + 2 * sizeof(rec));
	memcpy(mixed, rec, sizeof(rec));
	memcpy(mixed + sizeof(rec), raw, raw_len);
	memcpy(mixed + sizeof(rec) + raw_len, rec, sizeof(rec));
	assert_int_equal(decode(mixed, raw_len + 2 * sizeof(rec), false, &pool, &r), 200);
	assert_int_equal(r.batch->n_records, 5);
	assert_int_equal(r.skipped, 2);
	free(written(&r, &lines));
	assert_int_equal(lines, 3);
	request_release(&r);
	free(mixed);
	free(raw);
	batch_free(b);
}

static void test_pool_full(void **state)
{
	struct batch *b = real_batch(200, 1);
	struct mem_pool pool = { .max = 4096 };
	struct req r;

	(void)state;
	assert_int_equal(decode(b->body, b->len, true, &pool, &r), 503);
	request_release(&r);
	assert_int_equal(pool.used, 0);
	pool.max = 0; /* room again: the same body is taken */
	assert_int_equal(decode(b->body, b->len, true, &pool, &r), 200);
	request_release(&r);
	/* two at once within a pool that holds one */
	{
		struct req r2;
		size_t one;

		assert_int_equal(decode(b->body, b->len, true, &pool, &r), 200);
		one = pool.used;
		request_release(&r);
		pool.peak = 0;
		pool.max = one + one / 2;
		assert_int_equal(decode(b->body, b->len, true, &pool, &r), 200);
		assert_int_equal(decode(b->body, b->len, true, &pool, &r2), 503);
		assert_true(pool.peak <= pool.max);
		request_release(&r2);
		request_release(&r);
	}
	assert_int_equal(pool.used, 0);
	batch_free(b);
}

static void test_bad_bodies(void **state)
{
	static const uint8_t junk[] = "not gzip, not protobuf";
	struct batch *b = real_batch(5, 1);
	struct mem_pool pool = { 0 };
	struct req r;
	uint8_t *raw;
	size_t raw_len;

	(void)state;
	assert_int_equal(decode(junk, sizeof(junk), true, &pool, &r), 400);
	request_release(&r);
	assert_int_equal(decode(junk, sizeof(junk), false, &pool, &r), 400);
	request_release(&r);
	assert_int_equal(decode(b->body, b->len - 9, true, &pool, &r), 400); /* cut short */
	request_release(&r);
	raw = raw_batch(0, NULL, 0, 0, &raw_len); /* seq 0 */
	assert_int_equal(decode(raw, raw_len, false, &pool, &r), 400);
	assert_string_equal(r.msg, "batch without seq");
	request_release(&r);
	free(raw);
	agent.agent_id = "no/slash";
	raw = raw_batch(1, NULL, 0, 0, &raw_len);
	agent.agent_id = ID;
	assert_int_equal(decode(raw, raw_len, false, &pool, &r), 400);
	request_release(&r);
	free(raw);
	assert_int_equal(pool.used, 0);
	batch_free(b);
}

static void test_dedup(void **state)
{
	struct dedup d;

	(void)state;
	dedup_init(&d, 100);
	assert_false(dedup_seen(&d, "a", 1));
	assert_int_equal(dedup_mark(&d, "a", 1), 0);
	assert_true(dedup_seen(&d, "a", 1));
	assert_false(dedup_seen(&d, "b", 1)); /* per agent */
	assert_int_equal(dedup_mark(&d, "a", 3), 0); /* out of order */
	assert_false(dedup_seen(&d, "a", 2));
	assert_true(dedup_seen(&d, "a", 3));
	assert_int_equal(d.newest->n, 2);
	assert_int_equal(dedup_mark(&d, "a", 2), 0); /* the gap fills */
	assert_true(dedup_seen(&d, "a", 2));
	assert_int_equal(d.newest->n, 1);
	assert_int_equal(dedup_mark(&d, "a", 3), 0); /* again: no change */
	assert_int_equal(d.newest->n, 1);
	/* a gap that never fills (a batch refused) costs one range, not a seq each */
	for (uint64_t s = 5; s < 100000; s++)
		assert_int_equal(dedup_mark(&d, "a", s), 0);
	assert_int_equal(d.newest->n, 2);
	assert_false(dedup_seen(&d, "a", 4));
	assert_true(dedup_seen(&d, "a", 99999));
	dedup_free(&d);
}

/*
 * Issue 15: 65,537 spoofed batches with huge seqs for a victim's id made
 * every later real batch a duplicate. Now each marks only its own seq; the
 * victim's own next batches are new, and its state stays DEDUP_RANGES.
 */
static void test_dedup_not_poisoned(void **state)
{
	struct dedup d;
	uint64_t fake = 1ull << 62;

	(void)state;
	dedup_init(&d, 100);
	for (uint64_t s = 1; s <= 10; s++)
		assert_int_equal(dedup_mark(&d, "victim", s), 0);
	for (uint64_t i = 0; i < 65537; i++, fake += 2)
		assert_int_equal(dedup_mark(&d, "victim", fake), 0);
	assert_true(d.newest->n <= DEDUP_RANGES);
	for (uint64_t s = 11; s <= 1000; s++) {
		assert_false(dedup_seen(&d, "victim", s)); /* new: written */
		assert_int_equal(dedup_mark(&d, "victim", s), 0);
		assert_true(dedup_seen(&d, "victim", s)); /* its retry: dropped */
	}
	assert_true(dedup_seen(&d, "victim", 500));
	/* spoofed batches between each of its own: at worst a retry is written twice */
	for (uint64_t s = 1001; s <= 1100; s++) {
		assert_false(dedup_seen(&d, "victim", s));
		assert_int_equal(dedup_mark(&d, "victim", s), 0);
		for (int i = 0; i < 100; i++, fake += 2)
			assert_int_equal(dedup_mark(&d, "victim", fake), 0);
	}
	assert_true(d.newest->n <= DEDUP_RANGES);
	dedup_free(&d);
}

/* Agents past the bound: the least recently seen is forgotten. */
static void test_dedup_bounded(void **state)
{
	char id[32];
	struct dedup d;

	(void)state;
	dedup_init(&d, 1000);
	for (int i = 0; i < 100000; i++) {
		snprintf(id, sizeof(id), "agent%d", i);
		assert_int_equal(dedup_mark(&d, id, 1), 0);
		if (i % 10 == 0) /* one that keeps sending stays */
			assert_int_equal(dedup_mark(&d, "steady", (uint64_t)i / 10 + 1), 0);
	}
	assert_int_equal(d.n_agents, 1000);
	assert_int_equal(d.forgotten_agents, 100000 + 1 - 1000);
	assert_true(dedup_seen(&d, "steady", 1)); /* (seq 1..10000) */
	assert_true(dedup_seen(&d, "agent99999", 1));
	assert_false(dedup_seen(&d, "agent0", 1)); /* forgotten: a retry is written again */
	dedup_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_batch),
		cmocka_unit_test(test_empty_records_bomb),
		cmocka_unit_test(test_record_count),
		cmocka_unit_test(test_unknown_fields_bomb),
		cmocka_unit_test(test_unknown_record_kind),
		cmocka_unit_test(test_pool_full),
		cmocka_unit_test(test_bad_bodies),
		cmocka_unit_test(test_dedup),
		cmocka_unit_test(test_dedup_not_poisoned),
		cmocka_unit_test(test_dedup_bounded),
	};

	return cmocka_run_group_tests_name("collector", tests, NULL, NULL);
}
