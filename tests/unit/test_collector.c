// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The collector without HTTP: its de-duplication (collector/dedup.c),
 * bounded, and not to be poisoned.
 */
#include <stdio.h>
#include <stdlib.h>

#include "unit.h"
#include "collector/dedup.h"

static void test_dedup(void **state)
{
	struct dedup d;

	(void)state;
	dedup_init(&d, 100);
	assert_false(dedup_seen(&d, "a", 1));
	assert_int_equal(dedup_mark(&d, "a", 1), 0);
	assert_true(dedup_seen(&d, "a", 1));
	assert_false(dedup_seen(&d, "b", 1)); /* per agent */
	assert_int_equal(dedup_mark(&d, "a", 3), 0); /* out of order */
	assert_false(dedup_seen(&d, "a", 2));
	assert_true(dedup_seen(&d, "a", 3));
	assert_int_equal(d.newest->n, 2);
	assert_int_equal(dedup_mark(&d, "a", 2), 0); /* the gap fills */
	assert_true(dedup_seen(&d, "a", 2));
	assert_int_equal(d.newest->n, 1);
	assert_int_equal(dedup_mark(&d, "a", 3), 0); /* again: no change */
	assert_int_equal(d.newest->n, 1);
	/* a gap that never fills (a batch refused) costs one range, not a seq each */
	for (uint64_t s = 5; s < 100000; s++)
		assert_int_equal(dedup_mark(&d, "a", s), 0);
	assert_int_equal(d.newest->n, 2);
	assert_false(dedup_seen(&d, "a", 4));
	assert_true(dedup_seen(&d, "a", 99999));
	dedup_free(&d);
}

/*
 * Issue 15: 65,537 spoofed batches with huge seqs for a victim's id made
 * every later real batch a duplicate. Now each marks only its own seq; the
 * victim's own next batches are new, and its state stays DEDUP_RANGES.
 */
static void test_dedup_not_poisoned(void **state)
{
	struct dedup d;
	uint64_t fake = 1ull << 62;

	(void)state;
	dedup_init(&d, 100);
	for (uint64_t s = 1; s <= 10; s++)
		assert_int_equal(dedup_mark(&d, "victim", s), 0);
	for (uint64_t i = 0; i < 65537; i++, fake += 2)
		assert_int_equal(dedup_mark(&d, "victim", fake), 0);
	assert_true(d.newest->n <= DEDUP_RANGES);
	for (uint64_t s = 11; s <= 1000; s++) {
		assert_false(dedup_seen(&d, "victim", s)); /* new: written */
		assert_int_equal(dedup_mark(&d, "victim", s), 0);
		assert_true(dedup_seen(&d, "victim", s)); /* its retry: dropped */
	}
	assert_true(dedup_seen(&d, "victim", 500));
	/* spoofed batches between each of its own: at worst a retry is written twice */
	for (uint64_t s = 1001; s <= 1100; s++) {
		assert_false(dedup_seen(&d, "victim", s));
		assert_int_equal(dedup_mark(&d, "victim", s), 0);
		for (int i = 0; i < 100; i++, fake += 2)
			assert_int_equal(dedup_mark(&d, "victim", fake), 0);
	}
	assert_true(d.newest->n <= DEDUP_RANGES);
	dedup_free(&d);
}

/* Agents past the bound: the least recently seen is forgotten. */
static void test_dedup_bounded(void **state)
{
	char id[32];
	struct dedup d;

	(void)state;
	dedup_init(&d, 1000);
	for (int i = 0; i < 100000; i++) {
		snprintf(id, sizeof(id), "agent%d", i);
		assert_int_equal(dedup_mark(&d, id, 1), 0);
		if (i % 10 == 0) /* one that keeps sending stays */
			assert_int_equal(dedup_mark(&d, "steady", (uint64_t)i / 10 + 1), 0);
	}
	assert_int_equal(d.n_agents, 1000);
	assert_int_equal(d.forgotten_agents, 100000 + 1 - 1000);
	assert_true(dedup_seen(&d, "steady", 1)); /* (seq 1..10000) */
	assert_true(dedup_seen(&d, "agent99999", 1));
	assert_false(dedup_seen(&d, "agent0", 1)); /* forgotten: a retry is written again */
	dedup_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dedup),
		cmocka_unit_test(test_dedup_not_poisoned),
		cmocka_unit_test(test_dedup_bounded),
	};

	return cmocka_run_group_tests_name("collector", tests, NULL, NULL);
}
