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
#include "../../agent/exec.h"
#include "../../agent/pbconv.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pod_and_flags, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_args_and_odd_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_args_and_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reverse_refuses_bad_messages, setup, teardown),
	};

	return cmocka_run_group_tests_name("pbconv", tests, NULL, NULL);
}
