// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Records -> protobuf -> bytes -> protobuf -> records: what the collector
 * writes must be byte for byte what the agent writes locally.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "exec_fixture.h"
#include "agent/tracers/bio.h"
#include "agent/tracers/exec.h"
#include "agent/tracers/fs.h"
#include "agent/tracers/open.h"
#include "lib/pbconv.h"
#include "bpf/cache.h"

static struct exec_event *ev;
static struct exec_view_buf *vb;

static int setup(void **state)
{
	(void)state;
	ev = calloc(1, sizeof(*ev));
	vb = calloc(1, sizeof(*vb));
	return ev && vb ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(ev);
	free(vb);
	return 0;
}

/* An exec record with every header field set. */
static size_t fill(const char *fname, const char *args, size_t args_len)
{
	size_t size = exec_fill(ev, fname, args, args_len);

	ev->pid = 4242;
	ev->tid = 4243;
	ev->ppid = 1;
	ev->uid = 1000;
	ev->gid = 100;
	ev->retval = -2;
	ev->cgroup_id = 0x123456789abcull;
	ev->mntns_id = 4026531840ull;
	ev->method = EXEC_M_SYSCALLS;
	memcpy(ev->comm, "bash", 5);
	return size;
}

static char *ndjson(const struct exec_view *v)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	assert_non_null(f);
	ndjson_sink.exec(f, v);
	fclose(f);
	return buf;
}

/* view -> Record -> packed -> unpacked -> view; both render the same NDJSON */
static void round_trip(struct exec_view *v)
{
	struct pb_exec_buf *b = calloc(1, sizeof(*b));
	const Podsnoop__V1__Record *r;
	Podsnoop__V1__Record *back;
	struct exec_view v2;
	char *want, *got;
	uint8_t *packed;
	size_t len;

	assert_non_null(b);
	r = pbconv_exec(b, v);
	assert_int_equal(r->kind_case, PODSNOOP__V1__RECORD__KIND_EXEC);
	len = podsnoop__v1__record__get_packed_size(r);
	packed = malloc(len);
	assert_non_null(packed);
	assert_int_equal(podsnoop__v1__record__pack(r, packed), len);
	back = podsnoop__v1__record__unpack(NULL, len, packed);
	assert_non_null(back);
	assert_int_equal(back->kind_case, PODSNOOP__V1__RECORD__KIND_EXEC);
	assert_int_equal(pbconv_exec_view(back->exec, vb, &v2), 0);
	want = ndjson(v);
	got = ndjson(&v2);
	assert_string_equal(got, want);
	free(want);
	free(got);
	podsnoop__v1__record__free_unpacked(back, NULL);
	free(packed);
	free(b);
}

static void test_fields(void **state)
{
	size_t size = fill("/bin/ls", "ls\0-l\0/tmp\0", 11);
	struct pb_exec_buf b;
	const Podsnoop__V1__Exec *m;
	struct exec_view v;

	(void)state;
	assert_int_equal(exec_decode(ev, size, 64, &v), 0);
	v.wall_ns = 1700000000123456789ull;
	m = pbconv_exec(&b, &v)->exec;
	assert_true(m->ts_ns == 1700000000123456789ull);
	assert_int_equal(m->task->pid, 4242);
	assert_int_equal(m->task->tid, 4243);
	assert_int_equal(m->task->ppid, 1);
	assert_int_equal(m->task->uid, 1000);
	assert_int_equal(m->task->gid, 100);
	assert_int_equal(m->task->comm.len, 4);
	assert_memory_equal(m->task->comm.data, "bash", 4);
	assert_true(m->task->cgroup_id == 0x123456789abcull);
	assert_true(m->task->mntns_id == 4026531840ull);
	assert_null(m->task->pod);
	assert_int_equal(m->filename.len, 7);
	assert_int_equal(m->n_args, 3);
	assert_int_equal(m->args[1].len, 2);
	assert_memory_equal(m->args[2].data, "/tmp", 4);
	assert_false(m->args_truncated);
	assert_int_equal(m->retval, -2);
	assert_string_equal(m->hook, "syscalls");
	assert_false(m->read_fault);
	round_trip(&v);
}

static void test_pod_and_flags(void **state)
{
	size_t size = fill("/usr/bin/env", "env\0A=1\0", 8);
	struct pod_ref pod = { "default", "web-0", "3f1c", "nginx", "abcdef", "containerd" };
	struct pod_ref partial = { "kube-system", NULL, NULL, NULL, NULL, NULL };
	struct exec_view v;

	(void)state;
	ev->flags = EXEC_F_READ_FAULT | EXEC_F_ARGS_TRUNCATED;
	ev->method = EXEC_M_SCHED_BTF;
	assert_int_equal(exec_decode(ev, size, 64, &v), 0);
	v.pod = &pod;
	round_trip(&v);
	v.pod = &partial;
	round_trip(&v);
}

static void test_no_args_and_odd_bytes(void **state)
{
	struct exec_view v;
	size_t size;

	(void)state;
	size = fill("/tmp/\xff\xfe\x01name\"q", "", 0);
	memcpy(ev->comm, "\xc3\x28\x7f", 4);
	assert_int_equal(exec_decode(ev, size, 64, &v), 0);
	round_trip(&v);
	size = fill("/x", "\xe2\x82\0\n\t\\\0", 7);
	assert_int_equal(exec_decode(ev, size, 64, &v), 0);
	round_trip(&v);
}

static void test_many_args_and_limits(void **state)
{
	static char args[2 * EXEC_ARGS_BYTES_CAP];
	struct pb_exec_buf *b = calloc(1, sizeof(*b));
	struct exec_view v;
	size_t size, len = 0;

	(void)state;
	assert_non_null(b);
	for (int i = 0; i < 300; i++)
		len += (size_t)sprintf(args + len, "a%d", i) + 1;
	size = fill("/bin/many", args, len);
	/* exec_decode keeps at most max_args and flags the rest */
	assert_int_equal(exec_decode(ev, size, EXEC_ARGC_CAP, &v), 0);
	assert_int_equal(v.argc, EXEC_ARGC_CAP);
	assert_true(v.args_truncated);
	assert_int_equal(pbconv_exec(b, &v)->exec->n_args, EXEC_ARGC_CAP);
	round_trip(&v);
	/* a view claiming more args than the buffer holds is cut and flagged */
	v.argc = EXEC_ARGC_CAP + 5;
	v.args_truncated = false;
	assert_int_equal(pbconv_exec(b, &v)->exec->n_args, EXEC_ARGC_CAP);
	assert_true(b->exec.args_truncated);
	free(b);
}

/* What no agent sends is refused, never written half. */
static void test_reverse_refuses_bad_messages(void **state)
{
	Podsnoop__V1__Exec m = PODSNOOP__V1__EXEC__INIT;
	Podsnoop__V1__Task t = PODSNOOP__V1__TASK__INIT;
	ProtobufCBinaryData args[2] = { { 3, (uint8_t *)"a\0b" }, { 1, (uint8_t *)"c" } };
	static uint8_t big[EXEC_ARGS_BYTES_CAP * 2 + 10];
	struct exec_view v;

	(void)state;
	m.task = &t;
	m.n_args = 2;
	m.args = args;
	assert_int_equal(pbconv_exec_view(&m, vb, &v), -EINVAL); /* NUL inside an arg */
	args[0].len = 1;
	assert_int_equal(pbconv_exec_view(&m, vb, &v), 0);
	assert_int_equal(v.argc, 2);
	assert_null(v.pod);
	t.comm.len = 17;
	t.comm.data = big;
	assert_int_equal(pbconv_exec_view(&m, vb, &v), -EINVAL); /* comm too long */
	t.comm.len = 0;
	args[0].len = sizeof(big);
	args[0].data = big;
	memset(big, 'x', sizeof(big));
	assert_int_equal(pbconv_exec_view(&m, vb, &v), -EINVAL); /* args too long */
	m.n_args = 0;
	m.filename.len = EXEC_FILENAME_MAX;
	m.filename.data = big;
	assert_int_equal(pbconv_exec_view(&m, vb, &v), -EINVAL); /* path too long */
	m.filename.len = 2;
	m.filename.data = (uint8_t *)"\0x";
	assert_int_equal(pbconv_exec_view(&m, vb, &v), -EINVAL); /* NUL in the path */
	/* an unknown hook name is kept as "unknown", the record still written */
	m.filename.len = 0;
	m.hook = "from_the_future";
	assert_int_equal(pbconv_exec_view(&m, vb, &v), 0);
	assert_int_equal(v.e->method, 0);
}

/* ---- the other record types: view -> Record -> bytes -> Record -> view -> NDJSON ---- */

static struct {
	struct open_view_buf open;
	struct bio_view_buf bio;
	struct bio_hist_view_buf bio_hist;
	struct fs_view_buf fs;
	struct cache_view_buf cache;
} *rb;

static int setup_more(void **state)
{
	(void)state;
	rb = calloc(1, sizeof(*rb));
	return rb ? 0 : -1;
}

static int teardown_more(void **state)
{
	(void)state;
	free(rb);
	return 0;
}

typedef void (*render_fn)(FILE *f, const void *view);

static char *render(render_fn fn, const void *view)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	assert_non_null(f);
	fn(f, view);
	fclose(f);
	return buf;
}

static void r_open(FILE *f, const void *v) { ndjson_sink.open(f, v); }
static void r_bio(FILE *f, const void *v) { ndjson_sink.bio(f, v); }
static void r_hist(FILE *f, const void *v) { ndjson_sink.bio_hist(f, v); }
static void r_fs(FILE *f, const void *v) { ndjson_sink.fs(f, v); }
static void r_cache(FILE *f, const void *v) { ndjson_sink.cache(f, v); }

/* Pack and unpack r; return the copy (free with podsnoop__v1__record__free_unpacked). */
static Podsnoop__V1__Record *through_bytes(const Podsnoop__V1__Record *r)
{
	size_t len = podsnoop__v1__record__get_packed_size(r);
	uint8_t *p = malloc(len + 1);
	Podsnoop__V1__Record *back;

	assert_non_null(p);
	assert_int_equal(podsnoop__v1__record__pack(r, p), len);
	back = podsnoop__v1__record__unpack(NULL, len, p);
	free(p);
	assert_non_null(back);
	assert_int_equal(back->kind_case, r->kind_case);
	return back;
}

/* NDJSON of the original view against NDJSON of what came back */
static void same_ndjson(render_fn fn, const void *orig, const void *back)
{
	char *want = render(fn, orig), *got = render(fn, back);

	assert_string_equal(got, want);
	free(want);
	free(got);
}

static const struct pod_ref test_pod = { "ns1", "web-0", "uid-1", "c1", "cid-1", "containerd" };

static void test_open_round_trip(void **state)
{
	static struct open_event e;
	struct pb_open_buf b;
	Podsnoop__V1__Record *back;
	struct open_view v, v2;
	const char *path = "/etc/\xffpasswd";

	(void)state;
	for (int variant = 0; variant < 3; variant++) {
		memset(&e, 0, sizeof(e));
		strcpy(e.path, path);
		e.path_len = (__u32)strlen(path) + 1;
		e.ts_ns = 5;
		e.cgroup_id = 77;
		e.mntns_id = 4026531840ull;
		e.latency_ns = 1234;
		e.flags = 0x80241;
		e.mode = 0644;
		e.ret = variant ? -2 : 3;
		e.dirfd = -100;
		e.pid = 10;
		e.tid = 11;
		e.uid = 1000;
		e.syscall = variant == 1 ? OPEN_SC_OPEN : OPEN_SC_OPENAT2;
		e.rflags = variant == 1 ? OPEN_F_NO_DIRFD | OPEN_F_READ_FAULT :
			   variant == 2 ? OPEN_F_TRUNCATED : 0;
		e.method = variant == 2 ? OPEN_M_KPROBE : OPEN_M_SYSCALLS;
		strcpy(e.comm, "cat");
		assert_int_equal(open_decode(&e, OPEN_EVENT_HDR_SIZE + e.path_len, &v), 0);
		v.pod = variant == 0 ? &test_pod : NULL;
		back = through_bytes(pbconv_open(&b, &v));
		assert_int_equal(back->open->task->uid, 1000);
		assert_int_equal(back->open->ret, e.ret);
		assert_int_equal(pbconv_open_view(back->open, &rb->open, &v2), 0);
		same_ndjson(r_open, &v, &v2);
		podsnoop__v1__record__free_unpacked(back, NULL);
	}
}

static void test_bio_round_trip(void **state)
{
	static struct bio_event e;
	struct pb_bio_buf b;
	Podsnoop__V1__Record *back;
	struct bio_view v, v2;

	(void)state;
	for (int variant = 0; variant < 3; variant++) {
		memset(&e, 0, sizeof(e));
		e.cgroup_id = 99;
		e.sector = 123456789;
		e.queue_ns = 5000;
		e.latency_ns = 70000;
		e.blkcg_id = variant == 2 ? 1234 : 0;
		e.bytes = 4096;
		e.dev = 254u << 20 | 16;
		e.pid = 55;
		e.tid = 56;
		e.status = variant == 1 ? 10 : 0;
		e.op = variant == 1 ? BIO_OP_FLUSH : BIO_OP_WRITE;
		e.op_flags = BIO_OPF_SYNC | BIO_OPF_META | (variant == 1 ? BIO_OPF_PREFLUSH : 0);
		e.attribution = variant == 2 ? BIO_A_BLKCG : BIO_A_SUBMITTER;
		e.method = variant == 2 ? BIO_M_GETRQ_RAW : BIO_M_IO_START;
		e.flags = variant == 0 ? BIO_F_QUEUED : variant == 1 ? BIO_F_NO_ISSUE :
			  BIO_F_BLKCG_V1 | BIO_F_MERGED;
		strcpy(e.comm, "kworker/u4:2");
		if (variant == 2) /* a name filling the field, without a NUL */
			memset(e.disk, 'x', sizeof(e.disk));
		else
			strcpy(e.disk, "vda");
		assert_int_equal(bio_decode(&e, sizeof(e), &v), 0);
		v.pod = variant == 0 ? &test_pod : NULL;
		back = through_bytes(pbconv_bio(&b, &v));
		assert_int_equal(back->bio->dev_major, 254);
		assert_int_equal(back->bio->dev_minor, 16);
		assert_int_equal(pbconv_bio_view(back->bio, &rb->bio, &v2), 0);
		same_ndjson(r_bio, &v, &v2);
		assert_int_equal(back->bio->merged, variant == 2);
		podsnoop__v1__record__free_unpacked(back, NULL);
	}
}

static void test_bio_hist_round_trip(void **state)
{
	__u64 slots[BIO_HIST_SLOTS] = { 0 };
	struct pb_bio_hist_buf b;
	Podsnoop__V1__Record *back;
	struct bio_hist_view v = {
		.cgroup_id = 42, .wall_ns = 1700000000000000000ull, .interval_ns = 10000000000ull,
		.dev = 7u << 20 | 3, .disk = "loop3", .disk_len = 5, .op = "W", .slots = slots,
		.count = 0, .sum_ns = 987654321,
	}, v2;

	(void)state;
	slots[0] = 1;
	slots[5] = 17;
	slots[BIO_HIST_SLOTS - 1] = 2; /* the open-ended last bucket */
	v.count = 20;
	v.merged = 3;
	v.pod = &test_pod;
	back = through_bytes(pbconv_bio_hist(&b, &v));
	assert_int_equal(back->bio_hist->n_buckets, 3);
	assert_int_equal(back->bio_hist->buckets[0]->lower, 0);
	assert_int_equal(back->bio_hist->buckets[0]->upper, 1);
	assert_int_equal(back->bio_hist->buckets[1]->lower, 32);
	assert_int_equal(back->bio_hist->buckets[1]->upper, 63);
	assert_int_equal(back->bio_hist->buckets[2]->upper, 0);
	assert_string_equal(back->bio_hist->unit, "usecs");
	assert_int_equal(pbconv_bio_hist_view(back->bio_hist, &rb->bio_hist, &v2), 0);
	same_ndjson(r_hist, &v, &v2);
	assert_int_equal(v2.merged, 3);
	/* a bucket that is not one of the agent's is refused */
	back->bio_hist->buckets[1]->lower = 33;
	assert_int_equal(pbconv_bio_hist_view(back->bio_hist, &rb->bio_hist, &v2), -EINVAL);
	back->bio_hist->buckets[1]->lower = 32;
	back->bio_hist->buckets[1]->upper = 64;
	assert_int_equal(pbconv_bio_hist_view(back->bio_hist, &rb->bio_hist, &v2), -EINVAL);
	podsnoop__v1__record__free_unpacked(back, NULL);
}

static void test_fs_round_trip(void **state)
{
	static struct fs_event e;
	static char out[FS_PATH_MAX + FS_NAME_MAX + 8];
	static const char comps[] = "f\xc3\xa9.db\0data\0var\0";
	struct pb_fs_buf b;
	Podsnoop__V1__Record *back;
	struct fs_view v, v2;

	(void)state;
	for (int variant = 0; variant < 3; variant++) {
		memset(&e, 0, sizeof(e));
		memcpy(e.buf, comps, sizeof(comps) - 1);
		e.path_len = sizeof(comps) - 1;
		e.latency_ns = 15000000;
		e.cgroup_id = 9;
		e.mntns_id = 8;
		e.ret = variant == 0 ? 65536 : variant == 1 ? -5 : 7;
		e.offset = 1 << 20;
		e.size = variant == 1 ? 0 : 65536;
		e.ino = 131;
		e.dev = 8u << 20 | 1;
		e.pid = 3;
		e.tid = 4;
		e.op = variant == 0 ? FS_OP_WRITE : variant == 1 ? FS_OP_FSYNC : FS_OP_OPEN;
		e.fs = variant == 2 ? FS_T_XFS : FS_T_EXT4;
		e.method = variant == 2 ? FS_M_SYSCALLS : FS_M_FENTRY;
		e.flags = variant == 1 ? FS_F_DATASYNC | FS_F_PATH_TRUNCATED :
			  variant == 2 ? FS_F_OVERLAY | FS_F_READ_FAULT : 0;
		strcpy(e.comm, "postgres");
		assert_int_equal(fs_decode(&e, FS_EVENT_HDR_SIZE + e.path_len, out, &v), 0);
		v.pod = variant == 0 ? &test_pod : NULL;
		back = through_bytes(pbconv_fs(&b, &v));
		assert_int_equal(back->fs->ret, e.ret);
		assert_int_equal(pbconv_fs_view(back->fs, &rb->fs, &v2), 0);
		same_ndjson(r_fs, &v, &v2);
		podsnoop__v1__record__free_unpacked(back, NULL);
	}
}

static void test_cache_round_trip(void **state)
{
	struct pb_cache_buf b;
	Podsnoop__V1__Record *back;
	struct cache_view v, v2;

	(void)state;
	for (int variant = 0; variant < 3; variant++) {
		memset(&v, 0, sizeof(v));
		v.wall_ns = 1700000000000000001ull;
		v.interval_ns = 1000000000;
		v.cgroup_id = 5;
		v.mntns_id = 6;
		v.method = variant == 0 ? CACHE_M_FENTRY : CACHE_M_TRACEPOINT;
		v.accesses_known = variant != 2;
		v.estimated = variant == 1;
		v.ratio_known = variant == 0;
		v.accesses = 1000;
		v.hits = 990;
		v.misses = 10;
		v.dirtied = 3;
		v.added = 13;
		v.buf_dirtied = 1;
		v.hit_ratio = 0.99;
		v.host_buffers_kb = 1024;
		v.host_cached_kb = 204800;
		v.pod = variant == 0 ? &test_pod : NULL;
		back = through_bytes(pbconv_cache(&b, &v));
		assert_int_equal(pbconv_cache_view(back->cache, &rb->cache, &v2), 0);
		same_ndjson(r_cache, &v, &v2);
		podsnoop__v1__record__free_unpacked(back, NULL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pod_and_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_args_and_odd_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_args_and_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reverse_refuses_bad_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_round_trip, setup_more, teardown_more),
		cmocka_unit_test_setup_teardown(test_bio_round_trip, setup_more, teardown_more),
		cmocka_unit_test_setup_teardown(test_bio_hist_round_trip, setup_more, teardown_more),
		cmocka_unit_test_setup_teardown(test_fs_round_trip, setup_more, teardown_more),
		cmocka_unit_test_setup_teardown(test_cache_round_trip, setup_more, teardown_more),
	};

	return cmocka_run_group_tests_name("pbconv", tests, NULL, NULL);
}
