// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Shipping decisions that need no network: which answers are retried,
 * the backoff, the flags (the collector's de-duplication: test_collector.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "unit.h"
#include "agent/config.h"
#include "agent/ship/ship.h"
#include "agent/ship/ship_http.h"

#define ARGV(...) ((char *[]){ "podsnoop", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "podsnoop", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(cfg, ...) config_parse(cfg, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

static void test_classify(void **state)
{
	(void)state;
	assert_int_equal(http_classify(false, 0), HTTP_RETRY);	/* refused, reset, timeout */
	assert_int_equal(http_classify(true, 200), HTTP_SENT);
	assert_int_equal(http_classify(true, 204), HTTP_SENT);
	assert_int_equal(http_classify(true, 500), HTTP_RETRY);
	assert_int_equal(http_classify(true, 503), HTTP_RETRY);
	assert_int_equal(http_classify(true, 408), HTTP_RETRY);
	assert_int_equal(http_classify(true, 429), HTTP_RETRY);
	assert_int_equal(http_classify(true, 400), HTTP_REJECT);
	assert_int_equal(http_classify(true, 401), HTTP_REJECT);
	assert_int_equal(http_classify(true, 404), HTTP_REJECT);
	assert_int_equal(http_classify(true, 413), HTTP_REJECT);
	assert_int_equal(http_classify(true, 301), HTTP_REJECT);
}

static void test_backoff(void **state)
{
	uint64_t prev_hi = 0;

	(void)state;
	for (unsigned a = 0; a < 40; a++) {
		uint64_t cap = 250ull << (a < 20 ? a : 20), lo, hi;

		if (cap > 30000)
			cap = 30000;
		lo = backoff_ms(a, 250, 30000, 0);
		hi = backoff_ms(a, 250, 30000, 0xffffffffu % (uint32_t)(cap / 2 + 1));
		assert_true(lo == cap - cap / 2);		/* at least half ... */
		assert_true(hi <= cap && hi >= lo);		/* ... at most all of it */
		assert_true(hi >= prev_hi || cap == 30000);	/* grows until the cap */
		prev_hi = hi;
		for (uint32_t r = 0; r < 1000; r += 37) {
			uint64_t d = backoff_ms(a, 250, 30000, r * 7919u);

			assert_true(d >= cap / 2 && d <= cap);
		}
	}
	assert_int_equal(backoff_ms(0, 1, 1, 12345), 1);
	assert_true(backoff_ms(1000, 100, 5000, 3) <= 5000);
}

static void test_flags(void **state)
{
	struct ps_config c;

	(void)state;
	assert_int_equal(PARSE(&c, "--collector", "https://c:8443/v1/batches",
			       "--collector-token-file", "/t", "--collector-ca", "/ca",
			       "--collector-cert", "/crt", "--collector-key", "/key",
			       "--collector-timeout-ms", "2500", "--node-name", "n1",
			       "--batch-records", "100", "--batch-bytes", "128K", "--batch-ms", "200",
			       "--queue-max-bytes", "2M", "--spool-dir", "/s", "--spool-max-bytes",
			       "1G", "--retry-min-ms", "10", "--retry-max-ms", "1000",
			       "--flush-timeout-ms", "0", "--gzip-level", "6"),
			 0);
	assert_string_equal(c.ship.url, "https://c:8443/v1/batches");
	assert_string_equal(c.ship.token_file, "/t");
	assert_string_equal(c.ship.ca_file, "/ca");
	assert_string_equal(c.ship.cert_file, "/crt");
	assert_string_equal(c.ship.key_file, "/key");
	assert_int_equal(c.ship.timeout_ms, 2500);
	assert_string_equal(c.ship.node_name, "n1");
	assert_int_equal(c.ship.batch_records, 100);
	assert_int_equal(c.ship.batch_bytes, 128 * 1024);
	assert_int_equal(c.ship.batch_ms, 200);
	assert_int_equal(c.ship.queue_max_bytes, 2 << 20);
	assert_string_equal(c.ship.spool_dir, "/s");
	assert_true(c.ship.spool_max_bytes == 1ull << 30);
	assert_int_equal(c.ship.retry_min_ms, 10);
	assert_int_equal(c.ship.retry_max_ms, 1000);
	assert_int_equal(c.ship.flush_timeout_ms, 0);
	assert_int_equal(c.ship.gzip_level, 6);
	assert_false(c.output_given);

	/* a bare host gets the reference collector's path */
	assert_int_equal(PARSE(&c, "--collector", "https://c:8443"), 0);
	assert_string_equal(c.ship.url, "https://c:8443/v1/batches");
	assert_int_equal(PARSE(&c, "--collector", "http://c/"), 0);
	assert_string_equal(c.ship.url, "http://c/");
	assert_int_equal(PARSE(&c, "-o", "ndjson"), 0);
	assert_null(c.ship.url);
	assert_int_equal(c.ship.batch_ms, 1000);
}

static void test_bad_flags(void **state)
{
	struct ps_config c;

	(void)state;
	assert_int_equal(PARSE(&c, "--collector", "ftp://x"), -EINVAL);
	assert_int_equal(PARSE(&c, "--collector", "collector:80"), -EINVAL);
	assert_int_equal(PARSE(&c, "--collector", "http://"), -EINVAL);
	assert_int_equal(PARSE(&c, "--collector", "https:///v1"), -EINVAL);
	assert_int_equal(PARSE(&c, "--spool-dir", "/s"), -EINVAL);	/* needs --collector */
	assert_int_equal(PARSE(&c, "--collector", "http://x", "--batch-bytes", "1K"), -EINVAL);
	assert_int_equal(PARSE(&c, "--collector", "http://x", "--batch-bytes", "1X"), -EINVAL);
	assert_int_equal(PARSE(&c, "--collector", "http://x", "--batch-records", "0"), -EINVAL);
	assert_int_equal(PARSE(&c, "--collector", "http://x", "--gzip-level", "10"), -EINVAL);
	assert_int_equal(PARSE(&c, "--collector", "http://x", "--retry-min-ms", "5000",
			       "--retry-max-ms", "100"), -EINVAL);
	assert_int_equal(PARSE(&c, "--collector", "http://x", "--collector-ca", "/ca"), -EINVAL);
	assert_int_equal(PARSE(&c, "--collector", "https://x", "--collector-key", "/k"), -EINVAL);
	assert_int_equal(PARSE(&c, "--collector", "http://x", "--spool-max-bytes",
			       "99999999999999999999G"), -EINVAL);
	assert_int_equal(PARSE(&c, "probe", "--collector", "http://x"), -EINVAL);
}

/*
 * Every record type must be shipped: a tracer that adds a member to struct
 * sink_ops without a ship_<type>() in ship.c would crash the agent (or, if
 * skipped, lose records quietly). This trips first.
 */
static void test_ship_sink_has_every_record_type(void **state)
{
	void (*fns[sizeof(struct sink_ops) / sizeof(void (*)(void))])(void);

	(void)state;
	_Static_assert(sizeof(struct sink_ops) % sizeof(void (*)(void)) == 0,
		       "struct sink_ops holds only function pointers");
	memcpy(fns, &ship_sink, sizeof(fns));
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
		assert_non_null(fns[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_bad_flags),
		cmocka_unit_test(test_ship_sink_has_every_record_type),
	};

	if (!freopen("/dev/null", "w", stderr)) /* the flag errors are expected */
		return 1;
	return cmocka_run_group_tests_name("ship_policy", tests, NULL, NULL);
}
