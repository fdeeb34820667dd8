// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* NDJSON line -> ClickHouse JSONEachRow row (chrows.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "collector/chrows.h"

/* every record table starts with these: the dedup key, then the time */
#define HEAD \
	{ "node", CT_NODE, NULL }, { "agent_id", CT_AGENT, NULL }, { "seq", CT_SEQ, NULL }, \
	{ "idx", CT_IDX, NULL }, { "ts", CT_DATETIME, "ts_ns" }, { "ts_ns", CT_U64, "ts_ns" }
#define K8S \
	{ "k8s_namespace", CT_K8S, "namespace" }, { "k8s_pod", CT_K8S, "pod" }, \
	{ "k8s_pod_uid", CT_K8S, "pod_uid" }, { "k8s_container", CT_K8S, "container" }, \
	{ "container_id", CT_K8S, "container_id" }, { "runtime", CT_K8S, "runtime" }
#define C(n, t) { #n, t, #n }

static const struct ch_col exec_cols[] = {
	HEAD, C(pid, CT_U64), C(tid, CT_U64), C(ppid, CT_U64), C(uid, CT_U64), C(gid, CT_U64),
	C(comm, CT_STR), C(filename, CT_STR), C(args, CT_ASTR), C(args_truncated, CT_BOOL),
	C(retval, CT_I64), C(cgroup_id, CT_U64), C(mntns_id, CT_U64), C(hook, CT_STR),
	C(read_fault, CT_BOOL), K8S,
};
static const struct ch_col open_cols[] = {
	HEAD, C(pid, CT_U64), C(tid, CT_U64), C(uid, CT_U64), C(comm, CT_STR),
	C(syscall, CT_STR), C(dirfd, CT_NI64), C(path, CT_STR), C(path_truncated, CT_BOOL),
	C(flags, CT_U64), C(mode, CT_U64), C(ret, CT_I64), C(latency_ns, CT_U64),
	C(cgroup_id, CT_U64), C(mntns_id, CT_U64), C(hook, CT_STR), C(read_fault, CT_BOOL), K8S,
};
static const struct ch_col bio_cols[] = {
	HEAD, C(disk, CT_STR), C(dev, CT_STR), C(op, CT_STR), C(sector, CT_U64),
	C(bytes, CT_U64), C(queue_ns, CT_NU64), C(latency_ns, CT_U64), C(no_issue, CT_BOOL),
	C(status, CT_I64), C(pid, CT_U64), C(tid, CT_U64), C(comm, CT_STR),
	C(attribution, CT_STR), C(cgroup_id, CT_U64), C(mntns_id, CT_U64), C(blkcg_id, CT_U64),
	C(blkcg_v1, CT_BOOL), C(hook, CT_STR), K8S,
	C(merged, CT_BOOL),	/* schema version 3 */
};
static const struct ch_col bio_hist_cols[] = {
	HEAD, C(interval_ns, CT_U64), C(cgroup_id, CT_U64), C(disk, CT_STR), C(dev, CT_STR),
	C(op, CT_STR), C(unit, CT_STR), { "buckets_lo", CT_BK_LO, "lo" },
	{ "buckets_hi", CT_BK_HI, "hi" }, { "buckets_count", CT_BK_COUNT, "count" },
	C(count, CT_U64), C(sum_ns, CT_U64), K8S,
	C(merged, CT_U64),	/* schema version 3 */
};
static const struct ch_col fs_cols[] = {
	HEAD, C(pid, CT_U64), C(tid, CT_U64), C(comm, CT_STR), C(op, CT_STR), C(bytes, CT_U64),
	C(offset, CT_U64), C(size, CT_NU64), C(latency_ns, CT_U64), C(file, CT_STR),
	C(path, CT_STR), C(path_truncated, CT_BOOL), C(fs, CT_STR), C(dev, CT_STR),
	C(ino, CT_U64), C(error, CT_NI64), C(fd, CT_NI64), C(datasync, CT_BOOL),
	C(overlay, CT_BOOL), C(read_fault, CT_BOOL), C(cgroup_id, CT_U64), C(mntns_id, CT_U64),
	C(hook, CT_STR), K8S,
};
static const struct ch_col cache_cols[] = {
	HEAD, C(interval_ns, CT_U64), C(accesses, CT_NU64), C(hits, CT_NU64), C(misses, CT_U64),
	C(dirtied, CT_U64), C(hit_ratio, CT_NF64), C(estimated, CT_BOOL),
	C(pages_added, CT_U64), C(buffers_dirtied, CT_U64), C(host_buffers_kb, CT_U64),
	C(host_cached_kb, CT_U64), C(cgroup_id, CT_U64), C(mntns_id, CT_U64), C(hook, CT_STR),
	K8S,
};
/* the collector's loss lines (collector/output.c): the agent's counters plus a reason */
static const struct ch_col loss_cols[] = {
	HEAD, C(tracer, CT_STR), C(stage, CT_STR), C(reason, CT_STR), C(count, CT_U64),
	C(total, CT_U64),
	C(cgroup_id, CT_U64), K8S,	/* schema version 4: per-cgroup losses (rate_limited) */
};
/* the collector's batch line, and when it was received */
static const struct ch_col batches_cols[] = {
	{ "node", CT_NODE, NULL }, { "agent_id", CT_AGENT, NULL }, { "seq", CT_SEQ, NULL },
	{ "ts", CT_DATETIME, "ts_ns" }, { "sent_ns", CT_U64, "ts_ns" },
	C(received_ns, CT_U64), C(version, CT_STR), C(kernel, CT_STR), C(started_ns, CT_U64),
	C(records, CT_U64), C(losses, CT_U64), C(skipped, CT_U64), C(bytes, CT_U64),
	C(raw_bytes, CT_U64),	/* schema version 2 */
};

#define T(n) { #n, n##_cols, sizeof(n##_cols) / sizeof(n##_cols[0]) }
const struct ch_table ch_tables[CH_TABLES] = {
	[CH_EXEC] = T(exec), [CH_OPEN] = T(open), [CH_BIO] = T(bio), [CH_BIO_HIST] = T(bio_hist),
	[CH_FS] = T(fs), [CH_CACHE] = T(cache), [CH_LOSS] = T(loss), [CH_BATCHES] = T(batches),
};

const char *ch_col_sql_type(enum ch_col_type t)
{
	switch (t) {
	case CT_U64: case CT_SEQ: return "UInt64";
	case CT_I64: return "Int64";
	case CT_F64: return "Float64";
	case CT_STR: case CT_K8S: case CT_NODE: case CT_AGENT: return "String";
	case CT_BOOL: return "UInt8";
	case CT_NU64: return "Nullable(UInt64)";
	case CT_NI64: return "Nullable(Int64)";
	case CT_NF64: return "Nullable(Float64)";
	case CT_ASTR: return "Array(String)";
	case CT_BK_LO: case CT_BK_COUNT: return "Array(UInt64)";
	case CT_BK_HI: return "Array(Nullable(UInt64))";
	case CT_DATETIME: return "DateTime";
	case CT_IDX: return "UInt32";
	}
	return "String";
}

/* ---- a scanner for the JSON lib/jsonw.c writes: values are kept as text ---- */

#define MAX_KEYS 64

struct span {
	const char *p;
	size_t n;
};

struct kv {
	struct span key, val;	/* key without its quotes */
};

static const char *ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

/* The end of the value at p, or NULL. */
static const char *value_end(const char *p, const char *end)
{
	int depth = 0;

	if (p >= end)
		return NULL;
	if (*p != '"' && *p != '{' && *p != '[') {
		while (p < end && !strchr(",}] \t\r\n", *p))
			p++;
		return p;
	}
	while (p < end) {
		char c = *p++;

		if (c == '"') {
			while (p < end && *p != '"')
				p += *p == '\\' ? 2 : 1;
			if (p >= end)
				return NULL;
			p++;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			depth--;
		}
		if (!depth)
			return p;
	}
	return NULL;
}

/* The members of the object at p..end: count, or -EINVAL. */
static int members(const char *p, const char *end, struct kv *kv, int max)
{
	int n = 0;

	p = ws(p, end);
	if (p >= end || *p++ != '{')
		return -EINVAL;
	p = ws(p, end);
	if (p < end && *p == '}')
		return 0;
	while (p < end) {
		const char *k, *v;

		if (*p++ != '"')
			return -EINVAL;
		k = p;
		while (p < end && *p != '"')
			p += *p == '\\' ? 2 : 1;
		if (p >= end)
			return -EINVAL;
		if (n < max)
			kv[n].key = (struct span){ k, (size_t)(p - k) };
		p = ws(p + 1, end);
		if (p >= end || *p++ != ':')
			return -EINVAL;
		v = ws(p, end);
		p = value_end(v, end);
		if (!p)
			return -EINVAL;
		if (n < max)
			kv[n++].val = (struct span){ v, (size_t)(p - v) };
		p = ws(p, end);
		if (p < end && *p == ',') {
			p = ws(p + 1, end);
			continue;
		}
		return p < end && *p == '}' ? n : -EINVAL;
	}
	return -EINVAL;
}

static const struct span *get(const struct kv *kv, int n, const char *key)
{
	size_t len = strlen(key);

	for (int i = 0; i < n; i++)
		if (kv[i].key.n == len && !memcmp(kv[i].key.p, key, len))
			return &kv[i].val;
	return NULL;
}

static bool is_null(const struct span *s)
{
	return !s || (s->n == 4 && !memcmp(s->p, "null", 4));
}

int ch_table_of_line(const char *line, size_t len)
{
	const char *end = line + len, *p;

	/* "type" is always first (lib/ndjson.c, collector/output.c) */
	p = ws(line, end);
	if (p >= end || *p != '{')
		return -1;
	p = ws(p + 1, end);
	if ((size_t)(end - p) < 8 || memcmp(p, "\"type\":\"", 8))
		return -1;
	p += 8;
	for (int t = 0; t < CH_TABLES; t++) {
		size_t n = strlen(ch_tables[t].name);

		if ((size_t)(end - p) > n && !memcmp(p, ch_tables[t].name, n) && p[n] == '"')
			return t;
	}
	return -1;
}

struct out {
	char *p, *end;
	bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full || (size_t)(o->end - o->p) < n) {
		o->full = true;
		return;
	}
	memcpy(o->p, s, n);
	o->p += n;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_span(struct out *o, const struct span *s)
{
	put(o, s->p, s->n);
}

static void put_u64(struct out *o, uint64_t v)
{
	char b[24];

	put(o, b, (size_t)snprintf(b, sizeof(b), "%" PRIu64, v));
}

/* Unsigned decimal text -> value (our own output: digits only). */
static uint64_t span_u64(const struct span *s)
{
	uint64_t v = 0;

	for (size_t i = 0; s && i < s->n && s->p[i] >= '0' && s->p[i] <= '9'; i++)
		v = v * 10 + (uint64_t)(s->p[i] - '0');
	return v;
}

/* buckets: [{"lo":..,"hi":..,"count":..},...] -> [x,...] of one key */
static int put_buckets(struct out *o, const struct span *arr, const char *key, bool nullable)
{
	const char *p, *end;
	bool first = true;

	put(o, "[", 1);
	if (!arr || is_null(arr)) {
		put(o, "]", 1);
		return 0;
	}
	p = arr->p + 1;
	end = arr->p + arr->n - 1;
	for (p = ws(p, end); p < end;) {
		struct kv kv[8];
		const char *e = value_end(p, end);
		const struct span *v;
		int n;

		if (!e || (n = members(p, e, kv, 8)) < 0)
			return -EINVAL;
		v = get(kv, n, key);
		if (!first)
			put(o, ",", 1);
		first = false;
		if (is_null(v))
			puts_(o, nullable ? "null" : "0");
		else
			put_span(o, v);
		p = ws(e, end);
		if (p < end && *p == ',')
			p = ws(p + 1, end);
	}
	put(o, "]", 1);
	return 0;
}

long ch_row(const struct ch_table *t, const struct ch_batch_ctx *b, uint32_t idx,
	    const char *line, size_t len, char *buf, size_t cap)
{
	struct kv kv[MAX_KEYS], k8s[8];
	struct out o = { buf, buf + cap, false };
	const struct span *k8s_obj;
	int n, nk = 0;

	n = members(line, line + len, kv, MAX_KEYS);
	if (n < 0)
		return -EINVAL;
	k8s_obj = get(kv, n, "k8s");
	if (k8s_obj && !is_null(k8s_obj)) {
		nk = members(k8s_obj->p, k8s_obj->p + k8s_obj->n, k8s, 8);
		if (nk < 0)
			return -EINVAL;
	}
	put(&o, "{", 1);
	for (unsigned i = 0; i < t->n_cols; i++) {
		const struct ch_col *c = &t->cols[i];
		const struct span *v = c->src ? get(kv, n, c->src) : NULL;

		if (i)
			put(&o, ",", 1);
		put(&o, "\"", 1);
		puts_(&o, c->name);
		put(&o, "\":", 2);
		switch (c->type) {
		case CT_NODE: puts_(&o, b->node_json); break;
		case CT_AGENT: puts_(&o, b->agent_json); break;
		case CT_SEQ: put_u64(&o, b->seq); break;
		case CT_IDX: put_u64(&o, idx); break;
		case CT_DATETIME: put_u64(&o, span_u64(v) / 1000000000u); break;
		case CT_U64: case CT_I64: case CT_F64:
			if (is_null(v))
				put(&o, "0", 1);
			else
				put_span(&o, v);
			break;
		case CT_NU64: case CT_NI64: case CT_NF64:
			if (is_null(v))
				puts_(&o, "null");
			else
				put_span(&o, v);
			break;
		case CT_STR:
			if (!v || v->p[0] != '"')
				put(&o, "\"\"", 2);
			else
				put_span(&o, v);
			break;
		case CT_BOOL:
			put(&o, v && v->n == 4 && !memcmp(v->p, "true", 4) ? "1" : "0", 1);
			break;
		case CT_ASTR:
			if (!v || v->p[0] != '[')
				put(&o, "[]", 2);
			else
				put_span(&o, v);
			break;
		case CT_BK_LO: case CT_BK_HI: case CT_BK_COUNT:
			if (put_buckets(&o, get(kv, n, "buckets"), c->src, c->type == CT_BK_HI))
				return -EINVAL;
			break;
		case CT_K8S:
			v = get(k8s, nk, c->src);
			if (!v || v->p[0] != '"')
				put(&o, "\"\"", 2);
			else
				put_span(&o, v);
			break;
		}
	}
	put(&o, "}\n", 2);
	if (o.full)
		return -ENOSPC;
	return (long)(o.p - buf);
}
