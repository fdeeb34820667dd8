// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * open and bio records: decoding never trusts the kernel's lengths, the
 * operation letters and histogram bounds, and their command-line flags.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "unit.h"
#include "agent/tracers/bio.h"
#include "lib/jsonw.h"
#include "agent/config.h"
#include "agent/tracers/open.h"

#define ARGV(...) ((char *[]){ "podsnoop", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "podsnoop", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(cfg, ...) config_parse(cfg, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

static struct open_event *oe;

static int setup(void **state)
{
	(void)state;
	oe = calloc(1, sizeof(*oe));
	return oe ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(oe);
	return 0;
}

static size_t fill_open(const char *path)
{
	size_t n = strlen(path) + 1;

	memset(oe, 0, sizeof(*oe));
	memcpy(oe->path, path, n);
	oe->path_len = (__u32)n;
	oe->ret = 3;
	return OPEN_EVENT_HDR_SIZE + n;
}

static void test_open_normal(void **state)
{
	size_t size = fill_open("/etc/passwd");
	struct open_view v;

	(void)state;
	assert_int_equal(open_decode(oe, size, &v), 0);
	assert_int_equal(v.path_len, 11);
	assert_memory_equal(v.path, "/etc/passwd", 11);
	assert_false(v.truncated);
	assert_ptr_equal(v.e, oe);
}

static void test_open_lengths_checked(void **state)
{
	size_t size = fill_open("/tmp/x");
	struct open_view v;

	(void)state;
	/* shorter than the header, shorter than the path it claims, a path over PATH_MAX */
	assert_int_equal(open_decode(oe, OPEN_EVENT_HDR_SIZE - 1, &v), -EINVAL);
	assert_int_equal(open_decode(oe, size - 1, &v), -EINVAL);
	oe->path_len = OPEN_PATH_MAX + 1;
	assert_int_equal(open_decode(oe, sizeof(*oe), &v), -EINVAL);
}

static void test_open_no_nul_stays_inside(void **state)
{
	struct open_view v;

	(void)state;
	/* a path without its NUL is read only as far as path_len says */
	memset(oe, 0, sizeof(*oe));
	memset(oe->path, 'a', 64);
	oe->path_len = 10;
	assert_int_equal(open_decode(oe, OPEN_EVENT_HDR_SIZE + 10, &v), 0);
	assert_int_equal(v.path_len, 10);
}

static void test_open_full_length_and_truncated(void **state)
{
	struct open_view v;

	(void)state;
	memset(oe, 0, sizeof(*oe));
	memset(oe->path, 'p', OPEN_PATH_MAX - 1);
	oe->path_len = OPEN_PATH_MAX;
	assert_int_equal(open_decode(oe, OPEN_EVENT_HDR_SIZE + OPEN_PATH_MAX, &v), 0);
	assert_int_equal(v.path_len, OPEN_PATH_MAX - 1);
	assert_false(v.truncated);
	oe->rflags = OPEN_F_TRUNCATED;
	assert_int_equal(open_decode(oe, OPEN_EVENT_HDR_SIZE + OPEN_PATH_MAX, &v), 0);
	assert_true(v.truncated);
}

static void test_bio_decode(void **state)
{
	struct bio_event e;
	struct bio_view v;

	(void)state;
	memset(&e, 0, sizeof(e));
	e.op = BIO_OP_WRITE;
	e.op_flags = BIO_OPF_SYNC;
	memset(e.disk, 'd', sizeof(e.disk)); /* no NUL: bounded by the field */
	assert_int_equal(bio_decode(&e, sizeof(e) - 1, &v), -EINVAL);
	assert_int_equal(bio_decode(&e, sizeof(e), &v), 0);
	assert_int_equal(v.disk_len, sizeof(e.disk));
	assert_string_equal(v.op, "WS");
	strcpy(e.disk, "vda");
	assert_int_equal(bio_decode(&e, sizeof(e), &v), 0);
	assert_int_equal(v.disk_len, 3);
}

static void test_bio_op_strings(void **state)
{
	char s[8];

	(void)state;
	bio_op_string(BIO_OP_READ, 0, s);
	assert_string_equal(s, "R");
	bio_op_string(BIO_OP_READ, BIO_OPF_RAHEAD | BIO_OPF_META, s);
	assert_string_equal(s, "RAM");
	bio_op_string(BIO_OP_WRITE, BIO_OPF_PREFLUSH | BIO_OPF_FUA | BIO_OPF_SYNC, s);
	assert_string_equal(s, "FWFS");
	bio_op_string(BIO_OP_FLUSH, BIO_OPF_PREFLUSH, s);
	assert_string_equal(s, "FF");
	bio_op_string(BIO_OP_DISCARD, BIO_OPF_SECURE, s);
	assert_string_equal(s, "DE");
	/* every flag at once still fits */
	bio_op_string(BIO_OP_DISCARD, 0xff, s);
	assert_string_equal(s, "FDEFASM");
	bio_op_string(BIO_OP_OTHER, 0, s);
	assert_string_equal(s, "N");
	assert_string_equal(bio_op_class(BIO_OP_MAX + 3), "N");
}

static void test_hist_bounds(void **state)
{
	uint64_t lo, hi;

	(void)state;
	/* bcc's log2 buckets: 0 -> 1, 2 -> 3, 4 -> 7, ... */
	bio_hist_bounds(0, &lo, &hi);
	assert_true(lo == 0 && hi == 1);
	bio_hist_bounds(1, &lo, &hi);
	assert_true(lo == 2 && hi == 3);
	bio_hist_bounds(10, &lo, &hi);
	assert_true(lo == 1024 && hi == 2047);
	for (unsigned int i = 1; i < BIO_HIST_SLOTS; i++) {
		uint64_t plo, phi;

		bio_hist_bounds(i - 1, &plo, &phi);
		bio_hist_bounds(i, &lo, &hi);
		assert_true(lo == phi + 1 && hi == 2 * lo - 1);
	}
}

static void test_flags(void **state)
{
	struct ps_config c;
	char *argv[] = { "podsnoop", NULL };

	(void)state;
	assert_int_equal(config_parse(&c, 1, argv), 0);
	assert_false(c.open_failed);
	assert_int_equal(c.interval_s, BIO_INTERVAL_DEF);
	assert_int_equal(c.bio_min_us, BIO_MIN_US_DEF);
	assert_int_equal(c.bio_hist_entries, BIO_HIST_ENTRIES_DEF);
	assert_int_equal(PARSE(&c, "-t", "open,bio", "--open-failed", "--interval", "3",
			       "--bio-min-us", "0", "--bio-hist-entries", "7", "--hook",
			       "bio=getrq_raw", "--hook", "open=kprobe"),
			 0);
	assert_true(c.open_failed);
	assert_int_equal(c.interval_s, 3);
	assert_int_equal(c.bio_min_us, 0);
	assert_int_equal(c.bio_hist_entries, 7);
	assert_int_equal(c.tracers, (1u << tracer_index("open")) | (1u << tracer_index("bio")));
	assert_string_equal(c.hooks[tracer_index("bio")], "getrq_raw");
	assert_string_equal(c.hooks[tracer_index("open")], "kprobe");

	assert_int_equal(PARSE(&c, "--interval", "0"), -EINVAL);
	assert_int_equal(PARSE(&c, "--interval", "1.5"), -EINVAL);
	assert_int_equal(PARSE(&c, "--interval", "3601"), -EINVAL);
	assert_int_equal(PARSE(&c, "--bio-min-us", "-1"), -EINVAL);
	assert_int_equal(PARSE(&c, "--bio-min-us", "4294967296"), -EINVAL);
	assert_int_equal(PARSE(&c, "--bio-hist-entries", "0"), -EINVAL);
	assert_int_equal(PARSE(&c, "--bio-hist-entries", "65537"), -EINVAL);
	assert_int_equal(PARSE(&c, "--open-failed=yes"), -EINVAL);
	assert_int_equal(PARSE(&c, "--hook", "bio=syscalls"), -EINVAL);
}

/* A record longer than the writer's staging buffer, escapes across its edges, stays whole. */
static void test_json_record_longer_than_buffer(void **state)
{
	size_t n = 3 * JW_BUF_SIZE + 17, len = 0;
	char *s = malloc(n), *out = NULL;
	FILE *f = open_memstream(&out, &len);
	cJSON *j;
	struct jw w;

	(void)state;
	assert_non_null(s);
	assert_non_null(f);
	for (size_t i = 0; i < n; i++)
		s[i] = i % 7 == 0 ? '"' : i % 11 == 0 ? '\n' : (char)('a' + i % 26);
	jw_begin(&w, f);
	jw_u64(&w, "n", n);
	jw_str(&w, "s", s, n);
	jw_null(&w, "z");
	jw_i64(&w, "neg", INT64_MIN);
	jw_end(&w);
	fclose(f);
	assert_int_equal(out[len - 1], '\n');
	j = cJSON_Parse(out);
	assert_non_null(j);
	assert_int_equal(strlen(cJSON_GetObjectItem(j, "s")->valuestring), n);
	assert_memory_equal(cJSON_GetObjectItem(j, "s")->valuestring, s, n);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "z")));
	assert_non_null(strstr(out, "\"neg\":-9223372036854775808}"));
	cJSON_Delete(j);
	free(out);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_normal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_lengths_checked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_no_nul_stays_inside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_full_length_and_truncated, setup, teardown),
		cmocka_unit_test(test_bio_decode),
		cmocka_unit_test(test_bio_op_strings),
		cmocka_unit_test(test_hist_bounds),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_json_record_longer_than_buffer),
	};

	if (!freopen("/dev/null", "w", stderr))
		return 1;
	return cmocka_run_group_tests_name("open_bio", tests, NULL, NULL);
}
