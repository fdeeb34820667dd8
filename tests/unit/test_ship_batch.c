// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Batches: records packed one by one decode as one Batch (with Google's
 * protobuf too: tests/integration/test_ship.py), limits close them, loss
 * counters travel once and come back when a batch is lost.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "exec_fixture.h"
#include "agent/tracers/exec.h"
#include "lib/pbconv.h"
#include "lib/batch.h"

static Podsnoop__V1__Agent agent = {
	PROTOBUF_C_MESSAGE_INIT(&podsnoop__v1__agent__descriptor),
	"node-1", "0123456789abcdef0123456789abcdef", "9.9", "6.18.0", 1700000000000000000ull,
};

static struct exec_event ev;

/* An exec record whose first argument is tag. */
static const Podsnoop__V1__Record *exec_rec(struct pb_exec_buf *b, const char *tag, size_t pad)
{
	static char args[2 * EXEC_ARGS_BYTES_CAP];
	struct exec_view v;
	size_t al, size;

	al = (size_t)snprintf(args, sizeof(args), "%s", tag) + 1;
	memset(args + al, 'p', pad);
	args[al + pad] = '\0';
	al += pad ? pad + 1 : 0;
	size = exec_fill(&ev, "/bin/x", args, al);
	ev.pid = 7;
	ev.method = EXEC_M_SYSCALLS;
	assert_int_equal(exec_decode(&ev, size, 64, &v), 0);
	v.wall_ns = 42;
	return pbconv_exec(b, &v);
}

static void test_pack_close_decode(void **state)
{
	struct batch_builder bb;
	struct pb_exec_buf b;
	struct loss_ent losses[2] = {
		{ .tracer = "exec", .stage = "kernel_ringbuf", .reason = "", .count = 5, .total = 9 },
		{ .tracer = "exec", .stage = "collector", .reason = "http_400", .count = 3,
		  .total = 3 },
	};
	Podsnoop__V1__Batch *m;
	struct batch *out;
	char tag[16];

	(void)state;
	assert_int_equal(bb_init(&bb, 100, 65536, 1, &agent), 0);
	assert_true(bb_empty(&bb));
	for (int i = 0; i < 10; i++) {
		snprintf(tag, sizeof(tag), "r%d", i);
		assert_int_equal(bb_add(&bb, exec_rec(&b, tag, 0)), 0);
	}
	assert_false(bb_full(&bb));
	assert_int_equal(bb_close(&bb, 17, 1234, losses, 2, &out), 0);
	assert_int_equal(out->seq, 17);
	assert_int_equal(out->n_records, 10);
	assert_int_equal(out->counts[REC_EXEC], 10);
	assert_int_equal(out->n_losses, 2);
	assert_true(out->len > 18 && out->body[0] == 0x1f && out->body[1] == 0x8b); /* gzip */

	assert_int_equal(batch_decode(out->body, out->len, 1 << 20, &m), 0);
	assert_string_equal(m->agent->node, "node-1");
	assert_string_equal(m->agent->agent_id, agent.agent_id);
	assert_string_equal(m->agent->version, "9.9");
	assert_string_equal(m->agent->kernel, "6.18.0");
	assert_true(m->agent->started_ns == agent.started_ns);
	assert_int_equal(m->seq, 17);
	assert_int_equal(m->sent_ns, 1234);
	assert_int_equal(m->n_losses, 2);
	assert_string_equal(m->losses[1]->stage, "collector");
	assert_string_equal(m->losses[1]->reason, "http_400");
	assert_int_equal(m->losses[0]->count, 5);
	assert_int_equal(m->losses[0]->total, 9);
	assert_int_equal(m->n_records, 10);
	for (int i = 0; i < 10; i++) { /* in the order they were added */
		snprintf(tag, sizeof(tag), "r%d", i);
		assert_int_equal(m->records[i]->kind_case, PODSNOOP__V1__RECORD__KIND_EXEC);
		assert_int_equal(m->records[i]->exec->args[0].len, strlen(tag));
		assert_memory_equal(m->records[i]->exec->args[0].data, tag, strlen(tag));
		assert_int_equal(m->records[i]->exec->task->pid, 7);
	}
	podsnoop__v1__batch__free_unpacked(m, NULL);

	/* the same counts come back from the body alone (a spooled batch) */
	{
		uint8_t *copy = malloc(out->len);
		struct batch *sp;

		assert_non_null(copy);
		memcpy(copy, out->body, out->len);
		sp = batch_from_body(copy, out->len, 99);
		assert_false(sp->have_meta);
		assert_int_equal(batch_load_meta(sp, batch_max_raw(64 * 1024)), 0);
		assert_int_equal(sp->seq, 17);
		assert_int_equal(sp->n_records, 10);
		assert_int_equal(sp->counts[REC_EXEC], 10);
		assert_int_equal(sp->n_losses, 2);
		assert_string_equal(sp->losses[1].reason, "http_400");
		assert_int_equal(sp->losses[0].total, 9);
		batch_free(sp);
	}
	batch_free(out);

	/* an empty batch carrying only losses is a valid batch */
	bb_reset(&bb);
	assert_int_equal(bb_close(&bb, 18, 1, losses, 1, &out), 0);
	assert_int_equal(batch_decode(out->body, out->len, 1 << 20, &m), 0);
	assert_int_equal(m->n_records, 0);
	assert_int_equal(m->n_losses, 1);
	podsnoop__v1__batch__free_unpacked(m, NULL);
	batch_free(out);
	bb_free(&bb);
}

static void test_limits(void **state)
{
	struct batch_builder bb;
	struct pb_exec_buf b;
	int n = 0, err;

	(void)state;
	assert_int_equal(bb_init(&bb, 3, 65536, 1, &agent), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(bb_add(&bb, exec_rec(&b, "x", 0)), 0);
	assert_true(bb_full(&bb));
	bb_free(&bb);

	/* by bytes: 1000-byte records into 64 KiB */
	assert_int_equal(bb_init(&bb, 1000000, 65536, 1, &agent), 0);
	while ((err = bb_add(&bb, exec_rec(&b, "y", 1000))) == 0)
		n++;
	assert_int_equal(err, -ENOSPC);
	assert_true(n >= 60 && n <= 65);
	assert_true(bb.len <= 65536);
	bb_reset(&bb);
	assert_int_equal(bb_add(&bb, exec_rec(&b, "y", 1000)), 0);
	/* a record bigger than any batch can never go */
	bb_free(&bb);
	assert_int_equal(bb_init(&bb, 10, 65536, 1, &agent), 0);
	{
		Podsnoop__V1__Record r = PODSNOOP__V1__RECORD__INIT;
		Podsnoop__V1__Exec x = PODSNOOP__V1__EXEC__INIT;
		static uint8_t big[70000];

		x.filename.data = big;
		x.filename.len = sizeof(big);
		r.kind_case = PODSNOOP__V1__RECORD__KIND_EXEC;
		r.exec = &x;
		assert_int_equal(bb_add(&bb, &r), -E2BIG);
	}
	bb_free(&bb);
}

static void test_loss_tally(void **state)
{
	struct loss_ent snap[LOSS_KEYS_MAX], snap2[LOSS_KEYS_MAX];
	struct loss_tally t;
	size_t n;

	(void)state;
	loss_tally_init(&t);
	assert_int_equal(loss_tally_take(&t, snap), 0);
	loss_tally_add(&t, "exec", "spool", "full", 10);
	loss_tally_add(&t, "exec", "spool", "full", 5);
	loss_tally_add(&t, "exec", "kernel_ringbuf", "", 2);
	loss_tally_add(&t, "exec", "kernel_ringbuf", "", 0); /* nothing: no new key */
	n = loss_tally_take(&t, snap);
	assert_int_equal(n, 2);
	assert_string_equal(snap[0].stage, "spool");
	assert_int_equal(snap[0].count, 15);
	assert_int_equal(snap[0].total, 15);

	/* counted again meanwhile: only what the batch carried is committed */
	loss_tally_add(&t, "exec", "spool", "full", 1);
	loss_tally_commit(&t, snap, n);
	n = loss_tally_take(&t, snap2);
	assert_int_equal(n, 1);
	assert_int_equal(snap2[0].count, 1);
	assert_int_equal(snap2[0].total, 16);

	/* the batch that carried snap was lost: its counts travel again */
	loss_tally_readd(&t, snap, 2);
	n = loss_tally_take(&t, snap2);
	assert_int_equal(n, 2);
	assert_int_equal(snap2[0].count, 16);
	assert_int_equal(snap2[0].total, 16);
	assert_int_equal(snap2[1].count, 2);

	/* more kinds than slots: the rest is counted under one "other" key */
	for (int i = 0; i < LOSS_KEYS_MAX + 10; i++) {
		char reason[24];

		snprintf(reason, sizeof(reason), "r%d", i);
		loss_tally_add(&t, "fs", "collector", reason, 1);
	}
	n = loss_tally_take(&t, snap2);
	assert_int_equal(n, LOSS_KEYS_MAX);
	assert_string_equal(snap2[LOSS_KEYS_MAX - 1].tracer, "other");
	assert_int_equal(snap2[LOSS_KEYS_MAX - 1].count, 10 + 2 + 1);
	loss_tally_destroy(&t);
}

/*
 * Per-cgroup losses (rate_limited): one entry per cgroup, with its pod, into
 * the batch as Loss.task and back from a spooled body; the entries of cgroups
 * whose counts a batch carried make room for new ones, so that a node's
 * history of throttled pods never folds today's into "other".
 */
static void test_loss_per_cgroup(void **state)
{
	static struct loss_ent snap[LOSS_KEYS_MAX];
	struct pod_ref pod = { "shop", "cart-0", "uid-1", "cart", "c0ffee", "containerd" };
	struct batch_builder bb;
	struct loss_tally t;
	Podsnoop__V1__Batch *m;
	struct batch *out;
	size_t n;

	(void)state;
	loss_tally_init(&t);
	loss_tally_add_cgroup(&t, "open", "rate_limited", 101, &pod, 7);
	loss_tally_add_cgroup(&t, "open", "rate_limited", 202, NULL, 3);
	loss_tally_add_cgroup(&t, "open", "rate_limited", 101, NULL, 1);
	loss_tally_add(&t, "open", "kernel_ringbuf", "", 2);
	n = loss_tally_take(&t, snap);
	assert_int_equal(n, 3);
	assert_true(snap[0].has_cgroup && snap[0].cgroup_id == 101 && snap[0].has_pod);
	assert_int_equal(snap[0].count, 8);
	assert_string_equal(snap[0].pod.pod, "cart-0");
	assert_true(snap[1].has_cgroup && snap[1].cgroup_id == 202 && !snap[1].has_pod);
	assert_false(snap[2].has_cgroup);

	assert_int_equal(bb_init(&bb, 100, 65536, 1, &agent), 0);
	assert_int_equal(bb_close(&bb, 5, 1, snap, n, &out), 0);
	assert_int_equal(batch_decode(out->body, out->len, 1 << 20, &m), 0);
	assert_int_equal(m->n_losses, 3);
	assert_non_null(m->losses[0]->task);
	assert_int_equal(m->losses[0]->task->cgroup_id, 101);
	assert_string_equal(m->losses[0]->task->pod->namespace_, "shop");
	assert_string_equal(m->losses[0]->task->pod->name, "cart-0");
	assert_string_equal(m->losses[0]->task->pod->runtime, "containerd");
	assert_int_equal(m->losses[1]->task->cgroup_id, 202);
	assert_null(m->losses[1]->task->pod);
	assert_null(m->losses[2]->task);
	podsnoop__v1__batch__free_unpacked(m, NULL);
	{ /* a spooled batch keeps the keys: its losses can be counted again */
		uint8_t *copy = malloc(out->len);
		struct batch *sp;

		assert_non_null(copy);
		memcpy(copy, out->body, out->len);
		sp = batch_from_body(copy, out->len, 9);
		assert_int_equal(batch_load_meta(sp, batch_max_raw(64 * 1024)), 0);
		assert_true(sp->losses[0].has_cgroup && sp->losses[0].cgroup_id == 101);
		assert_string_equal(sp->losses[0].pod.container, "cart");
		assert_false(sp->losses[2].has_cgroup);
		batch_free(sp);
	}
	batch_free(out);
	bb_free(&bb);

	/* carried: their slots may go to new cgroups, never folded into "other" */
	loss_tally_commit(&t, snap, n);
	for (uint64_t cg = 1000; cg < 1000 + 4 * LOSS_KEYS_MAX; cg++) {
		loss_tally_add_cgroup(&t, "exec", "rate_limited", cg, NULL, 2);
		n = loss_tally_take(&t, snap);
		assert_int_equal(n, 1);
		assert_true(snap[0].cgroup_id == cg && snap[0].count == 2);
		loss_tally_commit(&t, snap, n);
	}
	/* but never one with a count still to carry: 70 cgroups at once overflow */
	for (uint64_t cg = 5000; cg < 5070; cg++)
		loss_tally_add_cgroup(&t, "exec", "rate_limited", cg, NULL, 1);
	n = loss_tally_take(&t, snap);
	/* every slot but kernel_ringbuf's (idle, kept: not a cgroup's) and "other" */
	assert_int_equal(n, LOSS_KEYS_MAX - 1);
	for (size_t i = 0; i < n - 1; i++)
		assert_true(snap[i].has_cgroup && snap[i].cgroup_id >= 5000 && snap[i].count == 1);
	assert_string_equal(snap[n - 1].tracer, "other");
	assert_int_equal(snap[n - 1].count, 70 - (n - 1));
	loss_tally_destroy(&t);
}

static void test_gunzip_refuses(void **state)
{
	static const uint8_t junk[] = "not gzip at all";
	uint8_t *out;
	size_t len;
	Podsnoop__V1__Batch *m;
	struct batch_builder bb;
	struct pb_exec_buf b;
	struct batch *bt;

	(void)state;
	assert_int_equal(pb_gunzip(junk, sizeof(junk), 1 << 20, &out, &len), -EBADMSG);
	assert_int_equal(bb_init(&bb, 100, 1 << 20, 6, &agent), 0);
	for (int i = 0; i < 50; i++)
		assert_int_equal(bb_add(&bb, exec_rec(&b, "z", 2000)), 0);
	assert_int_equal(bb_close(&bb, 1, 1, NULL, 0, &bt), 0);
	assert_true(bt->len < 50 * 2000 / 10); /* repetitive data: gzip works */
	/* bounded output: a small limit refuses a big batch (zip bombs) */
	assert_int_equal(batch_decode(bt->body, bt->len, 50000, &m), -E2BIG);
	/* cut short: refused */
	assert_int_equal(batch_decode(bt->body, bt->len - 9, 1 << 20, &m), -EBADMSG);
	assert_int_equal(batch_decode(bt->body, bt->len, 1 << 20, &m), 0);
	podsnoop__v1__batch__free_unpacked(m, NULL);
	batch_free(bt);
	bb_free(&bb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pack_close_decode),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_loss_tally),
		cmocka_unit_test(test_loss_per_cgroup),
		cmocka_unit_test(test_gunzip_refuses),
	};

	return cmocka_run_group_tests_name("ship_batch", tests, NULL, NULL);
}
