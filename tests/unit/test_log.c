// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The logger's guard: one printable line per message. */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
	};

	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
