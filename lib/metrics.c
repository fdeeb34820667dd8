// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The metrics registry and the Prometheus text exposition (format 0.0.4). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/jsonw.h"
#include "lib/metrics.h"

#define MAX_COLLECTORS 32
#define MAX_FOLDED 16

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct metric *head, **tail = &head;
static struct {
	metrics_collect_fn fn;
	void *priv;
} collectors[MAX_COLLECTORS];
static size_t n_collectors;

struct mw {
	FILE *f;		/* the text, or NULL when a visitor takes the samples */
	const struct metrics_visitor *vis;
	void *vis_priv;
	uint64_t born;		/* of the series being written (hist_agg), else 0 */
	const char *family;
	enum metric_type type;
	struct {
		const char *family;
		uint64_t n;
	} folded[MAX_FOLDED];
	size_t n_folded;
};

bool metrics_valid_name(const char *s, bool label)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return false;
	if (label && s[0] == '_' && s[1] == '_')
		return false; /* reserved for Prometheus' own labels */
	for (; *s; s++) {
		char c = *s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || (!label && c == ':')))
			return false;
	}
	return true;
}

static bool valid_labels(const char *const *l, size_t max_pairs)
{
	for (size_t i = 0; i < max_pairs && l[2 * i]; i++)
		if (!metrics_valid_name(l[2 * i], true) || !l[2 * i + 1] ||
		    strcmp(l[2 * i], "le") == 0)
			return false;
	return true;
}

int metrics_register(struct metric *m)
{
	if (!m || !metrics_valid_name(m->name, false) || !m->help ||
	    !valid_labels(m->labels, METRIC_MAX_LABELS) ||
	    (m->type == MT_HISTOGRAM && !(m->unit > 0)))
		return -EINVAL;
	pthread_mutex_lock(&lock);
	for (struct metric *o = head; o; o = o->next) {
		if (o == m) {
			pthread_mutex_unlock(&lock);
			return -EEXIST;
		}
	}
	m->next = NULL;
	*tail = m;
	tail = &m->next;
	pthread_mutex_unlock(&lock);
	return 0;
}

int metrics_add_collector(metrics_collect_fn fn, void *priv)
{
	int err = 0;

	pthread_mutex_lock(&lock);
	if (n_collectors >= MAX_COLLECTORS) {
		err = -ENOSPC;
	} else {
		collectors[n_collectors].fn = fn;
		collectors[n_collectors].priv = priv;
		n_collectors++;
	}
	pthread_mutex_unlock(&lock);
	return err;
}

void metrics_reset(void)
{
	pthread_mutex_lock(&lock);
	head = NULL;
	tail = &head;
	n_collectors = 0;
	pthread_mutex_unlock(&lock);
}

/* ---- text format */

static void put_escaped(FILE *f, const char *s, bool quote)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s), n;

	while (left) {
		if (*p == '\\') {
			fputs("\\\\", f);
		} else if (*p == '\n') {
			fputs("\\n", f);
		} else if (*p == '"' && quote) {
			fputs("\\\"", f);
		} else {
			n = jw_utf8_len(p, left);
			if (!n) {
				fputs("\xef\xbf\xbd", f); /* U+FFFD for a byte that is not UTF-8 */
				n = 1;
			} else {
				fwrite(p, 1, n, f);
			}
			p += n;
			left -= n;
			continue;
		}
		p++;
		left--;
	}
}

/* The shortest form that reads back as the same double ("0.003", not 0.0030000000000000001). */
static void fmt_double(char *buf, size_t n, double v)
{
	if (isnan(v)) {
		snprintf(buf, n, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, n, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, n, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

/* units * unit in seconds; dividing by 1e6 rather than multiplying by 1e-6 keeps 1e-4 exact */
static double scale(double units, double unit)
{
	double inv = 1.0 / unit, r = round(inv);

	return r >= 1 && fabs(inv - r) < 1e-9 * r ? units / r : units * unit;
}

double metrics_log2_bound(size_t i, double unit)
{
	/* slot i holds integers up to 2^(i+1) - 1 */
	return scale(ldexp(1.0, (int)i + 1) - 1.0, unit);
}

static void put_double(FILE *f, double v)
{
	char buf[64];

	fmt_double(buf, sizeof(buf), v);
	fputs(buf, f);
}

static const char *type_name(enum metric_type t)
{
	return t == MT_COUNTER ? "counter" : t == MT_GAUGE ? "gauge" : "histogram";
}

void mw_family(struct mw *w, const char *name, enum metric_type type, const char *help)
{
	w->family = name;
	w->type = type;
	if (w->vis) {
		w->vis->family(w->vis_priv, name, type, help);
		return;
	}
	fprintf(w->f, "# HELP %s ", name);
	put_escaped(w->f, help, false);
	fprintf(w->f, "\n# TYPE %s %s\n", name, type_name(type));
}

/* name{l1="v1",...,extra="x"} */
static void put_series(struct mw *w, const char *suffix, const char *const *labels,
		       const char *extra_k, const char *extra_v)
{
	bool any = false;

	fputs(w->family, w->f);
	fputs(suffix, w->f);
	for (size_t i = 0; labels && labels[i]; i += 2) {
		fputc(any ? ',' : '{', w->f);
		fprintf(w->f, "%s=\"", labels[i]);
		put_escaped(w->f, labels[i + 1] ? labels[i + 1] : "", true);
		fputc('"', w->f);
		any = true;
	}
	if (extra_k) {
		fprintf(w->f, "%s%s=\"%s\"", any ? "," : "{", extra_k, extra_v);
		any = true;
	}
	if (any)
		fputc('}', w->f);
	fputc(' ', w->f);
}

static void visit(struct mw *w, const char *const *labels, const uint64_t *slots,
		  size_t n_slots, double unit, double d, uint64_t v)
{
	const struct metrics_sample s = {
		.labels = labels, .v = v, .d = d, .slots = slots, .n_slots = n_slots,
		.unit = unit, .born = w->born,
	};

	w->vis->sample(w->vis_priv, w->family, w->type, &s);
}

void mw_u64(struct mw *w, const char *const *labels, uint64_t v)
{
	if (w->vis) {
		visit(w, labels, NULL, 0, 0, (double)v, v);
		return;
	}
	put_series(w, "", labels, NULL, NULL);
	fprintf(w->f, "%" PRIu64 "\n", v);
}

void mw_f64(struct mw *w, const char *const *labels, double v)
{
	if (w->vis) {
		visit(w, labels, NULL, 0, 0, v, v > 0 ? (uint64_t)v : 0);
		return;
	}
	put_series(w, "", labels, NULL, NULL);
	put_double(w->f, v);
	fputc('\n', w->f);
}

static void hist_log2(struct mw *w, const char *const *labels, const uint64_t *slots,
		      size_t n_slots, double unit, double sum_s)
{
	uint64_t cum = 0;
	char le[64];

	if (w->vis) {
		visit(w, labels, slots, n_slots, unit, sum_s, 0);
		return;
	}
	for (size_t i = 0; i < n_slots; i++) {
		cum += slots[i];
		if (i + 1 == n_slots)
			break; /* the last slot is open-ended: only +Inf holds it */
		fmt_double(le, sizeof(le), metrics_log2_bound(i, unit));
		put_series(w, "_bucket", labels, "le", le);
		fprintf(w->f, "%" PRIu64 "\n", cum);
	}
	put_series(w, "_bucket", labels, "le", "+Inf");
	fprintf(w->f, "%" PRIu64 "\n", cum);
	put_series(w, "_sum", labels, NULL, NULL);
	put_double(w->f, sum_s);
	fputc('\n', w->f);
	put_series(w, "_count", labels, NULL, NULL);
	fprintf(w->f, "%" PRIu64 "\n", cum);
}

void mw_hist_log2(struct mw *w, const char *const *labels, const uint64_t *slots,
		  size_t n_slots, double unit, uint64_t sum_units)
{
	hist_log2(w, labels, slots, n_slots, unit, scale((double)sum_units, unit));
}

static void note_folded(struct mw *w, uint64_t n)
{
	for (size_t i = 0; i < w->n_folded; i++) {
		if (strcmp(w->folded[i].family, w->family) == 0) {
			w->folded[i].n += n;
			return;
		}
	}
	if (w->n_folded < MAX_FOLDED) {
		w->folded[w->n_folded].family = w->family;
		w->folded[w->n_folded].n = n;
		w->n_folded++;
	}
}

/* ---- bounded aggregation of log2 histograms */

struct series {
	char *key;		/* the label values, each NUL-terminated, back to back */
	size_t key_len;
	uint64_t sum;
	uint64_t stamp;		/* `now` of the last add */
	uint64_t born;		/* `now` of the first */
	uint64_t slots[];
};

struct hist_agg {
	const char *const *names;
	size_t n_labels, n_slots, max_series;
	size_t n_series, cap;	/* cap: hash table size, a power of two */
	double sum_unit;	/* 0: the slots' unit */
	struct series **table;
	struct series *other;	/* the folded series, made on first need */
	uint64_t folded;	/* distinct label sets folded */
	struct folded_key **folded_keys; /* to count each distinct set once, at most max_series */
	size_t n_folded_keys, folded_cap;
};

struct folded_key {
	size_t len;
	char key[];		/* as series keys: values back to back, each NUL-terminated */
};

static uint64_t fnv1a(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	while (n--) {
		h ^= (unsigned char)*p++;
		h *= 1099511628211ull;
	}
	return h;
}

struct hist_agg *hist_agg_new(const char *const *label_names, size_t n_labels,
			      size_t n_slots, size_t max_series)
{
	struct hist_agg *a;

	if (n_labels > HIST_AGG_MAX_LABELS || !n_slots)
		return NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->names = label_names;
	a->n_labels = n_labels;
	a->n_slots = n_slots;
	a->max_series = max_series;
	a->cap = 64;
	while (a->cap < 2 * max_series)
		a->cap <<= 1;
	a->table = calloc(a->cap, sizeof(*a->table));
	if (!a->table) {
		free(a);
		return NULL;
	}
	return a;
}

static struct series *series_new(const struct hist_agg *a, const char *key, size_t key_len)
{
	struct series *s = calloc(1, sizeof(*s) + a->n_slots * sizeof(uint64_t));

	if (!s)
		return NULL;
	s->key = malloc(key_len);
	if (!s->key) {
		free(s);
		return NULL;
	}
	memcpy(s->key, key, key_len);
	s->key_len = key_len;
	return s;
}

static void series_add(const struct hist_agg *a, struct series *s, const uint64_t *slots,
		       uint64_t sum)
{
	for (size_t i = 0; i < a->n_slots; i++)
		s->slots[i] += slots[i];
	s->sum += sum;
}

/*
 * Count a label set folded into _other once, however many inputs carry it.
 * Up to max_series of them are remembered (a persistent aggregation must not
 * grow without bound): beyond that the count stays put, a lower bound.
 */
static int note_folded_key(struct hist_agg *a, const char *key, size_t len)
{
	struct folded_key *f;

	for (size_t i = 0; i < a->n_folded_keys; i++)
		if (a->folded_keys[i]->len == len && memcmp(a->folded_keys[i]->key, key, len) == 0)
			return 0;
	if (a->n_folded_keys >= a->max_series && a->n_folded_keys >= 16)
		return 0;
	if (a->n_folded_keys == a->folded_cap) {
		size_t cap = a->folded_cap ? 2 * a->folded_cap : 16;
		struct folded_key **k = realloc(a->folded_keys, cap * sizeof(*k));

		if (!k)
			return -ENOMEM;
		a->folded_keys = k;
		a->folded_cap = cap;
	}
	f = malloc(sizeof(*f) + len);
	if (!f)
		return -ENOMEM;
	f->len = len;
	memcpy(f->key, key, len);
	a->folded_keys[a->n_folded_keys++] = f;
	a->folded++;
	return 0;
}

int hist_agg_add(struct hist_agg *a, const char *const *values, const uint64_t *slots,
		 uint64_t sum_units)
{
	return hist_agg_add_at(a, values, slots, sum_units, 0);
}

int hist_agg_add_at(struct hist_agg *a, const char *const *values, const uint64_t *slots,
		    uint64_t sum_units, uint64_t now)
{
	char key[HIST_AGG_MAX_LABELS * (HIST_AGG_MAX_VALUE + 1)];
	size_t len = 0, idx;

	for (size_t i = 0; i < a->n_labels; i++) {
		const char *v = values[i] ? values[i] : "";
		size_t n = strnlen(v, HIST_AGG_MAX_VALUE); /* longer values are cut */

		memcpy(key + len, v, n);
		len += n;
		key[len++] = '\0';
	}
	idx = fnv1a(key, len) & (a->cap - 1);
	while (a->table[idx]) {
		struct series *s = a->table[idx];

		if (s->key_len == len && memcmp(s->key, key, len) == 0) {
			series_add(a, s, slots, sum_units);
			s->stamp = now;
			return 0;
		}
		idx = (idx + 1) & (a->cap - 1);
	}
	if (a->n_series >= a->max_series) {
		if (!a->other) {
			char okey[HIST_AGG_MAX_LABELS * 7];
			size_t olen = 0;

			for (size_t i = 0; i < a->n_labels; i++) {
				memcpy(okey + olen, "_other", 7);
				olen += 7;
			}
			a->other = series_new(a, okey, olen);
			if (!a->other)
				return -ENOMEM;
			a->other->born = now;
		}
		series_add(a, a->other, slots, sum_units);
		return note_folded_key(a, key, len);
	}
	a->table[idx] = series_new(a, key, len);
	if (!a->table[idx])
		return -ENOMEM;
	series_add(a, a->table[idx], slots, sum_units);
	a->table[idx]->stamp = a->table[idx]->born = now;
	a->n_series++;
	return 0;
}

static void free_folded_keys(struct hist_agg *a)
{
	for (size_t i = 0; i < a->n_folded_keys; i++)
		free(a->folded_keys[i]);
	a->n_folded_keys = 0;
}

size_t hist_agg_expire(struct hist_agg *a, uint64_t before)
{
	struct series **table = calloc(a->cap, sizeof(*table));
	size_t kept = 0, dropped = 0;

	if (!table)
		return 0; /* nothing expires this time */
	for (size_t i = 0; i < a->cap; i++) {
		struct series *s = a->table[i];
		size_t idx;

		if (!s)
			continue;
		if (s->stamp < before) {
			free(s->key);
			free(s);
			dropped++;
			continue;
		}
		idx = fnv1a(s->key, s->key_len) & (a->cap - 1);
		while (table[idx])
			idx = (idx + 1) & (a->cap - 1);
		table[idx] = s;
		kept++;
	}
	free(a->table);
	a->table = table;
	a->n_series = kept;
	if (dropped) {
		/* label sets folded so far may have a series of their own from now on */
		free_folded_keys(a);
		a->folded = 0;
	}
	return dropped;
}

void hist_agg_set_sum_unit(struct hist_agg *a, double unit)
{
	a->sum_unit = unit;
}

size_t hist_agg_series(const struct hist_agg *a)
{
	return a->n_series + (a->other ? 1 : 0);
}

static int cmp_series(const void *x, const void *y)
{
	const struct series *a = *(struct series *const *)x, *b = *(struct series *const *)y;
	size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
	int c = memcmp(a->key, b->key, n);

	return c ? c : (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

/* Fill labels with the names of a and the values packed in s's key. */
static void series_labels(const struct hist_agg *a, const struct series *s,
			  const char **labels)
{
	const char *v = s->key;

	for (size_t i = 0; i < a->n_labels; i++) {
		labels[2 * i] = a->names[i];
		labels[2 * i + 1] = v;
		v += strlen(v) + 1;
	}
	labels[2 * a->n_labels] = NULL;
}

/*
 * Every series of a, sorted so that a scrape reads the same order each time,
 * with the folded "other" series last.  The caller frees the array.
 */
static struct series **sorted_series(const struct hist_agg *a, size_t *n_out)
{
	struct series **all = malloc((a->n_series + 1) * sizeof(*all));
	size_t n = 0;

	if (!all)
		return NULL;
	for (size_t i = 0; i < a->cap; i++)
		if (a->table[i])
			all[n++] = a->table[i];
	qsort(all, n, sizeof(*all), cmp_series);
	if (a->other)
		all[n++] = a->other;
	*n_out = n;
	return all;
}

void hist_agg_write(struct mw *w, const struct hist_agg *a, double unit)
{
	const char *labels[2 * HIST_AGG_MAX_LABELS + 1];
	double sum_unit = a->sum_unit > 0 ? a->sum_unit : unit;
	size_t n;
	struct series **all = sorted_series(a, &n);

	if (!all)
		return;
	for (size_t i = 0; i < n; i++) {
		series_labels(a, all[i], labels);
		w->born = all[i]->born;
		hist_log2(w, labels, all[i]->slots, a->n_slots, unit,
			  scale((double)all[i]->sum, sum_unit));
		w->born = 0;
	}
	free(all);
	note_folded(w, a->folded);
}

void hist_agg_write_counters(struct mw *w, const struct hist_agg *a)
{
	const char *labels[2 * HIST_AGG_MAX_LABELS + 1];
	size_t n;
	struct series **all = sorted_series(a, &n);

	if (!all)
		return;
	for (size_t i = 0; i < n; i++) {
		series_labels(a, all[i], labels);
		w->born = all[i]->born;
		mw_u64(w, labels, all[i]->slots[0]);
		w->born = 0;
	}
	free(all);
	note_folded(w, a->folded);
}

void hist_agg_free(struct hist_agg *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->cap; i++) {
		if (a->table[i]) {
			free(a->table[i]->key);
			free(a->table[i]);
		}
	}
	if (a->other) {
		free(a->other->key);
		free(a->other);
	}
	free_folded_keys(a);
	free(a->folded_keys);
	free(a->table);
	free(a);
}

/* ---- rendering */

static const char *const *const_labels(const struct metric *m, const char **buf)
{
	size_t i;

	for (i = 0; i < 2 * METRIC_MAX_LABELS && m->labels[i]; i++)
		buf[i] = m->labels[i];
	buf[i] = NULL;
	return buf;
}

static void render_static(struct mw *w)
{
	const char *lbuf[2 * METRIC_MAX_LABELS + 1];

	for (struct metric *m = head; m; m = m->next) {
		bool first = true;

		/* a family is written where its first member was registered */
		for (struct metric *o = head; o != m; o = o->next) {
			if (strcmp(o->name, m->name) == 0) {
				first = false;
				break;
			}
		}
		if (!first)
			continue;
		mw_family(w, m->name, m->type, m->help);
		for (struct metric *o = m; o; o = o->next) {
			if (strcmp(o->name, m->name) != 0)
				continue;
			if (o->type == MT_HISTOGRAM) {
				uint64_t slots[METRIC_HIST_SLOTS];
				uint64_t sum = __atomic_load_n(&o->sum, __ATOMIC_RELAXED);

				for (size_t i = 0; i < METRIC_HIST_SLOTS; i++)
					slots[i] = __atomic_load_n(&o->slots[i], __ATOMIC_RELAXED);
				mw_hist_log2(w, const_labels(o, lbuf), slots, METRIC_HIST_SLOTS,
					     o->unit, sum);
			} else if (o->type == MT_GAUGE) {
				int64_t v = (int64_t)__atomic_load_n(&o->v, __ATOMIC_RELAXED);

				if (w->vis) {
					mw_f64(w, const_labels(o, lbuf), (double)v);
					continue;
				}
				put_series(w, "", const_labels(o, lbuf), NULL, NULL);
				fprintf(w->f, "%" PRId64 "\n", v);
			} else {
				mw_u64(w, const_labels(o, lbuf),
				       __atomic_load_n(&o->v, __ATOMIC_RELAXED));
			}
		}
	}
}

void metrics_visit(const struct metrics_visitor *vis, void *priv)
{
	struct mw w = { .vis = vis, .vis_priv = priv };

	pthread_mutex_lock(&lock);
	render_static(&w);
	for (size_t i = 0; i < n_collectors; i++)
		collectors[i].fn(&w, collectors[i].priv);
	pthread_mutex_unlock(&lock);
}

char *metrics_render(size_t *len)
{
	struct mw w = { 0 };
	char *buf = NULL;
	size_t n = 0;

	w.f = open_memstream(&buf, &n);
	if (!w.f)
		return NULL;
	pthread_mutex_lock(&lock);
	render_static(&w);
	for (size_t i = 0; i < n_collectors; i++)
		collectors[i].fn(&w, collectors[i].priv);
	pthread_mutex_unlock(&lock);
	w.family = "podsnoop_metrics_series_folded";
	fprintf(w.f, "# HELP %s Label sets folded into one _other series by the "
		     "cardinality bound, at this scrape.\n# TYPE %s gauge\n", w.family, w.family);
	for (size_t i = 0; i < w.n_folded; i++) {
		put_series(&w, "", (const char *[]){ "family", w.folded[i].family, NULL }, NULL,
			   NULL);
		fprintf(w.f, "%" PRIu64 "\n", w.folded[i].n);
	}
	if (fclose(w.f)) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}
