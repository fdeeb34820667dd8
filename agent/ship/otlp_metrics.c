// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/clock.h"
#include "lib/metrics.h"
#include "agent/ship/otlp_metrics.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"

/* Field numbers and wire types (proto/opentelemetry; tests/integration/test_otlp_metrics.py) */
#define WT_VARINT 0
#define WT_LEN 2
#define TAG(f, wt) ((uint8_t)((f) << 3 | (wt)))
#define REQ_RESOURCE_METRICS TAG(1, WT_LEN)	/* ExportMetricsServiceRequest */
#define RM_SCOPE_METRICS TAG(2, WT_LEN)		/* ResourceMetrics (resource = 1: fixed) */
#define SM_METRICS TAG(2, WT_LEN)		/* ScopeMetrics (scope = 1: fixed) */
#define M_NAME TAG(1, WT_LEN)			/* Metric */
#define M_DESCRIPTION TAG(2, WT_LEN)
#define M_UNIT TAG(3, WT_LEN)
#define M_SUM TAG(7, WT_LEN)
#define M_HISTOGRAM TAG(9, WT_LEN)
#define D_DATA_POINTS TAG(1, WT_LEN)		/* Sum, Histogram */
#define D_TEMPORALITY TAG(2, WT_VARINT)
#define SUM_MONOTONIC TAG(3, WT_VARINT)

#define HDR_ROOM 32
#define MAX_RAW (64u << 20)	/* what a receiver is asked to take (OTLP/HTTP) */

/*
 * The /metrics families exported, under OpenTelemetry's names: what the
 * Collector's Prometheus exporter turns back into the /metrics names.
 */
static const struct family {
	const char *prom, *name, *unit;
} FAMILIES[] = {
	{ "podsnoop_bio_latency_seconds", "podsnoop.bio.latency", "s" },
	{ "podsnoop_fs_latency_seconds", "podsnoop.fs.latency", "s" },
	{ "podsnoop_open_latency_seconds", "podsnoop.open.latency", "s" },
	{ "podsnoop_execs_total", "podsnoop.execs", "{exec}" },
	{ "podsnoop_opens_total", "podsnoop.opens", "{open}" },
	{ "podsnoop_pagecache_hits_total", "podsnoop.pagecache.hits", "{page}" },
	{ "podsnoop_pagecache_misses_total", "podsnoop.pagecache.misses", "{page}" },
	{ "podsnoop_pod_events_lost_total", "podsnoop.pod.events.lost", "{event}" },
	{ "podsnoop_events_lost_total", "podsnoop.events.lost", "{event}" },
};
#define N_FAMILIES (sizeof(FAMILIES) / sizeof(FAMILIES[0]))

/* The pod labels under their semantic-convention names; the others become podsnoop.<label>. */
static const char *const K8S[][2] = {
	{ "namespace", "k8s.namespace.name" },
	{ "pod", "k8s.pod.name" },
	{ "container", "k8s.container.name" },
};

static int grow(uint8_t **buf, size_t *cap, size_t len, size_t more)
{
	size_t n = *cap ? *cap : 64 * 1024;
	uint8_t *p;

	if (len + more <= *cap)
		return 0;
	while (n < len + more)
		n *= 2;
	if (n > MAX_RAW + HDR_ROOM)
		return -E2BIG;
	p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

static uint8_t *put_str(uint8_t *p, uint8_t tag, const char *s)
{
	size_t n = strlen(s);

	*p++ = tag;
	p = otlp_put_varint(p, n);
	memcpy(p, s, n);
	return p + n;
}

static size_t str_len(const char *s)
{
	size_t n = strlen(s);

	return 1 + otlp_vlen(n) + n;
}

/* The current family's points become one Metric in o->buf. */
static void family_end(struct otlp_metrics *o)
{
	const struct family *f;
	size_t data, body, help_len;
	uint8_t *p;
	bool sum;

	if (o->fam_idx < 0 || !o->fam_len || o->err)
		goto out;
	f = &FAMILIES[o->fam_idx];
	sum = o->fam_type != MT_HISTOGRAM;
	help_len = utf8_clean_len(o->fam_help, strlen(o->fam_help));
	data = o->fam_len + 2 + (sum ? 2 : 0);
	body = str_len(f->name) + 1 + otlp_vlen(help_len) + help_len + str_len(f->unit) +
	       1 + otlp_vlen(data) + data;
	o->err = grow(&o->buf, &o->cap, o->len, 1 + otlp_vlen(body) + body);
	if (o->err)
		goto out;
	p = o->buf + o->len;
	*p++ = SM_METRICS;
	p = otlp_put_varint(p, body);
	p = put_str(p, M_NAME, f->name);
	*p++ = M_DESCRIPTION;
	p = otlp_put_varint(p, help_len);
	p = utf8_clean_put(p, o->fam_help, strlen(o->fam_help));
	p = put_str(p, M_UNIT, f->unit);
	*p++ = sum ? M_SUM : M_HISTOGRAM;
	p = otlp_put_varint(p, data);
	memcpy(p, o->fam, o->fam_len);
	p += o->fam_len;
	*p++ = D_TEMPORALITY;
	*p++ = OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
	if (sum) {
		*p++ = SUM_MONOTONIC;
		*p++ = 1;
	}
	o->len = (size_t)(p - o->buf);
out:
	o->fam_len = 0;
	o->fam_idx = -1;
}

static void v_family(void *priv, const char *name, enum metric_type type, const char *help)
{
	struct otlp_metrics *o = priv;

	family_end(o);
	for (size_t i = 0; i < N_FAMILIES; i++) {
		if (!strcmp(FAMILIES[i].prom, name) && type != MT_GAUGE) {
			o->fam_idx = (int)i;
			o->fam_type = type;
			o->fam_help = help;
			return;
		}
	}
}

/* Attributes of a sample: pod labels under k8s.*, the rest podsnoop.*; empty ones left out. */
struct attrs {
	Opentelemetry__Proto__Common__V1__KeyValue kv[HIST_AGG_MAX_LABELS];
	Opentelemetry__Proto__Common__V1__KeyValue *ptr[HIST_AGG_MAX_LABELS];
	Opentelemetry__Proto__Common__V1__AnyValue av[HIST_AGG_MAX_LABELS];
	char keys[HIST_AGG_MAX_LABELS][64];
	char vals[HIST_AGG_MAX_LABELS][3 * HIST_AGG_MAX_VALUE + 1];
	size_t n;
};

static void make_attrs(struct attrs *a, const char *const *labels)
{
	a->n = 0;
	for (size_t i = 0; labels && labels[i] && a->n < HIST_AGG_MAX_LABELS; i += 2) {
		const char *k = labels[i], *v = labels[i + 1] ? labels[i + 1] : "";
		size_t vl = strnlen(v, HIST_AGG_MAX_VALUE), j = a->n;
		const char *sem = NULL;

		if (!vl)
			continue; /* as Prometheus takes an empty label: absent */
		for (size_t s = 0; s < sizeof(K8S) / sizeof(K8S[0]); s++)
			if (!strcmp(K8S[s][0], k))
				sem = K8S[s][1];
		if (sem)
			snprintf(a->keys[j], sizeof(a->keys[j]), "%s", sem);
		else
			snprintf(a->keys[j], sizeof(a->keys[j]), "podsnoop.%s", k);
		*utf8_clean_put((uint8_t *)a->vals[j], v, vl) = '\0';
		opentelemetry__proto__common__v1__key_value__init(&a->kv[j]);
		opentelemetry__proto__common__v1__any_value__init(&a->av[j]);
		a->av[j].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
		a->av[j].string_value = a->vals[j];
		a->kv[j].key = a->keys[j];
		a->kv[j].value = &a->av[j];
		a->ptr[j] = &a->kv[j];
		a->n++;
	}
}

/* One packed point, as Sum/Histogram.data_points, onto the family's points. */
static void put_point(struct otlp_metrics *o, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);

	o->err = grow(&o->fam, &o->fam_cap, o->fam_len, 1 + otlp_vlen(n) + n);
	if (o->err)
		return;
	o->fam[o->fam_len++] = D_DATA_POINTS;
	o->fam_len = (size_t)(otlp_put_varint(o->fam + o->fam_len, n) - o->fam);
	o->fam_len += protobuf_c_message_pack(m, o->fam + o->fam_len);
	o->n_points++;
}

static uint64_t start_of(const struct otlp_metrics *o, uint64_t born)
{
	uint64_t s = born ? (uint64_t)((int64_t)born + o->boot_to_wall) : o->start_ns;

	/* a series born before the agent's clock offset was taken still starts with the agent */
	if (s < o->start_ns)
		s = o->start_ns;
	return s < o->now_ns ? s : o->now_ns;
}

static void v_sample(void *priv, const char *family, enum metric_type type,
		     const struct metrics_sample *s)
{
	struct otlp_metrics *o = priv;
	struct attrs a;

	(void)family;
	if (o->fam_idx < 0 || o->err || type != o->fam_type)
		return;
	make_attrs(&a, s->labels);
	if (type == MT_HISTOGRAM) {
		Opentelemetry__Proto__Metrics__V1__HistogramDataPoint p =
			OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT;
		uint64_t counts[64];
		double bounds[64];
		size_t n = s->n_slots < 64 ? s->n_slots : 64;

		p.count = 0;
		for (size_t i = 0; i < n; i++) {
			counts[i] = s->slots[i];
			p.count += s->slots[i];
			if (i + 1 < n) /* the last slot is open-ended */
				bounds[i] = metrics_log2_bound(i, s->unit);
		}
		p.n_bucket_counts = n;
		p.bucket_counts = counts;
		p.n_explicit_bounds = n ? n - 1 : 0;
		p.explicit_bounds = bounds;
		p._sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
		p.sum = s->d;
		p.n_attributes = a.n;
		p.attributes = a.ptr;
		p.start_time_unix_nano = start_of(o, s->born);
		p.time_unix_nano = o->now_ns;
		put_point(o, &p.base);
	} else {
		Opentelemetry__Proto__Metrics__V1__NumberDataPoint p =
			OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT;

		p.value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
		p.as_int = (int64_t)s->v;
		p.n_attributes = a.n;
		p.attributes = a.ptr;
		p.start_time_unix_nano = start_of(o, s->born);
		p.time_unix_nano = o->now_ns;
		put_point(o, &p.base);
	}
}

static const struct metrics_visitor visitor = {
	.family = v_family,
	.sample = v_sample,
};

int otlp_metrics_init(struct otlp_metrics *o, int gzip_level, uint64_t agent_start_ns,
		      const struct otlp_resource *res)
{
	memset(o, 0, sizeof(*o));
	o->gzip_level = gzip_level;
	o->start_ns = agent_start_ns;
	o->boot_to_wall = (int64_t)clock_now_ns(CLOCK_REALTIME) -
			  (int64_t)clock_now_ns(CLOCK_BOOTTIME);
	o->fam_idx = -1;
	return otlp_resource_pack(res, &o->fixed, &o->res_len, &o->scope_len);
}

void otlp_metrics_free(struct otlp_metrics *o)
{
	free(o->fixed);
	free(o->buf);
	free(o->fam);
	memset(o, 0, sizeof(*o));
}

int otlp_metrics_close(struct otlp_metrics *o, uint64_t seq, uint64_t now_ns, struct batch **out)
{
	size_t sm, rm, hsz;
	struct batch *b;
	z_stream z = { 0 };
	uint8_t *p;
	int err;

	o->len = HDR_ROOM + o->res_len + o->scope_len; /* the framing goes in front */
	o->err = grow(&o->buf, &o->cap, 0, o->len);
	if (o->err)
		return o->err;
	o->n_points = 0;
	o->now_ns = now_ns;
	o->fam_idx = -1;
	o->fam_len = 0;
	metrics_visit(&visitor, o);
	family_end(o);
	if (o->err)
		return o->err;

	/* ExportMetricsServiceRequest { ResourceMetrics { resource, ScopeMetrics { scope, metrics } } } */
	sm = o->scope_len + (o->len - (HDR_ROOM + o->res_len + o->scope_len));
	rm = o->res_len + 1 + otlp_vlen(sm) + sm;
	hsz = 1 + otlp_vlen(rm) + o->res_len + 1 + otlp_vlen(sm) + o->scope_len;
	p = o->buf + HDR_ROOM + o->res_len + o->scope_len - hsz;
	{
		uint8_t *start = p;

		*p++ = REQ_RESOURCE_METRICS;
		p = otlp_put_varint(p, rm);
		memcpy(p, o->fixed, o->res_len);
		p += o->res_len;
		*p++ = RM_SCOPE_METRICS;
		p = otlp_put_varint(p, sm);
		memcpy(p, o->fixed + o->res_len, o->scope_len);
		p = start;
	}
	if (deflateInit2(&z, o->gzip_level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	b = calloc(1, sizeof(*b));
	err = b ? 0 : -ENOMEM;
	if (!err) {
		size_t raw = o->len - (size_t)(p - o->buf);
		size_t cap = deflateBound(&z, raw);

		b->body = malloc(cap);
		b->losses = malloc(sizeof(*b->losses));
		if (!b->body || !b->losses) {
			err = -ENOMEM;
		} else {
			z.next_in = p;
			z.avail_in = (uInt)raw;
			z.next_out = b->body;
			z.avail_out = (uInt)cap;
			if (deflate(&z, Z_FINISH) != Z_STREAM_END)
				err = -EIO;
			b->len = z.total_out;
		}
	}
	deflateEnd(&z);
	if (err) {
		batch_free(b);
		return err;
	}
	b->seq = seq;
	b->n_records = o->n_points;
	b->have_meta = true;
	*out = b;
	return 0;
}

static uint32_t points_of(const Opentelemetry__Proto__Metrics__V1__Metric *m)
{
	switch (m->data_case) {
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
		return (uint32_t)m->sum->n_data_points;
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
		return (uint32_t)m->histogram->n_data_points;
	case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
		return (uint32_t)m->gauge->n_data_points;
	default:
		return 0;
	}
}

int otlp_metrics_load_meta(struct batch *b, size_t max_raw)
{
	Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *m;
	int err = otlp_body_unpack(
		b, max_raw,
		&opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
		(ProtobufCMessage **)&m);

	if (err)
		return err;
	b->n_records = 0;
	memset(b->counts, 0, sizeof(b->counts));
	for (size_t i = 0; i < m->n_resource_metrics; i++)
		for (size_t j = 0; j < m->resource_metrics[i]->n_scope_metrics; j++) {
			const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
				m->resource_metrics[i]->scope_metrics[j];

			for (size_t k = 0; k < sm->n_metrics; k++)
				b->n_records += points_of(sm->metrics[k]);
		}
	b->n_losses = 0;
	b->have_meta = true;
	opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(
		m, NULL);
	return 0;
}

uint64_t otlp_metrics_refused(const void *body, size_t len, char *msg, size_t size)
{
	Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse *m;
	uint64_t n = 0;

	if (!len)
		return 0;
	m = opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(
		NULL, len, body);
	if (!m)
		return 0; /* a 2xx whose body is not the response: taken */
	if (m->partial_success && m->partial_success->rejected_data_points > 0) {
		n = (uint64_t)m->partial_success->rejected_data_points;
		otlp_message(msg, size, m->partial_success->error_message);
	}
	opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__free_unpacked(
		m, NULL);
	return n;
}

size_t otlp_metrics_max_raw(uint32_t batch_bytes)
{
	(void)batch_bytes;
	return MAX_RAW;
}
