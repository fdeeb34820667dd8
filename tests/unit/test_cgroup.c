// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* cgroup/: mount detection from mountinfo, path resolution, ids. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"
#include "cgroup/cgroup.h"
#include "cgroup/cgcache.h"

static int parse(const char *text, struct cg_layout *l)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int err;

	assert_non_null(f);
	err = cg_layout_parse(f, l);
	fclose(f);
	return err;
}

static void test_hybrid(void **state)
{
	struct cg_layout l;

	(void)state;
	assert_int_equal(parse("25 24 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
			       "26 25 0:23 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu\n"
			       "35 25 0:32 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
			       &l),
			 0);
	assert_int_equal(l.mode, CG_MODE_HYBRID);
	assert_string_equal(l.v2_mount, "/sys/fs/cgroup/unified");
}

static void test_unified(void **state)
{
	struct cg_layout l;

	(void)state;
	assert_int_equal(parse("30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 "
			       "rw,nsdelegate\n",
			       &l),
			 0);
	assert_int_equal(l.mode, CG_MODE_V2);
	assert_string_equal(l.v2_mount, "/sys/fs/cgroup");
}

static void test_v1_only_and_none(void **state)
{
	struct cg_layout l;

	(void)state;
	assert_int_equal(parse("26 25 0:23 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", &l), 0);
	assert_int_equal(l.mode, CG_MODE_V1);
	assert_string_equal(l.v2_mount, "");
	assert_int_equal(parse("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n", &l), 0);
	assert_int_equal(l.mode, CG_MODE_NONE);
}

static void test_bind_subtree_and_escapes(void **state)
{
	struct cg_layout l;

	(void)state;
	/* a container's view: a subtree bind first, then the real root with a space */
	assert_int_equal(parse("40 30 0:26 /kubepods/pod1 /host/cg rw - cgroup2 cgroup2 rw\n"
			       "41 30 0:26 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n"
			       "garbage line\n\n",
			       &l),
			 0);
	assert_int_equal(l.mode, CG_MODE_V2);
	assert_string_equal(l.v2_mount, "/mnt/my cg");
}

static void test_seen_from_a_cgroup_namespace(void **state)
{
	struct cg_layout l;

	(void)state;
	/* a pod in a private cgroup namespace with the node's hierarchy mounted in:
	 * the root shows relative to the namespace (measured here with unshare -C) */
	assert_int_equal(parse("41 31 0:38 /.. /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n", &l),
			 0);
	assert_int_equal(l.mode, CG_MODE_V2);
	assert_string_equal(l.v2_mount, "/sys/fs/cgroup/unified");
	assert_int_equal(parse("41 31 0:38 /../../.. /host/cg rw - cgroup2 cgroup2 rw\n", &l), 0);
	assert_string_equal(l.v2_mount, "/host/cg");
	/* but not a subtree, nor something that only starts like one */
	assert_int_equal(parse("41 31 0:38 /../x /a rw - cgroup2 cgroup2 rw\n"
			       "42 31 0:38 /..x /b rw - cgroup2 cgroup2 rw\n", &l), 0);
	assert_int_equal(l.mode, CG_MODE_NONE);
}

static void test_level(void **state)
{
	(void)state;
	assert_int_equal(cg_level("/"), 0);
	assert_int_equal(cg_level("/a"), 1);
	assert_int_equal(cg_level("/a/b"), 2);
	assert_int_equal(cg_level("/kubepods/besteffort/pod1/c1"), 4);
}

/* Against this machine's real cgroup2 mount, in a test directory. */
static void test_resolve_real(void **state)
{
	char abs[PATH_MAX + 64], rel[PATH_MAX + 64], dir[PATH_MAX + 64];
	struct cg_layout l;
	struct stat st;
	uint64_t id;

	(void)state;
	assert_int_equal(cg_layout_detect(&l), 0);
	if (!l.v2_mount[0])
		skip();
	snprintf(dir, sizeof(dir), "%s/ps-unit-%d", l.v2_mount, getpid());
	assert_int_equal(mkdir(dir, 0755), 0);

	/* by filesystem path, with noise */
	snprintf(abs, sizeof(abs), "%s//ps-unit-%d/", l.v2_mount, getpid());
	assert_int_equal(cg_resolve(&l, abs, abs, sizeof(abs), rel, sizeof(rel)), 0);
	assert_string_equal(abs, dir);
	assert_int_equal(cg_level(rel), 1);
	/* relative to the cgroup2 root */
	snprintf(abs, sizeof(abs), "ps-unit-%d", getpid());
	assert_int_equal(cg_resolve(&l, abs, abs, sizeof(abs), rel, sizeof(rel)), 0);
	assert_string_equal(abs, dir);
	assert_int_equal(cg_id_from_path(dir, &id), 0);
	assert_int_equal(stat(dir, &st), 0);
	assert_true(id == st.st_ino);

	assert_int_equal(cg_resolve(&l, "/", abs, sizeof(abs), rel, sizeof(rel)), 0);
	assert_string_equal(rel, "/");
	assert_int_equal(cg_id_from_path(abs, &id), 0);
	assert_true(id == 1); /* the root cgroup */

	assert_int_equal(cg_resolve(&l, "/no-such-cgroup-ps", abs, sizeof(abs), rel, sizeof(rel)),
			 -ENOENT);
	assert_int_equal(cg_resolve(&l, "/../etc", abs, sizeof(abs), rel, sizeof(rel)), -EINVAL);
	snprintf(abs, sizeof(abs), "%s/cgroup.procs", l.v2_mount);
	assert_int_equal(cg_resolve(&l, abs, abs, sizeof(abs), rel, sizeof(rel)), -ENOTDIR);
	assert_int_equal(rmdir(dir), 0);
}

static void test_resolve_without_cgroup2(void **state)
{
	struct cg_layout l = { .mode = CG_MODE_V1 };
	char abs[64], rel[64];

	(void)state;
	assert_int_equal(cg_resolve(&l, "/a", abs, sizeof(abs), rel, sizeof(rel)), -ENODEV);
}

/* id <-> path on the real cgroup2 tree: a walk, then learning one new cgroup by its id alone */
static void test_cache_real(void **state)
{
	char dir[PATH_MAX + 64], sub[PATH_MAX + 128], rel[256];
	struct cg_entry *e = NULL;
	struct cg_layout l;
	struct cg_cache c;
	struct stat st;
	size_t n = 0, before;

	(void)state;
	assert_int_equal(cg_layout_detect(&l), 0);
	if (!l.v2_mount[0])
		skip();
	snprintf(dir, sizeof(dir), "%s/ps-cache-%d", l.v2_mount, getpid());
	assert_int_equal(mkdir(dir, 0755), 0);
	assert_int_equal(cg_cache_init(&c, l.v2_mount), 0);
	assert_int_equal(cg_cache_scan(&c, "/"), 0);
	assert_non_null(cg_cache_get(&c, 1));
	assert_string_equal(cg_cache_get(&c, 1)->path, "/");
	assert_int_equal(stat(dir, &st), 0);
	e = cg_cache_get(&c, st.st_ino);
	assert_non_null(e);
	snprintf(rel, sizeof(rel), "/ps-cache-%d", getpid());
	assert_string_equal(e->path, rel);
	assert_int_equal(e->level, 1);
	assert_ptr_equal(cg_cache_find(&c, rel), e);
	for (size_t i = 0; cg_cache_next(&c, &i);)
		n++;
	assert_true(n >= 2);
	before = cg_cache_bytes(&c);

	/* made after the walk: found from its id, without walking again */
	snprintf(sub, sizeof(sub), "%s/kubepods-x", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(stat(sub, &st), 0);
	assert_null(cg_cache_get(&c, st.st_ino));
	assert_int_equal(cg_cache_resolve(&c, st.st_ino, &e), 0);
	snprintf(rel, sizeof(rel), "/ps-cache-%d/kubepods-x", getpid());
	assert_string_equal(e->path, rel);
	assert_int_equal(e->level, 2);
	assert_true(cg_cache_bytes(&c) > before);
	assert_int_equal(cg_cache_remove(&c, st.st_ino), 0);
	assert_int_equal(cg_cache_remove(&c, st.st_ino), -ENOENT);
	assert_null(cg_cache_find(&c, rel));

	/* gone: the handle no longer opens */
	assert_int_equal(rmdir(sub), 0);
	assert_true(cg_cache_resolve(&c, st.st_ino, &e) < 0);
	assert_int_equal(cg_cache_add(&c, 0, "/x", NULL), -EINVAL);
	assert_int_equal(cg_cache_add(&c, 5, "x", NULL), -EINVAL);
	cg_cache_free(&c);
	assert_int_equal(rmdir(dir), 0);
}

static void test_proc_cgroup(void **state)
{
	const char *text = "12:memory:/kubepods/besteffort/podX/abc\n"
			   "3:cpu,cpuacct:/a/b\n"
			   "1:name=systemd:/system.slice/x.service\n"
			   "0::/kubepods/besteffort/podX/def\n";
	char buf[128];
	FILE *f;
	uint64_t ino;

	(void)state;
	f = fmemopen((void *)text, strlen(text), "r");
	assert_int_equal(cg_proc_path_parse(f, NULL, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/kubepods/besteffort/podX/def");
	rewind(f);
	assert_int_equal(cg_proc_path_parse(f, "cpuacct", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/a/b");
	rewind(f);
	assert_int_equal(cg_proc_path_parse(f, "name=systemd", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "/system.slice/x.service");
	rewind(f);
	assert_int_equal(cg_proc_path_parse(f, "blkio", buf, sizeof(buf)), -ENOENT);
	rewind(f);
	assert_int_equal(cg_proc_path_parse(f, "memory", buf, 4), -ENAMETOOLONG);
	fclose(f);
	assert_int_equal(cg_pid_path(getpid(), NULL, buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], '/');
	assert_int_equal(cg_pid_mntns(getpid(), &ino), 0);
	assert_true(ino > 0);
	assert_int_equal(cg_pid_mntns(-5, &ino), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hybrid),
		cmocka_unit_test(test_unified),
		cmocka_unit_test(test_v1_only_and_none),
		cmocka_unit_test(test_bind_subtree_and_escapes),
		cmocka_unit_test(test_seen_from_a_cgroup_namespace),
		cmocka_unit_test(test_level),
		cmocka_unit_test(test_resolve_real),
		cmocka_unit_test(test_resolve_without_cgroup2),
		cmocka_unit_test(test_cache_real),
		cmocka_unit_test(test_proc_cgroup),
	};

	return cmocka_run_group_tests_name("cgroup", tests, NULL, NULL);
}
