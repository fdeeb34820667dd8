// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The filter configuration's inline cgroup ids (agent/tracers/filter.c) as the BPF
 * programs read it: real maps (root, as make test runs), no programs.
 * Programs read the configuration while the agent copies a new one over it,
 * so an id must keep its slot while it stays selected.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "unit.h"
#include "agent/tracers/filter.h"
#include "bpf/common.h"

/* The configuration map filter_init() made, found among this process's fds. */
static int cfg_fd(void)
{
	struct bpf_map_info info;
	__u32 len;
	struct dirent *d;
	DIR *dir = opendir("/proc/self/fd");
	int fd, found = -1;

	assert_non_null(dir);
	while (found < 0 && (d = readdir(dir))) {
		fd = atoi(d->d_name);
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		if (d->d_name[0] != '.' && !bpf_obj_get_info_by_fd(fd, &info, &len) &&
		    !strcmp(info.name, "ps_filter_cfg"))
			found = fd;
	}
	closedir(dir);
	assert_true(found >= 0);
	return found;
}

static struct ps_filter_cfg read_cfg(void)
{
	struct ps_filter_cfg c;
	__u32 zero = 0;

	assert_int_equal(bpf_map_lookup_elem(cfg_fd(), &zero, &c), 0);
	return c;
}

static int slot_of(const struct ps_filter_cfg *c, __u64 id)
{
	for (int i = 0; i < PS_FILTER_INLINE_IDS; i++)
		if (c->inline_ids[i] == id)
			return i;
	return -1;
}

static int n_nonzero(const struct ps_filter_cfg *c)
{
	int n = 0;

	for (int i = 0; i < PS_FILTER_INLINE_IDS; i++)
		n += c->inline_ids[i] != 0;
	return n;
}

static int setup(void **state)
{
	(void)state;
	if (geteuid() != 0)
		return -1; /* BPF maps need root: make test runs as root */
	return filter_init();
}

static int teardown(void **state)
{
	(void)state;
	filter_free();
	return 0;
}

static void test_ids_keep_their_slots(void **state)
{
	struct ps_filter_cfg c;
	int slot[8];

	(void)state;
	for (__u64 id = 101; id <= 106; id++)
		assert_int_equal(filter_add_cgroup(id, 3), 0);
	c = read_cfg();
	assert_true(c.flags & PS_F_CGROUP);
	assert_int_equal(c.n_inline, 6);
	assert_int_equal(n_nonzero(&c), 6);
	for (int i = 0; i < 6; i++) {
		slot[i] = slot_of(&c, 101 + i);
		assert_true(slot[i] >= 0);
	}
	/* one leaves, one comes: everybody else stays where they were */
	assert_int_equal(filter_del_cgroup(102, 3), 0);
	assert_int_equal(filter_add_cgroup(107, 4), 0);
	c = read_cfg();
	assert_int_equal(c.n_inline, 6);
	assert_int_equal(n_nonzero(&c), 6);
	assert_int_equal(slot_of(&c, 102), -1);
	assert_true(slot_of(&c, 107) >= 0);
	for (int i = 0; i < 6; i++)
		if (i != 1)
			assert_int_equal(slot_of(&c, 101 + i), slot[i]);
	assert_int_equal(c.cgroup_levels, (1u << 3) | (1u << 4));
}

static void test_more_than_the_slots_use_the_hash_and_come_back(void **state)
{
	struct ps_filter_cfg c;
	int slot[8];

	(void)state;
	for (__u64 id = 201; id <= 208; id++)
		assert_int_equal(filter_add_cgroup(id, 2), 0);
	c = read_cfg();
	assert_int_equal(c.n_inline, 8);
	for (int i = 0; i < 8; i++)
		slot[i] = slot_of(&c, 201 + i);
	assert_int_equal(filter_add_cgroup(209, 2), 0); /* a ninth: the hash serves */
	c = read_cfg();
	assert_int_equal(c.n_inline, 0);
	/* the eight kept their slots meanwhile, so going back is one flag */
	for (int i = 0; i < 8; i++)
		assert_int_equal(slot_of(&c, 201 + i), slot[i]);
	assert_int_equal(filter_del_cgroup(209, 2), 0);
	c = read_cfg();
	assert_int_equal(c.n_inline, 8);
	for (int i = 0; i < 8; i++)
		assert_int_equal(slot_of(&c, 201 + i), slot[i]);
	/* all gone: nothing inline, and the selection stays on (selects nothing) */
	for (__u64 id = 201; id <= 208; id++)
		assert_int_equal(filter_del_cgroup(id, 2), 0);
	c = read_cfg();
	assert_int_equal(c.n_inline, 0);
	assert_int_equal(n_nonzero(&c), 0);
	assert_true(c.flags & PS_F_CGROUP);
	assert_int_equal(c.cgroup_levels, 0);
}

static void test_bad_level_is_refused(void **state)
{
	(void)state;
	assert_int_equal(filter_add_cgroup(5, PS_CGROUP_MAX_LEVEL), -ERANGE);
	assert_int_equal(filter_add_cgroup(5, -1), -ERANGE);
	assert_int_equal(filter_del_cgroup(5, 1), -ENOENT); /* never added */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ids_keep_their_slots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_more_than_the_slots_use_the_hash_and_come_back,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_level_is_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
