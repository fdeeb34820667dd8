// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The on-disk spool: order, bounds, restarts, torn writes, one owner. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "unit.h"
#include "agent/ship/ship_spool.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/ps-spool-test-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void expect_head(struct spool *sp, const char *want, uint64_t *id)
{
	uint8_t *body;
	size_t len;

	assert_int_equal(spool_head(sp, &body, &len, id), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(body, want, len);
	free(body);
}

static void test_order_and_bytes(void **state)
{
	struct spool sp;
	uint64_t id, a, b, c;

	(void)state;
	assert_int_equal(spool_open(&sp, dir, 1000, 1 << 20), 0);
	assert_int_equal(spool_count(&sp), 0);
	assert_int_equal(spool_head(&sp, &(uint8_t *){ NULL }, &(size_t){ 0 }, &id), -ENOENT);
	assert_int_equal(spool_put(&sp, "first", 5, &a), 0);
	assert_int_equal(spool_put(&sp, "second", 6, &b), 0);
	assert_int_equal(spool_put(&sp, "third", 5, &c), 0);
	assert_true(a < b && b < c);
	assert_int_equal(spool_count(&sp), 3);
	assert_int_equal(sp.bytes, 16);
	expect_head(&sp, "first", &id);
	assert_int_equal(id, a);
	expect_head(&sp, "first", &id); /* reading does not consume */
	assert_int_equal(spool_remove_head(&sp, b), -EINVAL); /* only the head goes */
	assert_int_equal(spool_remove_head(&sp, a), 0);
	expect_head(&sp, "second", &id);
	assert_int_equal(sp.bytes, 11);
	spool_close(&sp);
}

static void test_bound(void **state)
{
	struct spool sp;
	uint64_t id;

	(void)state;
	assert_int_equal(spool_open(&sp, dir, 10, 1 << 20), 0);
	assert_int_equal(spool_put(&sp, "123456", 6, &id), 0);
	assert_int_equal(spool_put(&sp, "12345", 5, &id), -EDQUOT);
	assert_int_equal(spool_put(&sp, "1234", 4, &id), 0);
	assert_int_equal(spool_count(&sp), 2);
	assert_int_equal(spool_remove_head(&sp, spool_count(&sp) ? sp.ents[sp.head].id : 0), 0);
	assert_int_equal(spool_put(&sp, "12345", 5, &id), 0);
	spool_close(&sp);
}

static void test_restart_keeps_order_and_cleans_tmp(void **state)
{
	struct spool sp;
	uint64_t id, last;
	char path[128];
	int fd;

	(void)state;
	assert_int_equal(spool_open(&sp, dir, 1 << 20, 1 << 20), 0);
	for (int i = 0; i < 12; i++) { /* ids past 9, 10: order is numeric */
		char body[8];

		snprintf(body, sizeof(body), "b%02d", i);
		assert_int_equal(spool_put(&sp, body, 3, &last), 0);
	}
	assert_int_equal(spool_remove_head(&sp, sp.ents[sp.head].id), 0);
	spool_close(&sp);
	/* a write a killed agent did not finish, and a file that is not ours */
	snprintf(path, sizeof(path), "%s/00000000000000000099.tmp", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);

	assert_int_equal(spool_open(&sp, dir, 1 << 20, 1 << 20), 0);
	assert_int_equal(spool_count(&sp), 11);
	assert_int_equal(sp.bytes, 33);
	snprintf(path, sizeof(path), "%s/00000000000000000099.tmp", dir);
	assert_int_equal(access(path, F_OK), -1);
	for (int i = 1; i < 12; i++) {
		char want[8];

		snprintf(want, sizeof(want), "b%02d", i);
		expect_head(&sp, want, &id);
		assert_int_equal(spool_remove_head(&sp, id), 0);
	}
	assert_int_equal(spool_count(&sp), 0);
	assert_int_equal(spool_put(&sp, "new", 3, &id), 0);
	assert_true(id > last); /* ids never go back: a restart cannot reorder */
	spool_close(&sp);
}

static void test_one_owner(void **state)
{
	struct spool a, b;

	(void)state;
	assert_int_equal(spool_open(&a, dir, 100, 1 << 20), 0);
	assert_int_equal(spool_open(&b, dir, 100, 1 << 20), -EBUSY);
	spool_close(&a);
	assert_int_equal(spool_open(&b, dir, 100, 1 << 20), 0);
	spool_close(&b);
}

static void test_empty_file_skipped(void **state)
{
	struct spool sp;
	uint64_t id, a, b;
	char path[128];

	(void)state;
	assert_int_equal(spool_open(&sp, dir, 100, 1 << 20), 0);
	assert_int_equal(spool_put(&sp, "aaa", 3, &a), 0);
	assert_int_equal(spool_put(&sp, "bbb", 3, &b), 0);
	snprintf(path, sizeof(path), "%s/%020llu.batch", dir, (unsigned long long)a);
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(spool_head(&sp, &(uint8_t *){ NULL }, &(size_t){ 0 }, &id), -EBADMSG);
	expect_head(&sp, "bbb", &id);
	assert_int_equal(id, b);
	spool_close(&sp);
}

static void batch_path(char *path, size_t n, uint64_t id)
{
	snprintf(path, n, "%s/%020llu.batch", dir, (unsigned long long)id);
}

/* What is in the directory is anyone's choice: only regular files of a batch's size are read. */
static void test_not_batches_left_alone(void **state)
{
	struct spool sp;
	uint64_t id, a, b, c, d, e;
	char path[128], target[128];
	int fd;

	(void)state;
	/* at open: a symlink, a FIFO and an oversized file are not listed */
	batch_path(path, sizeof(path), 3);
	snprintf(target, sizeof(target), "%s/target", dir);
	fd = open(target, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0 && write(fd, "secret", 6) == 6);
	close(fd);
	assert_int_equal(symlink(target, path), 0);
	batch_path(path, sizeof(path), 4);
	assert_int_equal(mkfifo(path, 0600), 0);
	batch_path(path, sizeof(path), 5);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0 && write(fd, "0123456789a", 11) == 11);
	close(fd);
	assert_int_equal(spool_open(&sp, dir, 1000, 10), 0);
	assert_int_equal(spool_count(&sp), 0);
	assert_int_equal(sp.ignored, 3);
	assert_int_equal(sp.bytes, 0);
	/* new batches never take their names */
	assert_int_equal(spool_put(&sp, "aaa", 3, &a), 0);
	assert_true(a > 5);
	assert_int_equal(spool_put(&sp, "bbb", 3, &b), 0);
	assert_int_equal(spool_put(&sp, "ccc", 3, &c), 0);
	assert_int_equal(spool_put(&sp, "ddd", 3, &d), 0);
	assert_int_equal(spool_put(&sp, "eee", 3, &e), 0);
	/* listed, then replaced behind the spool's back */
	batch_path(path, sizeof(path), a);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);	/* opened without blocking */
	batch_path(path, sizeof(path), b);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink(target, path), 0);	/* not followed */
	batch_path(path, sizeof(path), c);
	assert_int_equal(truncate(path, 11), 0);	/* grown past the bound */
	assert_int_equal(spool_head(&sp, &(uint8_t *){ NULL }, &(size_t){ 0 }, &id), -ENOTSUP);
	assert_int_equal(spool_head(&sp, &(uint8_t *){ NULL }, &(size_t){ 0 }, &id), -ELOOP);
	assert_int_equal(spool_head(&sp, &(uint8_t *){ NULL }, &(size_t){ 0 }, &id), -EFBIG);
	expect_head(&sp, "ddd", &id);
	assert_int_equal(id, d);
	assert_int_equal(sp.bytes, 6); /* what is left of the spool's own */
	assert_int_equal(spool_remove_head(&sp, d), 0);
	expect_head(&sp, "eee", &id);
	spool_close(&sp);
	/* all still there */
	batch_path(path, sizeof(path), a);
	assert_int_equal(access(path, F_OK), 0);
	batch_path(path, sizeof(path), 4);
	assert_int_equal(access(path, F_OK), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order_and_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_keeps_order_and_cleans_tmp, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_one_owner, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_file_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_batches_left_alone, setup, teardown),
	};

	return cmocka_run_group_tests_name("ship_spool", tests, NULL, NULL);
}
