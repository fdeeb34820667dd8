// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/clock.h"
#include "agent/ship/otlp_logs.h"
#include "lib/version.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"

/* Field numbers and wire types (proto/opentelemetry; tests/integration/test_otlp.py) */
#define WT_VARINT 0
#define WT_I64 1
#define WT_LEN 2
#define TAG(f, wt) ((uint8_t)((f) << 3 | (wt)))
#define REQ_RESOURCE_LOGS TAG(1, WT_LEN)	/* ExportLogsServiceRequest */
#define RL_RESOURCE TAG(1, WT_LEN)		/* ResourceLogs */
#define RL_SCOPE_LOGS TAG(2, WT_LEN)
#define RES_ATTRIBUTES TAG(1, WT_LEN)		/* Resource */
#define SL_SCOPE TAG(1, WT_LEN)			/* ScopeLogs */
#define SL_LOG_RECORDS TAG(2, WT_LEN)
#define SCOPE_NAME TAG(1, WT_LEN)		/* InstrumentationScope */
#define SCOPE_VERSION TAG(2, WT_LEN)
#define LR_TIME TAG(1, WT_I64)			/* LogRecord */
#define LR_SEVERITY_NUMBER TAG(2, WT_VARINT)
#define LR_SEVERITY_TEXT TAG(3, WT_LEN)
#define LR_ATTRIBUTES TAG(6, WT_LEN)
#define LR_OBSERVED_TIME TAG(11, WT_I64)
#define LR_EVENT_NAME TAG(12, WT_LEN)
#define KV_KEY TAG(1, WT_LEN)			/* KeyValue */
#define KV_VALUE TAG(2, WT_LEN)
#define AV_STRING TAG(1, WT_LEN)		/* AnyValue */
#define AV_BOOL TAG(2, WT_VARINT)
#define AV_INT TAG(3, WT_VARINT)
#define AV_DOUBLE TAG(4, WT_I64)
#define AV_ARRAY TAG(5, WT_LEN)
#define ARR_VALUES TAG(1, WT_LEN)		/* ArrayValue */

/* one record's length prefix is written in this many bytes, then moved down */
#define REC_LEN_ROOM 3
#define REC_MAX_LEN ((1u << 21) - 1)
/* room after max_len for the loss LogRecords a close adds */
#define LOSS_LOG_MAX 320
#define HDR_CAP 32
#define FIXED_MAX 8192

/* ---- UTF-8 ---- */

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates), or 0. */
static size_t u8_seq(const uint8_t *s, size_t n)
{
	uint8_t c = s[0];

	if (c < 0x80)
		return 1;
	if (c < 0xc2)
		return 0;
	if (c < 0xe0)
		return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c < 0xf0) {
		if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0))
			return 0;
		return 3;
	}
	if (c < 0xf5) {
		if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return 0;
		if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
			return 0;
		return 4;
	}
	return 0;
}

size_t utf8_clean_len(const char *str, size_t n)
{
	const uint8_t *s = (const uint8_t *)str;
	size_t out = 0, i = 0, k;

	while (i < n) {
		if (s[i] < 0x80) {
			i++, out++;
			continue;
		}
		k = u8_seq(s + i, n - i);
		if (k) {
			i += k, out += k;
		} else {
			i++, out += 3; /* U+FFFD */
		}
	}
	return out;
}

uint8_t *utf8_clean_put(uint8_t *p, const char *str, size_t n)
{
	const uint8_t *s = (const uint8_t *)str;
	size_t i = 0, k, run;

	while (i < n) {
		for (run = i; run < n && s[run] < 0x80; run++)
			;
		memcpy(p, s + i, run - i);
		p += run - i;
		i = run;
		if (i >= n)
			break;
		k = u8_seq(s + i, n - i);
		if (k) {
			memcpy(p, s + i, k);
			p += k, i += k;
		} else {
			*p++ = 0xef, *p++ = 0xbf, *p++ = 0xbd;
			i++;
		}
	}
	return p;
}

/* ---- the wire ---- */

size_t otlp_vlen(uint64_t v)
{
	size_t n = 1;

	while (v >= 0x80)
		v >>= 7, n++;
	return n;
}

uint8_t *otlp_put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static uint8_t *put_fixed64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

/* The record being written: [p, end), over when it did not fit. */
struct w {
	uint8_t *p, *end;
	bool over;
};

static bool room(struct w *w, size_t n)
{
	if (w->over || (size_t)(w->end - w->p) < n) {
		w->over = true;
		return false;
	}
	return true;
}

/* KeyValue framing around an AnyValue of any_len bytes; false when it does not fit */
static bool kv_head(struct w *w, const char *key, size_t any_len)
{
	size_t kl = strlen(key), inner = 1 + otlp_vlen(kl) + kl + 1 + otlp_vlen(any_len) + any_len;

	if (!room(w, 1 + otlp_vlen(inner) + inner))
		return false;
	*w->p++ = LR_ATTRIBUTES;
	w->p = otlp_put_varint(w->p, inner);
	*w->p++ = KV_KEY;
	w->p = otlp_put_varint(w->p, kl);
	memcpy(w->p, key, kl);
	w->p += kl;
	*w->p++ = KV_VALUE;
	w->p = otlp_put_varint(w->p, any_len);
	return true;
}

static void kv_str(struct w *w, const char *key, const char *s, size_t n)
{
	size_t cl = utf8_clean_len(s, n);

	if (!kv_head(w, key, 1 + otlp_vlen(cl) + cl))
		return;
	*w->p++ = AV_STRING;
	w->p = otlp_put_varint(w->p, cl);
	w->p = utf8_clean_put(w->p, s, n);
}

static void kv_cstr(struct w *w, const char *key, const char *s)
{
	kv_str(w, key, s, strlen(s));
}

static void kv_int(struct w *w, const char *key, int64_t v)
{
	if (!kv_head(w, key, 1 + otlp_vlen((uint64_t)v)))
		return;
	*w->p++ = AV_INT;
	w->p = otlp_put_varint(w->p, (uint64_t)v);
}

static void kv_bool(struct w *w, const char *key, bool v)
{
	if (!kv_head(w, key, 2))
		return;
	*w->p++ = AV_BOOL;
	*w->p++ = v;
}

static void kv_double(struct w *w, const char *key, double v)
{
	uint64_t bits;

	if (!kv_head(w, key, 9))
		return;
	memcpy(&bits, &v, sizeof(bits));
	*w->p++ = AV_DOUBLE;
	w->p = put_fixed64(w->p, bits);
}

/* argc NUL-terminated strings back to back, as an array of strings */
static void kv_strv(struct w *w, const char *key, const char *a, uint32_t argc)
{
	size_t arr = 0, any, cl, n;
	const char *s = a;

	for (uint32_t i = 0; i < argc; i++) {
		n = strlen(s);
		cl = utf8_clean_len(s, n);
		any = 1 + otlp_vlen(cl) + cl;
		arr += 1 + otlp_vlen(any) + any;
		s += n + 1;
	}
	if (!kv_head(w, key, 1 + otlp_vlen(arr) + arr))
		return;
	*w->p++ = AV_ARRAY;
	w->p = otlp_put_varint(w->p, arr);
	for (uint32_t i = 0; i < argc; i++) {
		n = strlen(a);
		cl = utf8_clean_len(a, n);
		*w->p++ = ARR_VALUES;
		w->p = otlp_put_varint(w->p, 1 + otlp_vlen(cl) + cl);
		*w->p++ = AV_STRING;
		w->p = otlp_put_varint(w->p, cl);
		w->p = utf8_clean_put(w->p, a, n);
		a += n + 1;
	}
}

static void field_str(struct w *w, uint8_t tag, const char *s)
{
	size_t n = strlen(s);

	if (!room(w, 1 + otlp_vlen(n) + n))
		return;
	*w->p++ = tag;
	w->p = otlp_put_varint(w->p, n);
	memcpy(w->p, s, n);
	w->p += n;
}

/* ---- records ---- */

/* Start a LogRecord at the end of the batch, up to limit. */
static struct w rec_begin(struct otlp_logs *o, size_t limit, uint64_t wall_ns, const char *event,
			  bool warn)
{
	struct w w = { o->raw + o->len + 1 + REC_LEN_ROOM, o->raw + limit, false };

	if (o->len + 1 + REC_LEN_ROOM >= limit) {
		w.p = w.end;
		w.over = true;
		return w;
	}
	if (room(&w, 2 * 9 + 2 + 6)) {
		*w.p++ = LR_TIME;
		w.p = put_fixed64(w.p, wall_ns);
		*w.p++ = LR_OBSERVED_TIME;
		w.p = put_fixed64(w.p, clock_now_ns(CLOCK_REALTIME));
		*w.p++ = LR_SEVERITY_NUMBER;
		*w.p++ = warn ? OTLP_SEV_WARN : OTLP_SEV_INFO;
	}
	field_str(&w, LR_SEVERITY_TEXT, warn ? "WARN" : "INFO");
	field_str(&w, LR_EVENT_NAME, event);
	return w;
}

/* Frame the record: tag, length moved down onto its minimal varint. 0, -ENOSPC, -E2BIG. */
static int rec_end(struct otlp_logs *o, struct w *w, enum rec_type t)
{
	uint8_t *start = o->raw + o->len, *body = start + 1 + REC_LEN_ROOM;
	size_t len = (size_t)(w->p - body), vl;

	if (w->over)
		return o->n_logs ? -ENOSPC : -E2BIG;
	if (len > REC_MAX_LEN)
		return -E2BIG;
	vl = otlp_vlen(len);
	start[0] = SL_LOG_RECORDS;
	otlp_put_varint(start + 1, len);
	if (vl < REC_LEN_ROOM)
		memmove(start + 1 + vl, body, len);
	o->len += 1 + vl + len;
	o->n_logs++;
	if (t < REC_MAX) {
		o->n_records++;
		o->counts[t]++;
	}
	return 0;
}

static void k8s(struct w *w, const struct pod_ref *p)
{
	if (!p)
		return;
	if (p->namespace_ && *p->namespace_)
		kv_cstr(w, "k8s.namespace.name", p->namespace_);
	if (p->pod && *p->pod)
		kv_cstr(w, "k8s.pod.name", p->pod);
	if (p->pod_uid && *p->pod_uid)
		kv_cstr(w, "k8s.pod.uid", p->pod_uid);
	if (p->container && *p->container)
		kv_cstr(w, "k8s.container.name", p->container);
	if (p->container_id && *p->container_id)
		kv_cstr(w, "container.id", p->container_id);
	if (p->runtime && *p->runtime)
		kv_cstr(w, "container.runtime.name", p->runtime);
}

static void task(struct w *w, uint32_t pid, uint32_t tid, const char *comm, size_t comm_size)
{
	kv_int(w, "process.pid", pid);
	kv_int(w, "thread.id", tid);
	kv_str(w, "process.executable.name", comm, strnlen(comm, comm_size));
}

static void ids(struct w *w, uint64_t cgroup_id, uint64_t mntns_id, const char *hook)
{
	kv_int(w, "podsnoop.cgroup.id", (int64_t)cgroup_id);
	kv_int(w, "podsnoop.mntns.id", (int64_t)mntns_id);
	kv_cstr(w, "podsnoop.hook", hook);
}

static void dev_str(char *buf, size_t n, uint32_t dev)
{
	snprintf(buf, n, "%u:%u", dev >> 20, dev & ((1u << 20) - 1));
}

int otlp_add_exec(struct otlp_logs *o, const struct exec_view *v)
{
	const struct exec_event *e = v->e;
	struct w w = rec_begin(o, o->max_len, v->wall_ns, "exec", e->retval < 0);

	task(&w, e->pid, e->tid, e->comm, sizeof(e->comm));
	kv_int(&w, "process.parent_pid", e->ppid);
	kv_int(&w, "process.real_user.id", e->uid);
	kv_int(&w, "podsnoop.exec.gid", e->gid);
	kv_str(&w, "process.executable.path", v->filename, v->filename_len);
	kv_strv(&w, "process.command_args", v->args, v->argc);
	kv_bool(&w, "podsnoop.exec.args_truncated", v->args_truncated);
	kv_int(&w, "podsnoop.exec.retval", e->retval);
	if (e->flags & EXEC_F_READ_FAULT)
		kv_bool(&w, "podsnoop.read_fault", true);
	ids(&w, e->cgroup_id, e->mntns_id, exec_method_name(e->method));
	k8s(&w, v->pod);
	return rec_end(o, &w, REC_EXEC);
}

int otlp_add_open(struct otlp_logs *o, const struct open_view *v)
{
	const struct open_event *e = v->e;
	struct w w = rec_begin(o, o->max_len, v->wall_ns, "open", e->ret < 0);

	task(&w, e->pid, e->tid, e->comm, sizeof(e->comm));
	kv_int(&w, "process.real_user.id", e->uid);
	kv_cstr(&w, "podsnoop.open.syscall", open_syscall_name(e->syscall));
	if (!(e->rflags & OPEN_F_NO_DIRFD))
		kv_int(&w, "podsnoop.open.dirfd", e->dirfd);
	kv_str(&w, "file.path", v->path, v->path_len);
	kv_bool(&w, "podsnoop.path_truncated", v->truncated);
	kv_int(&w, "podsnoop.open.flags", e->flags);
	kv_int(&w, "podsnoop.open.mode", e->mode);
	kv_int(&w, "podsnoop.open.ret", e->ret);
	kv_int(&w, "podsnoop.latency_ns", (int64_t)e->latency_ns);
	if (e->rflags & OPEN_F_READ_FAULT)
		kv_bool(&w, "podsnoop.read_fault", true);
	ids(&w, e->cgroup_id, e->mntns_id, open_method_name(e->method));
	k8s(&w, v->pod);
	return rec_end(o, &w, REC_OPEN);
}

int otlp_add_bio(struct otlp_logs *o, const struct bio_view *v)
{
	const struct bio_event *e = v->e;
	struct w w = rec_begin(o, o->max_len, v->wall_ns, "bio", e->status != 0);
	char dev[24];

	dev_str(dev, sizeof(dev), e->dev);
	kv_str(&w, "podsnoop.bio.disk", v->disk, v->disk_len);
	kv_cstr(&w, "podsnoop.bio.dev", dev);
	kv_cstr(&w, "podsnoop.bio.op", v->op);
	kv_int(&w, "podsnoop.bio.sector", (int64_t)e->sector);
	kv_int(&w, "podsnoop.bio.bytes", e->bytes);
	if (e->flags & BIO_F_QUEUED)
		kv_int(&w, "podsnoop.bio.queue_ns", (int64_t)e->queue_ns);
	kv_int(&w, "podsnoop.latency_ns", (int64_t)e->latency_ns);
	if (e->flags & BIO_F_NO_ISSUE)
		kv_bool(&w, "podsnoop.bio.no_issue", true);
	if (e->flags & BIO_F_MERGED)
		kv_bool(&w, "podsnoop.bio.merged", true);
	kv_int(&w, "podsnoop.bio.status", e->status);
	task(&w, e->pid, e->tid, e->comm, sizeof(e->comm));
	kv_cstr(&w, "podsnoop.bio.attribution", bio_attrib_name(e->attribution));
	kv_int(&w, "podsnoop.bio.blkcg_id", (int64_t)e->blkcg_id);
	if (e->flags & BIO_F_BLKCG_V1)
		kv_bool(&w, "podsnoop.bio.blkcg_v1", true);
	ids(&w, e->cgroup_id, e->mntns_id, bio_method_name(e->method));
	k8s(&w, v->pod);
	return rec_end(o, &w, REC_BIO);
}

int otlp_add_fs(struct otlp_logs *o, const struct fs_view *v)
{
	const struct fs_event *e = v->e;
	struct w w = rec_begin(o, o->max_len, v->wall_ns, "fs", e->ret < 0);
	char dev[24];

	dev_str(dev, sizeof(dev), e->dev);
	task(&w, e->pid, e->tid, e->comm, sizeof(e->comm));
	kv_cstr(&w, "podsnoop.fs.op", fs_op_name(e->op));
	kv_int(&w, "podsnoop.fs.bytes", (e->op == FS_OP_READ || e->op == FS_OP_WRITE) &&
		e->ret > 0 ? e->ret : 0);
	kv_int(&w, "podsnoop.fs.offset", (int64_t)e->offset);
	if (e->size)
		kv_int(&w, "podsnoop.fs.size", (int64_t)e->size);
	kv_int(&w, "podsnoop.latency_ns", (int64_t)e->latency_ns);
	kv_str(&w, "file.name", v->name, v->name_len);
	kv_str(&w, "file.path", v->path, v->path_len);
	kv_bool(&w, "podsnoop.path_truncated", v->path_truncated);
	kv_cstr(&w, "podsnoop.fs.type", fs_type_name(e->fs));
	kv_cstr(&w, "podsnoop.fs.dev", dev);
	kv_int(&w, "podsnoop.fs.ino", (int64_t)e->ino);
	if (e->ret < 0)
		kv_int(&w, "podsnoop.fs.error", -e->ret);
	if (e->flags & FS_F_DATASYNC)
		kv_bool(&w, "podsnoop.fs.datasync", true);
	if (e->flags & FS_F_OVERLAY)
		kv_bool(&w, "podsnoop.fs.overlay", true);
	if (e->flags & FS_F_READ_FAULT)
		kv_bool(&w, "podsnoop.read_fault", true);
	ids(&w, e->cgroup_id, e->mntns_id, fs_method_name(e->method));
	k8s(&w, v->pod);
	return rec_end(o, &w, REC_FS);
}

int otlp_add_cache(struct otlp_logs *o, const struct cache_view *v)
{
	struct w w = rec_begin(o, o->max_len, v->wall_ns, "cache", false);

	kv_int(&w, "podsnoop.cache.interval_ns", (int64_t)v->interval_ns);
	if (v->accesses_known) {
		kv_int(&w, "podsnoop.cache.accesses", (int64_t)v->accesses);
		kv_int(&w, "podsnoop.cache.hits", (int64_t)v->hits);
	}
	kv_int(&w, "podsnoop.cache.misses", (int64_t)v->misses);
	kv_int(&w, "podsnoop.cache.dirtied", (int64_t)v->dirtied);
	if (v->ratio_known)
		kv_double(&w, "podsnoop.cache.hit_ratio", v->hit_ratio);
	kv_bool(&w, "podsnoop.cache.estimated", v->estimated);
	kv_int(&w, "podsnoop.cache.pages_added", (int64_t)v->added);
	kv_int(&w, "podsnoop.cache.buffers_dirtied", (int64_t)v->buf_dirtied);
	kv_int(&w, "podsnoop.cache.host_buffers_kb", (int64_t)v->host_buffers_kb);
	kv_int(&w, "podsnoop.cache.host_cached_kb", (int64_t)v->host_cached_kb);
	ids(&w, v->cgroup_id, v->mntns_id, cache_method_name(v->method));
	k8s(&w, v->pod);
	return rec_end(o, &w, REC_CACHE);
}

static int add_loss(struct otlp_logs *o, size_t limit, uint64_t wall_ns, const char *tracer,
		    const char *stage, const char *reason, uint64_t count, uint64_t total,
		    const struct loss_rec *l)
{
	struct w w = rec_begin(o, limit, wall_ns, "loss", true);

	kv_cstr(&w, "podsnoop.loss.tracer", tracer);
	kv_cstr(&w, "podsnoop.loss.stage", stage);
	if (reason && *reason)
		kv_cstr(&w, "podsnoop.loss.reason", reason);
	kv_int(&w, "podsnoop.loss.count", (int64_t)count);
	kv_int(&w, "podsnoop.loss.total", (int64_t)total);
	if (l && l->has_cgroup) {
		kv_int(&w, "podsnoop.cgroup.id", (int64_t)l->cgroup_id);
		k8s(&w, l->pod);
	}
	return rec_end(o, &w, REC_MAX);
}

int otlp_add_loss(struct otlp_logs *o, const struct loss_rec *l)
{
	return add_loss(o, o->max_len, l->wall_ns, l->tracer, l->stage, NULL, l->count, l->total,
			l);
}

/* ---- batches ---- */

static uint8_t *put_str_field(uint8_t *p, uint8_t tag, const char *s, size_t n)
{
	*p++ = tag;
	p = otlp_put_varint(p, n);
	memcpy(p, s, n);
	return p + n;
}

/* One Resource attribute, a string (a key given twice: the later, extra one wins). */
static uint8_t *res_attr(uint8_t *p, uint8_t *end, const char *k, const char *v, bool *over)
{
	size_t kl = strlen(k), cl = utf8_clean_len(v, strlen(v));
	size_t any = 1 + otlp_vlen(cl) + cl, inner = 1 + otlp_vlen(kl) + kl + 1 + otlp_vlen(any) + any;

	if (*over || (size_t)(end - p) < 1 + otlp_vlen(inner) + inner) {
		*over = true;
		return p;
	}
	*p++ = RES_ATTRIBUTES;
	p = otlp_put_varint(p, inner);
	p = put_str_field(p, KV_KEY, k, kl);
	*p++ = KV_VALUE;
	p = otlp_put_varint(p, any);
	*p++ = AV_STRING;
	p = otlp_put_varint(p, cl);
	return utf8_clean_put(p, v, strlen(v));
}

static bool overridden(const struct otlp_resource *r, const char *k)
{
	for (size_t i = 0; i < r->n_extra; i++)
		if (!strcmp(r->extra[i].key, k))
			return true;
	return false;
}

int otlp_resource_pack(const struct otlp_resource *r, uint8_t **out, size_t *res_len,
		       size_t *scope_len)
{
	uint8_t body[FIXED_MAX], *p = body, *end = body + sizeof(body), *q;
	const char *ours[][2] = {
		{ "service.name", r->service_name },
		{ "service.version", r->service_version },
		{ "service.instance.id", r->instance_id },
		{ "k8s.node.name", r->node },
		{ "host.name", r->host },
	};
	bool over = false;
	size_t n;

	for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
		/* OTEL_SERVICE_NAME wins over service.name in OTEL_RESOURCE_ATTRIBUTES */
		if (ours[i][1] && (i == 0 || !overridden(r, ours[i][0])))
			p = res_attr(p, end, ours[i][0], ours[i][1], &over);
	for (size_t i = 0; i < r->n_extra; i++)
		if (strcmp(r->extra[i].key, "service.name"))
			p = res_attr(p, end, r->extra[i].key, r->extra[i].value, &over);
	if (over)
		return -E2BIG;
	n = (size_t)(p - body);
	*out = q = malloc(2 * (1 + 5) + n + 64);
	if (!q)
		return -ENOMEM;
	*q++ = RL_RESOURCE;
	q = otlp_put_varint(q, n);
	memcpy(q, body, n);
	q += n;
	*res_len = (size_t)(q - *out);
	/* InstrumentationScope { name, version } as ScopeLogs.scope */
	*q++ = SL_SCOPE;
	q = otlp_put_varint(q, 2 + strlen("podsnoop") + 2 + strlen(PODSNOOP_VERSION));
	q = put_str_field(q, SCOPE_NAME, "podsnoop", strlen("podsnoop"));
	q = put_str_field(q, SCOPE_VERSION, PODSNOOP_VERSION, strlen(PODSNOOP_VERSION));
	*scope_len = (size_t)(q - *out) - *res_len;
	return 0;
}

/* Resource and InstrumentationScope, packed once: they are the same in every batch. */
static int pack_fixed(struct otlp_logs *o, const struct otlp_resource *r)
{
	return otlp_resource_pack(r, &o->fixed, &o->res_len, &o->scope_len);
}

size_t otlp_logs_max_raw(uint32_t max_bytes)
{
	return HDR_CAP + FIXED_MAX + 64 + (size_t)max_bytes + LOSS_KEYS_MAX * LOSS_LOG_MAX;
}

size_t otlp_logs_max_body(uint32_t max_bytes)
{
	return compressBound((uLong)otlp_logs_max_raw(max_bytes)) + 32;
}

int otlp_logs_init(struct otlp_logs *o, uint32_t max_records, uint32_t max_bytes, int gzip_level,
		   const struct otlp_resource *res)
{
	int err;

	memset(o, 0, sizeof(*o));
	o->max_records = max_records;
	err = pack_fixed(o, res);
	if (err)
		return err;
	o->max_len = max_bytes;
	o->cap = (size_t)max_bytes + LOSS_KEYS_MAX * LOSS_LOG_MAX;
	o->hdr_cap = HDR_CAP + o->res_len + o->scope_len;
	o->hdr = malloc(o->hdr_cap + o->cap);
	if (!o->hdr) {
		otlp_logs_free(o);
		return -ENOMEM;
	}
	o->raw = o->hdr + o->hdr_cap;
	if (deflateInit2(&o->z, gzip_level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		otlp_logs_free(o);
		return -ENOMEM;
	}
	o->z_ready = true;
	o->zcap = deflateBound(&o->z, o->hdr_cap + o->cap);
	o->zbuf = malloc(o->zcap);
	if (!o->zbuf) {
		otlp_logs_free(o);
		return -ENOMEM;
	}
	return 0;
}

void otlp_logs_free(struct otlp_logs *o)
{
	if (o->z_ready)
		deflateEnd(&o->z);
	free(o->hdr);
	free(o->zbuf);
	free(o->fixed);
	memset(o, 0, sizeof(*o));
}

void otlp_logs_reset(struct otlp_logs *o)
{
	o->len = 0;
	o->n_records = 0;
	o->n_logs = 0;
	memset(o->counts, 0, sizeof(o->counts));
}

int otlp_logs_close(struct otlp_logs *o, uint64_t seq, uint64_t now_ns,
		    const struct loss_ent *losses, size_t n_losses, struct batch **out)
{
	size_t sl, rl, hsz;
	struct batch *b;
	uint8_t *p;
	int err;

	for (size_t i = 0; i < n_losses; i++) {
		err = add_loss(o, o->cap, now_ns, losses[i].tracer, losses[i].stage,
			       losses[i].reason, losses[i].count, losses[i].total, NULL);
		if (err)
			return -E2BIG;
	}
	/* ResourceLogs { resource, ScopeLogs { scope, log_records... } }, framed backwards */
	sl = o->scope_len + o->len;
	rl = o->res_len + 1 + otlp_vlen(sl) + sl;
	hsz = 1 + otlp_vlen(rl) + o->res_len + 1 + otlp_vlen(sl) + o->scope_len;
	if (hsz > o->hdr_cap)
		return -E2BIG;
	p = o->raw - hsz;
	*p++ = REQ_RESOURCE_LOGS;
	p = otlp_put_varint(p, rl);
	memcpy(p, o->fixed, o->res_len);
	p += o->res_len;
	*p++ = RL_SCOPE_LOGS;
	p = otlp_put_varint(p, sl);
	memcpy(p, o->fixed + o->res_len, o->scope_len);

	deflateReset(&o->z);
	o->z.next_in = o->raw - hsz;
	o->z.avail_in = (uInt)(hsz + o->len);
	o->z.next_out = o->zbuf;
	o->z.avail_out = (uInt)o->zcap;
	if (deflate(&o->z, Z_FINISH) != Z_STREAM_END)
		return -EIO;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->len = o->z.total_out;
	b->body = malloc(b->len);
	b->losses = malloc((n_losses ? n_losses : 1) * sizeof(*b->losses));
	if (!b->body || !b->losses) {
		batch_free(b);
		return -ENOMEM;
	}
	memcpy(b->body, o->zbuf, b->len);
	if (n_losses)
		memcpy(b->losses, losses, n_losses * sizeof(*losses));
	b->n_losses = n_losses;
	b->seq = seq;
	b->n_records = o->n_records;
	memcpy(b->counts, o->counts, sizeof(b->counts));
	b->have_meta = true;
	*out = b;
	return 0;
}

static const char *const event_names[REC_MAX] = {
	[REC_EXEC] = "exec", [REC_OPEN] = "open", [REC_BIO] = "bio",
	[REC_BIO_HIST] = "bio_hist", [REC_FS] = "fs", [REC_CACHE] = "cache",
};

int otlp_body_unpack(const struct batch *b, size_t max_raw, const ProtobufCMessageDescriptor *d,
		     ProtobufCMessage **out)
{
	uint8_t *raw;
	size_t len;
	int err;

	err = pb_gunzip(b->body, b->len, max_raw, &raw, &len);
	if (err)
		return err;
	*out = protobuf_c_message_unpack(d, NULL, len, raw);
	free(raw);
	return *out ? 0 : -EBADMSG;
}

int otlp_logs_load_meta(struct batch *b, size_t max_raw)
{
	Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *m;
	int err = otlp_body_unpack(
		b, max_raw,
		&opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor,
		(ProtobufCMessage **)&m);

	if (err)
		return err;
	b->n_records = 0;
	memset(b->counts, 0, sizeof(b->counts));
	for (size_t i = 0; i < m->n_resource_logs; i++)
		for (size_t j = 0; j < m->resource_logs[i]->n_scope_logs; j++) {
			const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl =
				m->resource_logs[i]->scope_logs[j];

			for (size_t k = 0; k < sl->n_log_records; k++)
				for (int t = 0; t < REC_MAX; t++)
					if (!strcmp(sl->log_records[k]->event_name,
						    event_names[t])) {
						b->counts[t]++;
						b->n_records++;
					}
		}
	/* the shipper losses it carried are not read back: they were reported once */
	b->n_losses = 0;
	b->have_meta = true;
	opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(
		m, NULL);
	return 0;
}

void otlp_message(char *msg, size_t size, const char *e)
{
	size_t o = 0;

	for (size_t i = 0; e && e[i] && o + 1 < size; i++)
		msg[o++] = (unsigned char)e[i] >= 0x20 && e[i] != 0x7f ? e[i] : ' ';
	if (size)
		msg[o] = '\0';
}

uint64_t otlp_logs_refused(const void *body, size_t len, char *msg, size_t size)
{
	Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse *m;
	uint64_t n = 0;

	if (!len)
		return 0;
	m = opentelemetry__proto__collector__logs__v1__export_logs_service_response__unpack(
		NULL, len, body);
	if (!m)
		return 0; /* a 2xx whose body is not the response (or cut at 4 KiB): taken */
	if (m->partial_success && m->partial_success->rejected_log_records > 0) {
		n = (uint64_t)m->partial_success->rejected_log_records;
		otlp_message(msg, size, m->partial_success->error_message);
	}
	opentelemetry__proto__collector__logs__v1__export_logs_service_response__free_unpacked(
		m, NULL);
	return n;
}
