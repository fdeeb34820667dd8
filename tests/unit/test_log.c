// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The logger's guards: one printable line per message, no credentials from URLs. */
#include <string.h>

#include "unit.h"
#include "agent/log.h"

static void test_escape(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(log_escape(out, sizeof(out), "plain text, caf\xc3\xa9\t!"), 19);
	assert_string_equal(out, "plain text, caf\xc3\xa9\t!");
	log_escape(out, sizeof(out), "evil\npodsnoop: error: x\r\n");
	assert_string_equal(out, "evil\\npodsnoop: error: x\\r\\n");
	log_escape(out, sizeof(out), "\x1b[31mred\x07");
	assert_string_equal(out, "\\x1b[31mred\\x07");
	/* C1 controls (CSI as U+009B) and bytes that are not UTF-8 */
	log_escape(out, sizeof(out), "a\xc2\x9b" "b\xff\xc3");
	assert_string_equal(out, "a\\xc2\\x9bb\\xff\\xc3");
	log_escape(out, sizeof(out), "\x7f");
	assert_string_equal(out, "\\x7f");
	/* cut to fit, never in the middle of an escape */
	assert_int_equal(log_escape(out, 7, "ab\ncd"), 6);
	assert_string_equal(out, "ab\\ncd");
	assert_int_equal(log_escape(out, 6, "abc\x1b"), 3);
	assert_string_equal(out, "abc");
}

static void test_url(void **state)
{
	char buf[128];

	(void)state;
	assert_string_equal(log_url("https://node:10250", buf, sizeof(buf)), "https://node:10250");
	assert_string_equal(log_url("http://user:pw@10.0.0.5:10250/pods", buf, sizeof(buf)),
			    "http://***@10.0.0.5:10250/pods");
	assert_string_equal(log_url("https://tok@c:8443", buf, sizeof(buf)), "https://***@c:8443");
	/* a password may hold '@': everything up to the last one of the authority */
	assert_string_equal(log_url("http://u:p@ss@h/x@y?q=a@b", buf, sizeof(buf)),
			    "http://***@h/x@y?q=a@b");
	/* an '@' in the path or query is not a credential */
	assert_string_equal(log_url("http://h/a@b", buf, sizeof(buf)), "http://h/a@b");
	assert_string_equal(log_url("http://h?x=@", buf, sizeof(buf)), "http://h?x=@");
	assert_string_equal(log_url("not a url", buf, sizeof(buf)), "not a url");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_url),
	};

	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
