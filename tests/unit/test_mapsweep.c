// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The one sweep of stale in-flight entries (fs, exec, bio), on real BPF hash
 * maps: it reads the value size from the map and the timestamp where the real
 * struct has it, so a value struct that grows is still swept.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "unit.h"
#include "agent/tracers/mapsweep.h"
#include "bpf/bio.h"
#include "bpf/exec.h"
#include "bpf/fs.h"
#include "bio.skel.h"
#include "exec.skel.h"
#include "fs.skel.h"

#define NOW (1000ull * 1000000000ull)
#define MAX_AGE (120ull * 1000000000ull)

static int make_map(size_t key_size, size_t value_size)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "ps_sweep_test", key_size, value_size, 64, NULL);

	assert_true(fd >= 0);
	return fd;
}

static void put(int fd, __u64 key, void *val, size_t size, size_t ts_off, __u64 ts)
{
	memset(val, 0xab, size); /* the rest of the value: never read as a timestamp */
	memcpy((char *)val + ts_off, &ts, sizeof(ts));
	assert_int_equal(bpf_map_update_elem(fd, &key, val, BPF_ANY), 0);
}

static bool present(int fd, __u64 key, void *val)
{
	return bpf_map_lookup_elem(fd, &key, val) == 0;
}

/* stale entries go and are counted; fresh, future and still-being-written (0) ones stay */
static void test_sweep_bio_rq(void **state)
{
	struct bio_rq r;
	size_t off = MAP_SWEEP_TS(struct bio_rq, start_ns);
	uint64_t n = 99;
	int fd = make_map(sizeof(__u64), sizeof(r));

	(void)state;
	put(fd, 1, &r, sizeof(r), off, NOW - MAX_AGE - 1);	/* stale */
	put(fd, 2, &r, sizeof(r), off, NOW - MAX_AGE);		/* exactly the age: kept */
	put(fd, 3, &r, sizeof(r), off, NOW - 1);
	put(fd, 4, &r, sizeof(r), off, NOW + 5);		/* another CPU's clock ahead */
	put(fd, 5, &r, sizeof(r), off, 0);			/* not written yet */
	put(fd, 6, &r, sizeof(r), off, 1);			/* stale */
	assert_int_equal(map_sweep_stale(fd, off, NOW, MAX_AGE, &n), 0);
	assert_int_equal(n, 2);
	assert_false(present(fd, 1, &r));
	assert_false(present(fd, 6, &r));
	for (__u64 k = 2; k <= 5; k++)
		assert_true(present(fd, k, &r));
	assert_int_equal(map_sweep_stale(fd, off, NOW, MAX_AGE, &n), 0);
	assert_int_equal(n, 0);
	close(fd);
}

/*
 * The value grew far past the old hand-written mirror (start_ns and 80 bytes)
 * and the timestamp moved behind the growth: still swept, by the map's size.
 */
struct grown {
	char before[4096];
	__u64 ts;
	char after[3];
};

static void test_sweep_follows_growth(void **state)
{
	static struct grown g;
	size_t off = MAP_SWEEP_TS(struct grown, ts);
	uint64_t n = 0;
	int fd = make_map(sizeof(__u32), sizeof(g));
	__u32 k = 7, k2 = 8;

	(void)state;
	memset(&g, 0xcd, sizeof(g));
	g.ts = 1;
	assert_int_equal(bpf_map_update_elem(fd, &k, &g, BPF_ANY), 0);
	g.ts = NOW;
	assert_int_equal(bpf_map_update_elem(fd, &k2, &g, BPF_ANY), 0);
	assert_int_equal(map_sweep_stale(fd, off, NOW, MAX_AGE, &n), 0);
	assert_int_equal(n, 1);
	assert_int_not_equal(bpf_map_lookup_elem(fd, &k, &g), 0);
	assert_int_equal(bpf_map_lookup_elem(fd, &k2, &g), 0);
	close(fd);
}

/* a timestamp outside the value is an error, never a read past it */
static void test_sweep_ts_outside_value(void **state)
{
	uint64_t n = 5;
	int fd = make_map(sizeof(__u64), 16);

	(void)state;
	assert_int_equal(map_sweep_stale(fd, 9, NOW, MAX_AGE, &n), -EINVAL);
	assert_int_equal(n, 0);
	assert_int_equal(map_sweep_stale(fd, 8, NOW, MAX_AGE, &n), 0);
	assert_true(map_sweep_stale(-1, 0, NOW, MAX_AGE, &n) < 0);
	close(fd);
}

/* the BPF programs' in-flight maps hold exactly the structs the agent sweeps by */
static void test_maps_hold_the_shared_structs(void **state)
{
	struct bio_bpf *b = bio_bpf__open();
	struct exec_bpf *e = exec_bpf__open();
	struct fs_bpf *f = fs_bpf__open();

	(void)state;
	assert_non_null(b);
	assert_non_null(e);
	assert_non_null(f);
	assert_int_equal(bpf_map__value_size(b->maps.ps_bio_inflight), sizeof(struct bio_rq));
	assert_int_equal(bpf_map__value_size(b->maps.ps_bio_bios), sizeof(struct bio_rq));
	assert_int_equal(bpf_map__value_size(e->maps.ps_exec_pending), sizeof(struct exec_event));
	assert_int_equal(bpf_map__value_size(f->maps.ps_fs_pending), sizeof(struct fs_pending));
	bio_bpf__destroy(b);
	exec_bpf__destroy(e);
	fs_bpf__destroy(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sweep_bio_rq),
		cmocka_unit_test(test_sweep_follows_growth),
		cmocka_unit_test(test_sweep_ts_outside_value),
		cmocka_unit_test(test_maps_hold_the_shared_structs),
	};

	return cmocka_run_group_tests_name("mapsweep", tests, NULL, NULL);
}
