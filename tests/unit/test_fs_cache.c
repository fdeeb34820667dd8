// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * fs and cache tracers' user-space logic: decoding fs records (never trust
 * the lengths; paths joined root first), cachestat's arithmetic, meminfo,
 * and their flags.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "agent/tracers/cache.h"
#include "agent/config.h"
#include "agent/tracers/fs.h"

#define ARGV(...) ((char *[]){ "podsnoop", __VA_ARGS__, NULL })
#define ARGC(...) ((int)(sizeof((char *[]){ "podsnoop", __VA_ARGS__ }) / sizeof(char *)))
#define PARSE(cfg, ...) config_parse(cfg, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__))

static struct fs_event *ev;
static char out[FS_JOINED_MAX];

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

/* components given leaf first as one blob with embedded NULs */
static size_t fill(const char *comps, size_t len, uint32_t flags)
{
	memset(ev, 0, sizeof(*ev));
	memcpy(ev->buf, comps, len);
	ev->path_len = (__u32)len;
	ev->op = FS_OP_WRITE;
	ev->fs = FS_T_EXT4;
	ev->flags = flags;
	return FS_EVENT_HDR_SIZE + len;
}

static void test_path_joined_root_first(void **state)
{
	size_t size = fill("file\0dir\0tmp\0", 13, 0);
	struct fs_view v;

	(void)state;
	assert_int_equal(fs_decode(ev, size, out, &v), 0);
	assert_int_equal(v.path_len, 13);
	assert_memory_equal(v.path, "/tmp/dir/file", 13);
	assert_int_equal(v.name_len, 4);
	assert_memory_equal(v.name, "file", 4);
	assert_false(v.path_truncated);
}

static void test_single_component(void **state)
{
	size_t size = fill("f\0", 2, 0);
	struct fs_view v;

	(void)state;
	assert_int_equal(fs_decode(ev, size, out, &v), 0);
	assert_int_equal(v.path_len, 2);
	assert_memory_equal(v.path, "/f", 2);
	assert_memory_equal(v.name, "f", 1);
}

static void test_truncated_path_has_no_leading_slash(void **state)
{
	size_t size = fill("c\0b\0", 4, FS_F_PATH_TRUNCATED);
	struct fs_view v;

	(void)state;
	assert_int_equal(fs_decode(ev, size, out, &v), 0);
	assert_true(v.path_truncated);
	assert_int_equal(v.path_len, 3);
	assert_memory_equal(v.path, "b/c", 3);
}

static void test_unterminated_last_component(void **state)
{
	/* the kernel never sends this; the decoder must still stay in bounds */
	size_t size = fill("leaf\0roo", 8, 0);
	struct fs_view v;

	(void)state;
	assert_int_equal(fs_decode(ev, size, out, &v), 0);
	assert_true(v.path_truncated);
	assert_int_equal(v.path_len, 8);
	assert_memory_equal(v.path, "roo/leaf", 8);
}

static void test_empty_path(void **state)
{
	size_t size = fill("", 0, 0);
	struct fs_view v;

	(void)state;
	assert_int_equal(fs_decode(ev, size, out, &v), 0);
	assert_int_equal(v.path_len, 0);
	assert_int_equal(v.name_len, 0);
}

static void test_longest_path_fits(void **state)
{
	char comps[FS_PATH_MAX + FS_NAME_MAX];
	size_t size, n = 0;
	struct fs_view v;

	(void)state;
	/* as many 255-byte names as the buffer holds, each with its NUL */
	while (n + FS_NAME_MAX <= sizeof(comps)) {
		memset(comps + n, 'a' + (int)(n / FS_NAME_MAX), FS_NAME_MAX - 1);
		comps[n + FS_NAME_MAX - 1] = '\0';
		n += FS_NAME_MAX;
	}
	size = fill(comps, n, 0);
	assert_int_equal(fs_decode(ev, size, out, &v), 0);
	assert_int_equal(v.path_len, n);
	assert_int_equal(v.path[0], '/');
	assert_int_equal(v.path[1], 'a' + (int)(n / FS_NAME_MAX) - 1); /* root-most is last */
	assert_int_equal(v.name[0], 'a');
	assert_int_equal(v.name_len, FS_NAME_MAX - 1);
}

static void test_bad_records_refused(void **state)
{
	size_t size = fill("x\0", 2, 0);
	struct fs_view v;

	(void)state;
	assert_int_equal(fs_decode(ev, FS_EVENT_HDR_SIZE - 1, out, &v), -EINVAL);
	assert_int_equal(fs_decode(ev, size - 1, out, &v), -EINVAL); /* path past the end */
	ev->path_len = FS_PATH_MAX + FS_NAME_MAX + 1;
	assert_int_equal(fs_decode(ev, sizeof(*ev), out, &v), -EINVAL);
	fill("x\0", 2, 0);
	ev->op = 0;
	assert_int_equal(fs_decode(ev, size, out, &v), -EINVAL);
	ev->op = FS_OP_MAX;
	assert_int_equal(fs_decode(ev, size, out, &v), -EINVAL);
	ev->op = FS_OP_READ;
	ev->fs = FS_T_MAX;
	assert_int_equal(fs_decode(ev, size, out, &v), -EINVAL);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(fs_op_name(FS_OP_FSYNC), "fsync");
	assert_string_equal(fs_op_name(99), "unknown");
	assert_string_equal(fs_type_name(FS_T_XFS), "xfs");
	assert_string_equal(fs_type_name(FS_T_MAX), "unknown");
	assert_int_equal(fs_type_from_name("btrfs"), FS_T_BTRFS);
	assert_int_equal(fs_type_from_name("ext3"), -1);
	assert_string_equal(fs_method_name(FS_M_SYSCALLS), "syscalls");
	assert_string_equal(cache_method_name(CACHE_M_TP_BTF), "tp_btf");
}

static void test_cache_first_read_all_misses(void **state)
{
	struct cache_val d = { .accessed = 1024, .added = 1024 };
	struct cache_view v = { 0 };

	(void)state;
	cache_compute(&d, CACHE_M_TP_BTF, true, &v);
	assert_int_equal(v.misses, 1024);
	assert_int_equal(v.hits, 0);
	assert_true(v.ratio_known && v.hit_ratio == 0.0);
	assert_true(v.estimated);
}

static void test_cache_second_read_all_hits(void **state)
{
	struct cache_val d = { .accessed = 1024 };
	struct cache_view v = { 0 };

	(void)state;
	cache_compute(&d, CACHE_M_TRACEPOINT, true, &v);
	assert_int_equal(v.hits, 1024);
	assert_true(v.ratio_known && v.hit_ratio == 1.0);
}

static void test_cache_writes_are_not_misses(void **state)
{
	/* new pages are added and dirtied: bcc subtracts them from the misses */
	struct cache_val d = { .accessed = 10, .added = 256, .dirtied = 256 };
	struct cache_view v = { 0 };

	(void)state;
	cache_compute(&d, CACHE_M_FENTRY, true, &v);
	assert_int_equal(v.misses, 0);
	assert_int_equal(v.hits, 10);
	assert_false(v.estimated);
	/* re-dirtying cached pages must not make misses negative */
	d = (struct cache_val){ .accessed = 5, .added = 0, .dirtied = 50 };
	cache_compute(&d, CACHE_M_KPROBE, true, &v);
	assert_int_equal(v.misses, 0);
	assert_int_equal(v.hits, 5);
}

static void test_cache_bcc_buffer_rule(void **state)
{
	/* fentry/kprobe: dirtied buffers come off the access total, never below 0 */
	struct cache_val d = { .accessed = 100, .added = 10, .buf_dirtied = 30 };
	struct cache_view v = { 0 };

	(void)state;
	cache_compute(&d, CACHE_M_FENTRY, true, &v);
	assert_int_equal(v.accesses, 70);
	assert_int_equal(v.hits, 60);
	d.buf_dirtied = 500;
	cache_compute(&d, CACHE_M_FENTRY, true, &v);
	assert_int_equal(v.accesses, 0);
	assert_int_equal(v.hits, 0);
	assert_true(v.ratio_known && v.hit_ratio == 0.0);
	/* the estimate counts buffer lookups itself: no subtraction */
	d.buf_dirtied = 30;
	cache_compute(&d, CACHE_M_TP_BTF, true, &v);
	assert_int_equal(v.accesses, 100);
}

static void test_cache_no_access_source(void **state)
{
	struct cache_val d = { .accessed = 0, .added = 7 };
	struct cache_view v = { 0 };

	(void)state;
	cache_compute(&d, CACHE_M_TRACEPOINT, false, &v);
	assert_false(v.accesses_known);
	assert_false(v.ratio_known);
	assert_false(v.estimated);
	assert_int_equal(v.misses, 7);
	assert_int_equal(v.hits, 0);
}

static void test_cache_idle_row(void **state)
{
	struct cache_val d = { 0 };
	struct cache_view v = { 0 };

	(void)state;
	cache_compute(&d, CACHE_M_TP_BTF, true, &v);
	assert_false(v.ratio_known);
}

static void test_meminfo(void **state)
{
	uint64_t b = 0, c = 0;

	(void)state;
	assert_int_equal(cache_parse_meminfo("MemTotal:       24000000 kB\n"
					     "Buffers:           19084 kB\n"
					     "Cached:          1279204 kB\n"
					     "SwapCached:            0 kB\n",
					     &b, &c),
			 0);
	assert_int_equal(b, 19084);
	assert_int_equal(c, 1279204);
	/* SwapCached must not be taken for Cached */
	assert_int_equal(cache_parse_meminfo("SwapCached: 5 kB\nBuffers: 1 kB\n", &b, &c),
			 -EINVAL);
}

static void test_flags(void **state)
{
	struct ps_config c;
	char *argv[] = { "podsnoop", NULL };

	(void)state;
	assert_int_equal(config_parse(&c, 1, argv), 0);
	assert_int_equal(c.fs_min_us, FS_MIN_US_DEF);
	assert_int_equal(c.fs_types, FS_T_BIT(FS_T_EXT4));
	assert_int_equal(c.interval_s, 10);
	assert_int_equal(PARSE(&c, "--fs-min-us", "0", "--fs-type", "xfs,btrfs,ext4",
			       "--interval", "1", "--hook", "fs=kprobe", "--hook",
			       "cache=tracepoint"),
			 0);
	assert_int_equal(c.fs_min_us, 0);
	assert_int_equal(c.fs_types, FS_T_BIT(FS_T_EXT4) | FS_T_BIT(FS_T_XFS) |
					     FS_T_BIT(FS_T_BTRFS));
	assert_int_equal(c.interval_s, 1);
	assert_string_equal(c.hooks[tracer_index("fs")], "kprobe");
	assert_string_equal(c.hooks[tracer_index("cache")], "tracepoint");
}

static void test_bad_flags(void **state)
{
	struct ps_config c;
	FILE *saved = stderr;

	(void)state;
	stderr = fopen("/dev/null", "w"); /* the one-line errors */
	assert_int_equal(PARSE(&c, "--fs-type", "ntfs"), -EINVAL);
	assert_int_equal(PARSE(&c, "--fs-type", ","), -EINVAL);
	assert_int_equal(PARSE(&c, "--fs-min-us", "-1"), -EINVAL);
	assert_int_equal(PARSE(&c, "--fs-min-us", "3600000001"), -EINVAL);
	assert_int_equal(PARSE(&c, "--interval", "0"), -EINVAL);
	assert_int_equal(PARSE(&c, "--interval", "3601"), -EINVAL);
	assert_int_equal(PARSE(&c, "--hook", "fs=tp_btf"), -EINVAL);
	assert_int_equal(PARSE(&c, "--hook", "cache=syscalls"), -EINVAL);
	fclose(stderr);
	stderr = saved;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_path_joined_root_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_single_component, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_path_has_no_leading_slash, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unterminated_last_component, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_longest_path_fits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_records_refused, setup, teardown),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_cache_first_read_all_misses),
		cmocka_unit_test(test_cache_second_read_all_hits),
		cmocka_unit_test(test_cache_writes_are_not_misses),
		cmocka_unit_test(test_cache_bcc_buffer_rule),
		cmocka_unit_test(test_cache_no_access_source),
		cmocka_unit_test(test_cache_idle_row),
		cmocka_unit_test(test_meminfo),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_bad_flags),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
