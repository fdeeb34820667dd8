// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Attribution's pieces: label selectors, the deferral FIFO, snapshots. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "agent/attrib/defer.h"
#include "agent/attrib/selector.h"
#include "agent/attrib/snapshot.h"

static bool match(const struct pod_selector *s, const char *ns, const char *name,
		  const char *labels)
{
	/* "k=v,k2=v2" */
	const char *keys[16], *vals[16];
	char buf[256], *save = NULL, *tok;
	size_t n = 0;

	strcpy(buf, labels);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		*eq = '\0';
		keys[n] = tok;
		vals[n++] = eq + 1;
	}
	return sel_match(s, ns, name, keys, vals, n);
}

static void test_selector(void **state)
{
	static struct pod_selector s;
	static const char *const nss[] = { "team-a", "team-b" };
	static const char *const pods[] = { "web" };
	char err[200];

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_false(sel_active(&s));
	assert_true(match(&s, "x", "y", "a=b"));
	assert_int_equal(sel_parse(&s, "app=web, tier==front,env!=prod,owner,!canary", err,
				   sizeof(err)), 0);
	assert_int_equal(s.n_reqs, 5);
	assert_true(sel_active(&s));
	assert_true(match(&s, "n", "p", "app=web,tier=front,owner=me"));
	assert_true(match(&s, "n", "p", "app=web,tier=front,owner=,env=dev"));
	assert_false(match(&s, "n", "p", "app=web,tier=front,owner=me,env=prod"));
	assert_false(match(&s, "n", "p", "app=web,tier=front"));			/* owner missing */
	assert_false(match(&s, "n", "p", "app=web,tier=front,owner=me,canary=1"));
	assert_false(match(&s, "n", "p", "app=db,tier=front,owner=me"));
	assert_false(match(&s, "n", "p", "tier=front,owner=me"));

	memset(&s, 0, sizeof(s));
	s.namespaces = nss;
	s.n_namespaces = 2;
	s.pods = pods;
	s.n_pods = 1;
	assert_true(sel_active(&s));
	assert_true(match(&s, "team-b", "web", "x=y"));
	assert_false(match(&s, "team-c", "web", "x=y"));
	assert_false(match(&s, "team-a", "db", "x=y"));

	memset(&s, 0, sizeof(s));
	assert_int_equal(sel_parse(&s, "app.kubernetes.io/name=web", err, sizeof(err)), 0);
	assert_string_equal(s.reqs[0].key, "app.kubernetes.io/name");
	assert_int_equal(sel_parse(&s, "app in (a,b)", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "set-based"));
	assert_int_equal(sel_parse(&s, "", err, sizeof(err)), -EINVAL);
	assert_int_equal(sel_parse(&s, "a=b,,c=d", err, sizeof(err)), -EINVAL);
	assert_int_equal(sel_parse(&s, "=v", err, sizeof(err)), -EINVAL);
	assert_int_equal(sel_parse(&s, "k=v/x", err, sizeof(err)), -EINVAL);
	assert_int_equal(sel_parse(&s, "k=v w", err, sizeof(err)), -EINVAL);
}

/* ------------------------------------------------------------ deferral */

static int calls;
static char got[64][64];
static bool allow_cg[16];

static int cb(void *ctx, void *data, size_t size)
{
	assert_ptr_equal(ctx, &calls);
	memcpy(got[calls % 64], data, size);
	got[calls % 64][size] = '\0';
	calls++;
	return 0;
}

static bool ready(uint64_t cg, uint64_t mntns, uint64_t deadline, void *ctx)
{
	(void)mntns;
	(void)ctx;
	return allow_cg[cg] || deadline <= 100;
}

static void push(const char *s, uint64_t cg, uint64_t deadline)
{
	struct loop_sample smp = { cb, &calls, s, strlen(s) };

	assert_true(defer_push(&smp, deadline, cg, 0));
}

static void test_defer(void **state)
{
	struct loop_sample big = { cb, &calls, got, 300 };

	(void)state;
	assert_int_equal(defer_init(512), 0);
	calls = 0;
	memset(allow_cg, 0, sizeof(allow_cg));
	push("a1", 1, 1000);
	push("b1", 2, 1000);
	push("a2", 1, 1000);
	assert_int_equal(defer_pending(), 3);
	assert_int_equal(defer_pump(ready, NULL), 0);
	/* cgroup 2 resolved: its record goes, cgroup 1's stay in order */
	allow_cg[2] = true;
	assert_int_equal(defer_pump(ready, NULL), 1);
	assert_string_equal(got[0], "b1");
	assert_int_equal(defer_pending(), 2);
	/* full: no room for a big one */
	assert_false(defer_push(&big, 1000, 3, 0));
	allow_cg[1] = true;
	assert_int_equal(defer_pump(ready, NULL), 2);
	assert_string_equal(got[1], "a1");
	assert_string_equal(got[2], "a2");
	assert_int_equal(defer_pending(), 0);
	/* wrap-around many times; deadlines expire records */
	for (int round = 0; round < 200; round++) {
		char s[16];

		snprintf(s, sizeof(s), "r%03d", round);
		push(s, 5, round % 3 ? 1000 : 50);
		if (round % 3 == 2) {
			allow_cg[5] = round % 2;
			defer_pump(ready, NULL);
		}
	}
	allow_cg[5] = true;
	defer_pump(ready, NULL);
	assert_int_equal(defer_pending(), 0);
	assert_int_equal(calls, 203);
	defer_free();
	assert_false(defer_push(&big, 1, 1, 0));
}

static void test_snapshot(void **state)
{
	struct snap *s = snap_new();
	const struct snap *r;
	struct attr *a;

	(void)state;
	assert_non_null(s);
	a = snap_attr(s, AS_FULL, "ns", "pod", "uid", "ctr", "id", NULL);
	assert_non_null(a);
	assert_string_equal(a->ref.namespace_, "ns");
	assert_string_equal(a->ref.runtime, "");
	for (int i = 0; i < 2000; i++) /* more than a chunk */
		assert_non_null(snap_attr(s, AS_PARTIAL, "", "", "u", "", "x", "containerd"));
	assert_int_equal(idmap_put(&s->cg, 42, a), 0);
	assert_true(snap_publish(s));
	r = snap_acquire();
	assert_ptr_equal(r, s);
	assert_ptr_equal(idmap_get(&r->cg, 42), a);
	assert_true(snap_bytes(r) > 2000 * sizeof(struct attr));
	/* the reader holds the first; newer ones replace it and the old is freed later */
	for (int i = 0; i < 300; i++) {
		struct snap *n = snap_new();

		assert_non_null(n);
		if (!snap_publish(n)) { /* the reader lags: it catches up, then it works */
			n = snap_new();
			r = snap_acquire();
			snap_reclaim();
			assert_true(snap_publish(n));
		}
	}
	r = snap_acquire();
	snap_reclaim();
	assert_non_null(r);
	snap_shutdown();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_selector),
		cmocka_unit_test(test_defer),
		cmocka_unit_test(test_snapshot),
	};

	return cmocka_run_group_tests_name("attrib", tests, NULL, NULL);
}
