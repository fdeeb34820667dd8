// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The OTLP metrics encoder over the /metrics registry: which families go
 * out and under which names, units and attributes; histogram buckets and
 * bounds from the log2 slots, sums, temporality, start and point times;
 * the framing read back by protobuf-c (the OpenTelemetry project's own
 * decoders read it in tests/integration/test_otlp_metrics.py).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "unit.h"
#include "agent/clock.h"
#include "lib/metrics.h"
#include "agent/ship/otlp_metrics.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest Req;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;

#define AGENT_START 1000000000ull
#define NOW 2000000000000000000ull

static const char *const bio_labels[] = { "namespace", "pod", "container", "disk", "op" };
static const char *const exec_labels[] = { "namespace", "pod", "container", "result" };
static struct hist_agg *bio, *execs;
static uint64_t born_bio, born_exec;

static void collect_bio(struct mw *w, void *priv)
{
	(void)priv;
	mw_family(w, "podsnoop_bio_latency_seconds", MT_HISTOGRAM, "Device time.");
	hist_agg_write(w, bio, 1e-6);
}

static void collect_execs(struct mw *w, void *priv)
{
	(void)priv;
	mw_family(w, "podsnoop_execs_total", MT_COUNTER, "Execs.");
	hist_agg_write_counters(w, execs);
	/* families the export does not know, and gauges, stay out */
	mw_family(w, "podsnoop_something_else_total", MT_COUNTER, "Not exported.");
	mw_u64(w, NULL, 7);
	mw_family(w, "podsnoop_events_lost_total", MT_COUNTER, "Losses.");
	mw_u64(w, (const char *[]){ "tracer", "exec", "stage", "kernel_ringbuf", NULL }, 3);
}

static struct metric gauge = METRIC_GAUGE("podsnoop_events_lost_total", "A gauge of that name.");

static int setup(void **state)
{
	uint64_t slots[27] = { 0 };
	uint64_t one = 1;

	(void)state;
	metrics_reset();
	bio = hist_agg_new(bio_labels, 5, 27, 16);
	execs = hist_agg_new(exec_labels, 4, 1, 16);
	assert_non_null(bio);
	assert_non_null(execs);
	hist_agg_set_sum_unit(bio, 1e-9);
	born_bio = clock_now_ns(CLOCK_BOOTTIME) - 5000000000ull;
	born_exec = born_bio + 1000;
	slots[0] = 2;	/* 0..1 us */
	slots[3] = 5;	/* 8..15 us */
	slots[26] = 1;	/* 67 s and up */
	assert_int_equal(hist_agg_add_at(bio, (const char *[]){ "ns", "p1", "c1", "vda", "W" },
					 slots, 123456789012ull, born_bio), 0);
	/* a host task's: empty pod labels, left out */
	assert_int_equal(hist_agg_add_at(execs, (const char *[]){ "", "", "", "ok" }, &one, 0,
					 born_exec), 0);
	/* a byte that is not UTF-8 in a label value */
	assert_int_equal(hist_agg_add_at(execs, (const char *[]){ "ns", "p\xff", "c1", "failed" },
					 &one, 0, born_exec), 0);
	assert_int_equal(hist_agg_add_at(execs, (const char *[]){ "ns", "p\xff", "c1", "failed" },
					 &one, 0, born_exec + 99), 0);
	assert_int_equal(metrics_add_collector(collect_bio, NULL), 0);
	assert_int_equal(metrics_add_collector(collect_execs, NULL), 0);
	assert_int_equal(metrics_register(&gauge), 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	metrics_reset();
	hist_agg_free(bio);
	hist_agg_free(execs);
	return 0;
}

static const struct otlp_resource res = {
	.service_name = "podsnoop", .service_version = "9.9", .instance_id = "abc",
	.node = "node-1", .host = "host-1",
};

static Req *encode(struct otlp_metrics *o, struct batch **b)
{
	uint8_t *raw;
	size_t len;
	Req *m;

	assert_int_equal(otlp_metrics_init(o, 1, AGENT_START, &res), 0);
	assert_int_equal(otlp_metrics_close(o, 7, NOW, b), 0);
	assert_int_equal(pb_gunzip((*b)->body, (*b)->len, 1 << 20, &raw, &len), 0);
	m = opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
		NULL, len, raw);
	free(raw);
	assert_non_null(m);
	return m;
}

static const char *attr(KV **kv, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(kv[i]->key, key))
			return kv[i]->value->string_value;
	return NULL;
}

static const Metric *metric(const Req *m, const char *name)
{
	const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
		m->resource_metrics[0]->scope_metrics[0];

	for (size_t i = 0; i < sm->n_metrics; i++)
		if (!strcmp(sm->metrics[i]->name, name))
			return sm->metrics[i];
	return NULL;
}

static void test_request(void **state)
{
	const Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm;
	struct otlp_metrics o;
	struct batch *b;
	Req *m;

	(void)state;
	m = encode(&o, &b);
	assert_int_equal(m->n_resource_metrics, 1);
	rm = m->resource_metrics[0];
	assert_string_equal(attr(rm->resource->attributes, rm->resource->n_attributes,
				 "service.name"), "podsnoop");
	assert_string_equal(attr(rm->resource->attributes, rm->resource->n_attributes,
				 "k8s.node.name"), "node-1");
	assert_string_equal(attr(rm->resource->attributes, rm->resource->n_attributes,
				 "service.instance.id"), "abc");
	assert_int_equal(rm->n_scope_metrics, 1);
	assert_string_equal(rm->scope_metrics[0]->scope->name, "podsnoop");
	/* bio, execs and the losses; neither the unknown family nor the gauge */
	assert_int_equal(rm->scope_metrics[0]->n_metrics, 3);
	assert_null(metric(m, "podsnoop_something_else_total"));
	/* points: 1 + 2 + 1, and no record of any tracer */
	assert_int_equal(b->n_records, 4);
	for (int t = 0; t < REC_MAX; t++)
		assert_int_equal(b->counts[t], 0);
	assert_int_equal(b->seq, 7);
	b->have_meta = false;
	b->n_records = 0;
	assert_int_equal(otlp_metrics_load_meta(b, 1 << 20), 0);
	assert_int_equal(b->n_records, 4);
	opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
		m, NULL);
	batch_free(b);
	otlp_metrics_free(&o);
}

static void test_histogram(void **state)
{
	const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *p;
	const Metric *h;
	struct otlp_metrics o;
	struct batch *b;
	Req *m;

	(void)state;
	m = encode(&o, &b);
	h = metric(m, "podsnoop.bio.latency");
	assert_non_null(h);
	assert_string_equal(h->unit, "s");
	assert_string_equal(h->description, "Device time.");
	assert_int_equal(h->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
	assert_int_equal(h->histogram->aggregation_temporality,
			 OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE);
	assert_int_equal(h->histogram->n_data_points, 1);
	p = h->histogram->data_points[0];
	assert_int_equal(p->count, 8);
	assert_int_equal(p->_sum_case,
			 OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM);
	assert_true(llround(p->sum * 1e9) == 123456789012ll);
	assert_int_equal(p->n_bucket_counts, 27);
	assert_int_equal(p->n_explicit_bounds, 26);
	assert_int_equal(p->bucket_counts[0], 2);
	assert_int_equal(p->bucket_counts[3], 5);
	assert_int_equal(p->bucket_counts[26], 1);
	/* slot i holds whole microseconds up to 2^(i+1) - 1: the le of /metrics */
	for (size_t i = 0; i < 26; i++) {
		assert_true(p->explicit_bounds[i] == ((double)(2ull << i) - 1) / 1e6);
		assert_true(p->explicit_bounds[i] == metrics_log2_bound(i, 1e-6));
	}
	assert_int_equal(p->n_attributes, 5);
	assert_string_equal(attr(p->attributes, p->n_attributes, "k8s.namespace.name"), "ns");
	assert_string_equal(attr(p->attributes, p->n_attributes, "k8s.pod.name"), "p1");
	assert_string_equal(attr(p->attributes, p->n_attributes, "k8s.container.name"), "c1");
	assert_string_equal(attr(p->attributes, p->n_attributes, "podsnoop.disk"), "vda");
	assert_string_equal(attr(p->attributes, p->n_attributes, "podsnoop.op"), "W");
	/* the series' birth, on the wall clock, fixed at init */
	assert_true(p->start_time_unix_nano == (uint64_t)((int64_t)born_bio + o.boot_to_wall));
	assert_true(p->time_unix_nano == NOW);
	opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
		m, NULL);
	batch_free(b);
	otlp_metrics_free(&o);
}

static void test_sums(void **state)
{
	const Opentelemetry__Proto__Metrics__V1__NumberDataPoint *p;
	const Metric *s;
	struct otlp_metrics o;
	struct batch *b;
	bool host = false, pod = false;
	Req *m;

	(void)state;
	m = encode(&o, &b);
	s = metric(m, "podsnoop.execs");
	assert_non_null(s);
	assert_string_equal(s->unit, "{exec}");
	assert_int_equal(s->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
	assert_true(s->sum->is_monotonic);
	assert_int_equal(s->sum->aggregation_temporality,
			 OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE);
	assert_int_equal(s->sum->n_data_points, 2);
	for (size_t i = 0; i < 2; i++) {
		p = s->sum->data_points[i];
		assert_int_equal(p->value_case,
				 OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT);
		assert_true(p->start_time_unix_nano ==
			    (uint64_t)((int64_t)born_exec + o.boot_to_wall));
		if (p->n_attributes == 1) { /* the host task's: only its result */
			host = true;
			assert_string_equal(attr(p->attributes, 1, "podsnoop.result"), "ok");
			assert_int_equal(p->as_int, 1);
		} else {
			pod = true;
			assert_int_equal(p->n_attributes, 4);
			assert_string_equal(attr(p->attributes, 4, "k8s.pod.name"), "p\xef\xbf\xbd");
			assert_string_equal(attr(p->attributes, 4, "podsnoop.result"), "failed");
			assert_int_equal(p->as_int, 2);
		}
	}
	assert_true(host && pod);
	/* no series birth: the agent's start */
	s = metric(m, "podsnoop.events.lost");
	assert_non_null(s);
	assert_int_equal(s->sum->n_data_points, 1);
	p = s->sum->data_points[0];
	assert_true(p->start_time_unix_nano == AGENT_START);
	assert_int_equal(p->as_int, 3);
	assert_string_equal(attr(p->attributes, p->n_attributes, "podsnoop.tracer"), "exec");
	assert_string_equal(attr(p->attributes, p->n_attributes, "podsnoop.stage"),
			    "kernel_ringbuf");
	opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
		m, NULL);
	batch_free(b);
	otlp_metrics_free(&o);
}

static void test_refused(void **state)
{
	Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse r =
		OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_RESPONSE__INIT;
	Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsPartialSuccess ps =
		OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_PARTIAL_SUCCESS__INIT;
	uint8_t buf[128];
	char msg[64];
	size_t n;

	(void)state;
	ps.rejected_data_points = 5;
	ps.error_message = "too\nold";
	r.partial_success = &ps;
	n = opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__pack(
		&r, buf);
	assert_int_equal(otlp_metrics_refused(buf, n, msg, sizeof(msg)), 5);
	assert_string_equal(msg, "too old");
	assert_int_equal(otlp_metrics_refused(NULL, 0, msg, sizeof(msg)), 0);
	assert_int_equal(otlp_metrics_refused("\xff\xff", 2, msg, sizeof(msg)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_histogram, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sums, setup, teardown),
		cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
