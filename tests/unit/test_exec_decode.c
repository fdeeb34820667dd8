// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Decoding exec records from the ring buffer: never trust the lengths. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "exec_fixture.h"
#include "agent/tracers/exec.h"

static struct exec_event *ev;

static int setup(void **state)
{
	(void)state;
	ev = calloc(1, sizeof(*ev));
	return ev ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(ev);
	return 0;
}

/* filename, then args given as one blob with embedded NULs */
static size_t fill(const char *fname, const char *args, size_t args_len)
{
	return exec_fill(ev, fname, args, args_len);
}

static void test_normal(void **state)
{
	size_t size = fill("/bin/ls", "ls\0-l\0/tmp\0", 11);
	struct exec_view v;

	(void)state;
	assert_int_equal(exec_decode(ev, size, 64, &v), 0);
	assert_int_equal(v.filename_len, 7);
	assert_memory_equal(v.filename, "/bin/ls", 7);
	assert_int_equal(v.argc, 3);
	assert_int_equal(v.args_len, 11);
	assert_false(v.args_truncated);
	assert_string_equal(v.args + 3, "-l");
}

static void test_no_args(void **state)
{
	size_t size = fill("/bin/true", "", 0);
	struct exec_view v;

	(void)state;
	assert_int_equal(exec_decode(ev, size, 64, &v), 0);
	assert_int_equal(v.argc, 0);
	assert_false(v.args_truncated);
}

static void test_cut_tail_dropped(void **state)
{
	/* sched_process_exec copies raw bytes: the last argument may be cut */
	size_t size = fill("/bin/x", "a\0bb\0cc", 7);
	struct exec_view v;

	(void)state;
	assert_int_equal(exec_decode(ev, size, 64, &v), 0);
	assert_int_equal(v.argc, 2);
	assert_int_equal(v.args_len, 5);
	assert_true(v.args_truncated);
}

static void test_max_args_enforced(void **state)
{
	size_t size = fill("/bin/x", "1\0" "2\0" "3\0" "4\0", 8);
	struct exec_view v;

	(void)state;
	assert_int_equal(exec_decode(ev, size, 3, &v), 0);
	assert_int_equal(v.argc, 3);
	assert_true(v.args_truncated);
	assert_int_equal(exec_decode(ev, size, 4, &v), 0);
	assert_int_equal(v.argc, 4);
	assert_false(v.args_truncated);
}

static void test_kernel_truncation_flag_kept(void **state)
{
	size_t size = fill("/bin/x", "a\0", 2);
	struct exec_view v;

	(void)state;
	ev->flags = EXEC_F_ARGS_TRUNCATED;
	assert_int_equal(exec_decode(ev, size, 64, &v), 0);
	assert_true(v.args_truncated);
}

static void test_bad_lengths_rejected(void **state)
{
	size_t size = fill("/bin/ls", "ls\0", 3);
	struct exec_view v;

	(void)state;
	assert_int_equal(exec_decode(ev, EXEC_EVENT_HDR_SIZE - 1, 64, &v), -EINVAL);
	assert_int_equal(exec_decode(ev, size - 1, 64, &v), -EINVAL);
	ev->args_len = 0xffffffff;
	assert_int_equal(exec_decode(ev, size, 64, &v), -EINVAL);
	ev->args_len = 3;
	ev->filename_len = EXEC_FILENAME_MAX + 1;
	assert_int_equal(exec_decode(ev, sizeof(*ev), 64, &v), -EINVAL);
}

static void test_filename_without_nul(void **state)
{
	struct exec_view v;

	(void)state;
	memset(ev, 0, sizeof(*ev));
	memcpy(ev->buf, "abcd", 4);
	ev->filename_len = 4; /* no NUL inside: length is what the kernel said */
	assert_int_equal(exec_decode(ev, EXEC_EVENT_HDR_SIZE + 4, 64, &v), 0);
	assert_int_equal(v.filename_len, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normal),
		cmocka_unit_test(test_no_args),
		cmocka_unit_test(test_cut_tail_dropped),
		cmocka_unit_test(test_max_args_enforced),
		cmocka_unit_test(test_kernel_truncation_flag_kept),
		cmocka_unit_test(test_bad_lengths_rejected),
		cmocka_unit_test(test_filename_without_nul),
	};

	return cmocka_run_group_tests_name("exec_decode", tests, setup, teardown);
}
