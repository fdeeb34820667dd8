// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The metrics registry and its Prometheus text; readiness; --listen parsing; privileges. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <linux/capability.h>

#include "unit.h"
#include "agent/http/endpoints.h"
#include "lib/metrics.h"
#include "agent/privs.h"

static char *render(void)
{
	size_t len = 0;
	char *s = metrics_render(&len);

	assert_non_null(s);
	assert_int_equal(strlen(s), len);
	return s;
}

/* The exposition without the always-present folded-series family at the end. */
static char *render_body(void)
{
	char *s = render();
	char *tail = strstr(s, "# HELP podsnoop_metrics_series_folded ");

	assert_non_null(tail);
	*tail = '\0';
	return s;
}

static int reset(void **state)
{
	(void)state;
	metrics_reset();
	return 0;
}

static void test_names(void **state)
{
	(void)state;
	assert_true(metrics_valid_name("podsnoop_events_seen_total", false));
	assert_true(metrics_valid_name("a:b", false));
	assert_false(metrics_valid_name("a:b", true));
	assert_false(metrics_valid_name("9lives", false));
	assert_false(metrics_valid_name("has-dash", false));
	assert_false(metrics_valid_name("", false));
	assert_false(metrics_valid_name("__reserved", true));
	assert_true(metrics_valid_name("_ok", true));
}

static void test_counter_gauge_families(void **state)
{
	static struct metric hits = METRIC_COUNTER("t_attr_total", "By result.", "result", "hit");
	static struct metric miss = METRIC_COUNTER("t_attr_total", "By result.", "result", "miss");
	static struct metric spool = METRIC_GAUGE("t_spool_bytes", "Spool size.");
	static struct metric bad = METRIC_COUNTER("bad-name", "x");
	static struct metric bad_label = METRIC_COUNTER("t_x", "x", "le", "1");
	char *s;

	(void)state;
	assert_int_equal(metrics_register(&hits), 0);
	assert_int_equal(metrics_register(&spool), 0);
	assert_int_equal(metrics_register(&miss), 0);
	assert_int_equal(metrics_register(&hits), -EEXIST);
	assert_int_equal(metrics_register(&bad), -EINVAL);
	assert_int_equal(metrics_register(&bad_label), -EINVAL);
	metric_inc(&hits);
	metric_add(&hits, 41);
	metric_inc(&miss);
	metric_set(&spool, -5);
	metric_set(&spool, 1234);
	s = render_body();
	/* one family per name, in registration order, members together */
	assert_string_equal(s, "# HELP t_attr_total By result.\n"
			       "# TYPE t_attr_total counter\n"
			       "t_attr_total{result=\"hit\"} 42\n"
			       "t_attr_total{result=\"miss\"} 1\n"
			       "# HELP t_spool_bytes Spool size.\n"
			       "# TYPE t_spool_bytes gauge\n"
			       "t_spool_bytes 1234\n");
	free(s);
}

static void test_histogram(void **state)
{
	static struct metric lat = METRIC_HISTOGRAM("t_lat_seconds", "Latency.", 1e-3);
	char *s;

	(void)state;
	assert_int_equal(metric_log2_slot(0), 0);
	assert_int_equal(metric_log2_slot(1), 0);
	assert_int_equal(metric_log2_slot(2), 1);
	assert_int_equal(metric_log2_slot(3), 1);
	assert_int_equal(metric_log2_slot(4), 2);
	assert_int_equal(metric_log2_slot(1ull << 40), 40);
	assert_int_equal(metrics_register(&lat), 0);
	metric_observe(&lat, 1);	/* slot 0: le 0.001 */
	metric_observe(&lat, 3);	/* slot 1: le 0.003 */
	metric_observe(&lat, 3);
	metric_observe(&lat, 1ull << 40);	/* beyond the last slot: +Inf only */
	s = render_body();
	assert_non_null(strstr(s, "# TYPE t_lat_seconds histogram\n"
				  "t_lat_seconds_bucket{le=\"0.001\"} 1\n"
				  "t_lat_seconds_bucket{le=\"0.003\"} 3\n"
				  "t_lat_seconds_bucket{le=\"0.007\"} 3\n"));
	/* the last finite bucket is slot 31: (2^32 - 1) ms */
	assert_non_null(strstr(s, "t_lat_seconds_bucket{le=\"4294967.295\"} 3\n"
				  "t_lat_seconds_bucket{le=\"+Inf\"} 4\n"));
	assert_non_null(strstr(s, "t_lat_seconds_count 4\n"));
	assert_non_null(strstr(s, "t_lat_seconds_sum 1099511627.783"));
	free(s);
}

static void test_escaping(void **state)
{
	static struct metric m = METRIC_GAUGE("t_esc", "Help with \\ and\nnewline \"quoted\".",
					      "v", "a\"b\\c\nd\xff" "e");
	char *s;

	(void)state;
	assert_int_equal(metrics_register(&m), 0);
	s = render_body();
	/* HELP: backslash and newline escaped, quotes kept; values: all three, bad UTF-8 -> U+FFFD */
	assert_string_equal(s, "# HELP t_esc Help with \\\\ and\\nnewline \"quoted\".\n"
			       "# TYPE t_esc gauge\n"
			       "t_esc{v=\"a\\\"b\\\\c\\nd\xef\xbf\xbd" "e\"} 0\n");
	free(s);
}

static const char *const bio_labels[] = { "namespace", "pod", "container", "disk", "op" };

static void collect_bio(struct mw *w, void *priv)
{
	const uint64_t one[4] = { 1, 0, 0, 0 }, two[4] = { 0, 2, 0, 0 }, big[4] = { 0, 0, 0, 5 };
	struct hist_agg *a = hist_agg_new(bio_labels, 5, 4, *(size_t *)priv);

	assert_non_null(a);
	/* two cgroups of one container: one series */
	assert_int_equal(hist_agg_add(a, (const char *[]){ "ns", "web", "app", "vda", "R" }, one,
				      1), 0);
	assert_int_equal(hist_agg_add(a, (const char *[]){ "ns", "web", "app", "vda", "R" }, two,
				      6), 0);
	assert_int_equal(hist_agg_add(a, (const char *[]){ "ns", "db", "pg", "vda", "W" }, big,
				      100), 0);
	assert_int_equal(hist_agg_add(a, (const char *[]){ "a", "b", "c", "d", "e" }, one, 1), 0);
	assert_int_equal(hist_agg_add(a, (const char *[]){ "a", "b", "c", "d", "e" }, one, 1), 0);
	mw_family(w, "t_bio_seconds", MT_HISTOGRAM, "Block I/O latency.");
	hist_agg_write(w, a, 1e-6);
	hist_agg_free(a);
}

static void test_hist_agg_sorted(void **state)
{
	size_t max = 10;
	char *s, *p1, *p2, *p3;

	(void)state;
	assert_int_equal(metrics_add_collector(collect_bio, &max), 0);
	s = render();
	/* sorted by label values; merged counts are cumulative per series */
	p1 = strstr(s, "t_bio_seconds_count{namespace=\"a\",pod=\"b\",container=\"c\",disk=\"d\","
		       "op=\"e\"} 2\n");
	p2 = strstr(s, "t_bio_seconds_bucket{namespace=\"ns\",pod=\"db\",container=\"pg\","
		       "disk=\"vda\",op=\"W\",le=\"+Inf\"} 5\n");
	p3 = strstr(s, "t_bio_seconds_bucket{namespace=\"ns\",pod=\"web\",container=\"app\","
		       "disk=\"vda\",op=\"R\",le=\"3e-06\"} 3\n");
	assert_non_null(p1);
	assert_non_null(p2);
	assert_non_null(p3);
	assert_true(p1 < p2 && p2 < p3);
	assert_non_null(strstr(s, "t_bio_seconds_sum{namespace=\"ns\",pod=\"web\",container=\"app\","
				  "disk=\"vda\",op=\"R\"} 7e-06\n"));
	/* the slot beyond the last finite bucket counts only in +Inf */
	assert_non_null(strstr(s, "disk=\"vda\",op=\"W\",le=\"7e-06\"} 0\n"));
	assert_non_null(strstr(s, "op=\"W\"} 0.0001\n"));
	assert_null(strstr(s, "\"_other\""));
	assert_non_null(strstr(s, "podsnoop_metrics_series_folded{family=\"t_bio_seconds\"} 0\n"));
	free(s);
}

static void test_hist_agg_bounded(void **state)
{
	size_t max = 1;
	char *s;

	(void)state;
	assert_int_equal(metrics_add_collector(collect_bio, &max), 0);
	s = render();
	/* the first label set keeps its series, the other two fold into _other */
	assert_non_null(strstr(s, "t_bio_seconds_count{namespace=\"ns\",pod=\"web\",container=\"app\","
				  "disk=\"vda\",op=\"R\"} 3\n"));
	assert_non_null(strstr(s, "t_bio_seconds_count{namespace=\"_other\",pod=\"_other\","
				  "container=\"_other\",disk=\"_other\",op=\"_other\"} 7\n"));
	assert_null(strstr(s, "pod=\"db\""));
	assert_non_null(strstr(s, "podsnoop_metrics_series_folded{family=\"t_bio_seconds\"} 2\n"));
	free(s);
}

static void collect_counters(struct mw *w, void *priv)
{
	mw_family(w, "t_execs_total", MT_COUNTER, "Counted per pod.");
	hist_agg_write_counters(w, priv);
}

/* Counters through the same bound: one-slot series, sorted, the rest in _other. */
static void test_hist_agg_counters(void **state)
{
	struct hist_agg *a = hist_agg_new((const char *[]){ "pod", "result" }, 2, 1, 2);
	uint64_t n;
	char *s;

	(void)state;
	assert_non_null(a);
	n = 3;
	assert_int_equal(hist_agg_add(a, (const char *[]){ "web", "ok" }, &n, 0), 0);
	n = 2;
	assert_int_equal(hist_agg_add(a, (const char *[]){ "db", "failed" }, &n, 0), 0);
	n = 4;
	assert_int_equal(hist_agg_add(a, (const char *[]){ "web", "ok" }, &n, 0), 0);
	n = 5;
	assert_int_equal(hist_agg_add(a, (const char *[]){ "x", "ok" }, &n, 0), 0);
	n = 1;
	assert_int_equal(hist_agg_add(a, (const char *[]){ "y", "ok" }, &n, 0), 0);
	assert_int_equal(metrics_add_collector(collect_counters, a), 0);
	s = render();
	assert_non_null(strstr(s, "# TYPE t_execs_total counter\n"
				  "t_execs_total{pod=\"db\",result=\"failed\"} 2\n"
				  "t_execs_total{pod=\"web\",result=\"ok\"} 7\n"
				  "t_execs_total{pod=\"_other\",result=\"_other\"} 6\n"));
	assert_non_null(strstr(s, "podsnoop_metrics_series_folded{family=\"t_execs_total\"} 2\n"));
	free(s);
	hist_agg_free(a);
}

static void collect_agg(struct mw *w, void *priv)
{
	mw_family(w, "t_fold_seconds", MT_HISTOGRAM, "Folded label sets.");
	hist_agg_write(w, priv, 1e-6);
}

/*
 * Folded label sets of different lengths (issue 15: the check for one seen
 * before read the stored key with the new key's length, past its end).
 */
static void test_hist_agg_folded_keys_of_any_length(void **state)
{
	static const char *const sets[][3] = {
		{ "pod1", "ctr", "vda" },			/* keeps the one series */
		{ "pod2", "c\xff\n\"\\", "sdb" },		/* folded */
		{ "p3", "c3", "d3" },				/* folded, shorter */
		{ "pod1", "ctr", "vdaX" },			/* folded, longer than p3's */
		{ "p3", "c3", "d3" },				/* seen: not counted again */
	};
	const uint64_t one[2] = { 1, 0 };
	struct hist_agg *a = hist_agg_new((const char *[]){ "pod", "container", "disk" }, 3, 2, 1);
	char *s;

	(void)state;
	assert_non_null(a);
	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
		assert_int_equal(hist_agg_add(a, sets[i], one, 1), 0);
	assert_int_equal(hist_agg_series(a), 2);
	assert_int_equal(metrics_add_collector(collect_agg, a), 0);
	s = render();
	assert_non_null(strstr(s, "podsnoop_metrics_series_folded{family=\"t_fold_seconds\"} 3\n"));
	assert_non_null(strstr(s, "t_fold_seconds_count{pod=\"_other\",container=\"_other\","
				  "disk=\"_other\"} 4\n"));
	free(s);
	hist_agg_free(a);
}

static void test_hist_agg_limits(void **state)
{
	const char *names[HIST_AGG_MAX_LABELS + 1] = { 0 };
	char longv[600];
	const uint64_t one[2] = { 1, 0 };
	struct hist_agg *a;

	(void)state;
	assert_null(hist_agg_new(names, HIST_AGG_MAX_LABELS + 1, 2, 4));
	assert_null(hist_agg_new(names, 1, 0, 4));
	a = hist_agg_new((const char *[]){ "pod" }, 1, 2, 4);
	assert_non_null(a);
	memset(longv, 'x', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	/* values are cut at HIST_AGG_MAX_VALUE bytes: two long values sharing a prefix merge */
	assert_int_equal(hist_agg_add(a, (const char *[]){ longv }, one, 1), 0);
	longv[400] = 'y';
	assert_int_equal(hist_agg_add(a, (const char *[]){ longv }, one, 1), 0);
	assert_int_equal(hist_agg_series(a), 1);
	assert_int_equal(hist_agg_add(a, (const char *[]){ NULL }, one, 1), 0);
	assert_int_equal(hist_agg_series(a), 2);
	hist_agg_free(a);
}

/* A hist_agg kept across scrapes: cumulative, idle series expire, the bound holds. */
static struct hist_agg *persistent;

static void collect_persistent(struct mw *w, void *priv)
{
	(void)priv;
	mw_family(w, "t_bio_seconds", MT_HISTOGRAM, "Block I/O latency.");
	hist_agg_write(w, persistent, 1e-6);
}

static void test_hist_agg_persistent(void **state)
{
	const uint64_t one[4] = { 1, 0, 0, 0 }, two[4] = { 0, 2, 0, 0 };
	const char *web[] = { "ns", "web", "app", "vda", "R" }, *db[] = { "ns", "db", "pg", "vda", "W" };
	const char *job[] = { "ns", "job", "run", "vda", "W" };
	char *s;

	(void)state;
	persistent = hist_agg_new(bio_labels, 5, 4, 2);
	assert_non_null(persistent);
	hist_agg_set_sum_unit(persistent, 1e-9); /* slots in us, sums in ns */
	assert_int_equal(metrics_add_collector(collect_persistent, NULL), 0);
	/* interval 1 (time 10) and 2 (time 20): counts add up, the sum is exact in seconds */
	assert_int_equal(hist_agg_add_at(persistent, web, one, 1500, 10), 0);
	assert_int_equal(hist_agg_add_at(persistent, db, two, 7000, 10), 0);
	assert_int_equal(hist_agg_add_at(persistent, web, two, 6000, 20), 0);
	s = render();
	assert_non_null(strstr(s, "t_bio_seconds_bucket{namespace=\"ns\",pod=\"web\",container=\"app\","
				  "disk=\"vda\",op=\"R\",le=\"3e-06\"} 3\n"));
	assert_non_null(strstr(s, "t_bio_seconds_sum{namespace=\"ns\",pod=\"web\",container=\"app\","
				  "disk=\"vda\",op=\"R\"} 7.5e-06\n"));
	free(s);
	/* full (2 series): a third label set folds */
	assert_int_equal(hist_agg_add_at(persistent, job, one, 1000, 30), 0);
	assert_int_equal(hist_agg_series(persistent), 3);
	s = render();
	assert_non_null(strstr(s, "container=\"_other\",disk=\"_other\",op=\"_other\"} 1\n"));
	assert_non_null(strstr(s, "podsnoop_metrics_series_folded{family=\"t_bio_seconds\"} 1\n"));
	free(s);
	/* db was last added to at 10: expiring before 15 drops it alone */
	assert_int_equal(hist_agg_expire(persistent, 15), 1);
	assert_int_equal(hist_agg_expire(persistent, 15), 0);
	assert_int_equal(hist_agg_add_at(persistent, job, one, 1000, 40), 0);
	s = render();
	assert_null(strstr(s, "pod=\"db\""));
	/* job has its own series now, from zero; what it folded before stays in _other */
	assert_non_null(strstr(s, "t_bio_seconds_count{namespace=\"ns\",pod=\"job\",container=\"run\","
				  "disk=\"vda\",op=\"W\"} 1\n"));
	assert_non_null(strstr(s, "container=\"_other\",disk=\"_other\",op=\"_other\"} 1\n"));
	assert_non_null(strstr(s, "podsnoop_metrics_series_folded{family=\"t_bio_seconds\"} 0\n"));
	/* web survived the rehash and is still found: its counts keep growing */
	free(s);
	assert_int_equal(hist_agg_add_at(persistent, web, one, 500, 50), 0);
	assert_int_equal(hist_agg_series(persistent), 3);
	s = render();
	assert_non_null(strstr(s, "t_bio_seconds_count{namespace=\"ns\",pod=\"web\",container=\"app\","
				  "disk=\"vda\",op=\"R\"} 4\n"));
	free(s);
	/* everything idle: all go, the table stays usable */
	assert_int_equal(hist_agg_expire(persistent, 1000), 2);
	assert_int_equal(hist_agg_series(persistent), 1); /* _other */
	assert_int_equal(hist_agg_add_at(persistent, db, one, 1, 1001), 0);
	assert_int_equal(hist_agg_series(persistent), 2);
	hist_agg_free(persistent);
	persistent = NULL;
}

static void test_parse_addr(void **state)
{
	char host[64];
	uint16_t port;

	(void)state;
	assert_int_equal(endpoints_parse_addr("127.0.0.1:9464", host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 9464);
	assert_int_equal(endpoints_parse_addr(":80", host, sizeof(host), &port), 0);
	assert_string_equal(host, "");
	assert_int_equal(port, 80);
	assert_int_equal(endpoints_parse_addr("[::1]:0", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 0);
	assert_int_equal(endpoints_parse_addr("localhost:65535", host, sizeof(host), &port), 0);
	assert_int_equal(endpoints_parse_addr("9464", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(endpoints_parse_addr("::1:80", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(endpoints_parse_addr("[::1]80", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(endpoints_parse_addr("[]:80", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(endpoints_parse_addr("h:65536", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(endpoints_parse_addr("h:-1", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(endpoints_parse_addr("h:", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(endpoints_parse_addr("h:8x", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(endpoints_parse_addr("", host, sizeof(host), &port), -EINVAL);
	assert_int_equal(endpoints_parse_addr("a-very-long-host-name:1", host, 8, &port), -EINVAL);
}

static void test_health(void **state)
{
	char buf[512];

	(void)state;
	health_reset();
	assert_false(health_report(buf, sizeof(buf))); /* nothing reported: not ready */
	health_set("tracers", false, "starting");
	health_set("metadata", true, "off");
	assert_false(health_report(buf, sizeof(buf)));
	assert_string_equal(buf, "FAIL tracers: starting\nok   metadata: off\n");
	health_set("tracers", true, "%d attached", 1);
	assert_true(health_report(buf, sizeof(buf)));
	assert_string_equal(buf, "ok   tracers: 1 attached\nok   metadata: off\n");
	health_set("metadata", false, "CRI unreachable");
	assert_false(health_report(buf, sizeof(buf)));
	health_reset();
}

#define BIT(c) (1ull << (c))

static void test_privs(void **state)
{
	struct privs p;
	char why[512];

	(void)state;
	/* a 6.x kernel: CAP_BPF (39) exists */
	p.last_cap = 40;
	p.eff = BIT(39) | BIT(38);
	assert_true(privs_can_trace(&p, why, sizeof(why)));
	p.eff = BIT(CAP_SYS_ADMIN);
	assert_true(privs_can_trace(&p, why, sizeof(why)));
	p.eff = BIT(38);
	assert_false(privs_can_trace(&p, why, sizeof(why)));
	assert_non_null(strstr(why, "missing capability CAP_BPF:"));
	assert_null(strstr(why, "missing capability CAP_PERFMON"));
	p.eff = BIT(39) | BIT(CAP_SYS_PTRACE);
	assert_false(privs_can_trace(&p, why, sizeof(why)));
	assert_non_null(strstr(why, "missing capability CAP_PERFMON:"));
	assert_non_null(strstr(why, "perf_event_open"));
	p.eff = 0;
	assert_false(privs_can_trace(&p, why, sizeof(why)));
	assert_non_null(strstr(why, "missing capabilities CAP_BPF and CAP_PERFMON:"));
	/* a 5.4 kernel (cap_last_cap 37): only CAP_SYS_ADMIN will do */
	p.last_cap = 37;
	p.eff = BIT(39) | BIT(38);
	assert_false(privs_can_trace(&p, why, sizeof(why)));
	assert_non_null(strstr(why, "missing capability CAP_SYS_ADMIN"));
	assert_non_null(strstr(why, "legacyKernel"));
	p.eff = BIT(CAP_SYS_ADMIN);
	assert_true(privs_can_trace(&p, why, sizeof(why)));
	/* this process (root in the tests) reads its own set */
	assert_int_equal(privs_read(&p), 0);
	assert_true(p.last_cap >= CAP_SYS_ADMIN);
	assert_true(privs_has(&p, CAP_SYS_ADMIN));
}

static void test_privs_kthreadd(void **state)
{
#define KT(s) privs_is_kthreadd((s), strlen(s))
	struct host_mntns h;
	struct stat self;

	(void)state;
	assert_true(KT("2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 3 0 0 20 0 1 0 24\n"));
	/* not a kernel thread (no PF_KTHREAD), or a child of someone: a process named so */
	assert_false(KT("2 (kthreadd) S 0 0 0 0 -1 4194560 0 0 0 0 0 3 0 0 20 0 1 0 24\n"));
	assert_false(KT("2 (kthreadd) S 1 0 0 0 -1 2129984 0 0 0 0 0 3 0 0 20 0 1 0 24\n"));
	/* a comm that only starts so: "kthreadd) S 0 0 0 0 -1 2129984 (x" */
	assert_false(KT("2 (kthreadd) S 0 0 0 0 -1 2129984 (x) S 1 1 1 0 -1 0\n"));
	assert_false(KT("2 (sleep) S 0 0 0 0 -1 2129984 0\n"));
	assert_false(KT("12 (kthreadd) S 0 0 0 0 -1 2129984 0\n"));
	assert_false(KT("2 (kthreadd) S 0"));
	assert_false(KT(""));
#undef KT
	/* on this host the answer is the initial mount namespace, whichever way it came */
	assert_int_equal(privs_host_mntns(&h), 0);
	assert_int_equal(stat("/proc/self/ns/mnt", &self), 0);
	assert_true(h.from != HOST_MNTNS_SELF);
	assert_true(h.ino == (uint64_t)self.st_ino);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_counter_gauge_families, reset, reset),
		cmocka_unit_test_setup_teardown(test_histogram, reset, reset),
		cmocka_unit_test_setup_teardown(test_escaping, reset, reset),
		cmocka_unit_test_setup_teardown(test_hist_agg_sorted, reset, reset),
		cmocka_unit_test_setup_teardown(test_hist_agg_bounded, reset, reset),
		cmocka_unit_test_setup_teardown(test_hist_agg_folded_keys_of_any_length, reset, reset),
		cmocka_unit_test(test_hist_agg_limits),
		cmocka_unit_test_setup_teardown(test_hist_agg_counters, reset, reset),
		cmocka_unit_test_setup_teardown(test_hist_agg_persistent, reset, reset),
		cmocka_unit_test(test_parse_addr),
		cmocka_unit_test(test_health),
		cmocka_unit_test(test_privs),
		cmocka_unit_test(test_privs_kthreadd),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
