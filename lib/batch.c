// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/batch.h"
#include "lib/pbconv.h"
#include "lib/records.h"

/* Batch.records is field 5, length-delimited */
#define BATCH_RECORDS_TAG ((5u << 3) | 2u)
/* room for the other Batch fields: the agent's identity and LOSS_KEYS_MAX losses, pods included */
#define BATCH_HDR_CAP (64u * 1024u)

static const char *const tracers[REC_MAX] = {
	[REC_EXEC] = "exec", [REC_OPEN] = "open", [REC_BIO] = "bio",
	[REC_BIO_HIST] = "bio", [REC_FS] = "fs", [REC_CACHE] = "cache",
};

const char *rec_tracer(enum rec_type t)
{
	return t < REC_MAX ? tracers[t] : "unknown";
}

enum rec_type rec_type_of(const Podsnoop__V1__Record *r)
{
	switch (r->kind_case) {
	case PODSNOOP__V1__RECORD__KIND_EXEC: return REC_EXEC;
	case PODSNOOP__V1__RECORD__KIND_OPEN: return REC_OPEN;
	case PODSNOOP__V1__RECORD__KIND_BIO: return REC_BIO;
	case PODSNOOP__V1__RECORD__KIND_BIO_HIST: return REC_BIO_HIST;
	case PODSNOOP__V1__RECORD__KIND_FS: return REC_FS;
	case PODSNOOP__V1__RECORD__KIND_CACHE: return REC_CACHE;
	default: return REC_MAX;
	}
}

/* ---- loss tally ---- */

void loss_tally_init(struct loss_tally *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->mu, NULL);
}

void loss_tally_destroy(struct loss_tally *t)
{
	pthread_mutex_destroy(&t->mu);
}

/* Called with t->mu held. Never NULL: the last slot collects overflowing keys. */
static struct loss_ent *find(struct loss_tally *t, const char *tracer, const char *stage,
			     const char *reason, bool has_cgroup, uint64_t cgroup_id)
{
	struct loss_ent *e;

	for (size_t i = 0; i < t->n; i++) {
		e = &t->e[i];
		if (!strcmp(e->tracer, tracer) && !strcmp(e->stage, stage) &&
		    !strcmp(e->reason, reason) && e->has_cgroup == has_cgroup &&
		    e->cgroup_id == cgroup_id)
			return e;
	}
	if (t->n >= LOSS_KEYS_MAX - 1) {
		/*
		 * Cgroups come and go: a cgroup's entry whose counts a batch has
		 * carried is given to the new key, so that the slots do not fill for
		 * good with the pods of the past (the totals of those live on in the
		 * kernel's counters and /metrics).
		 */
		for (size_t i = 0; i < LOSS_KEYS_MAX - 1; i++) {
			e = &t->e[i];
			if (e->has_cgroup && !e->count)
				goto take;
		}
		if (t->n == LOSS_KEYS_MAX)
			return &t->e[LOSS_KEYS_MAX - 1];
		tracer = "other";
		stage = "other";
		reason = "too_many_kinds";
		has_cgroup = false;
		cgroup_id = 0;
	}
	e = &t->e[t->n++];
take:
	memset(e, 0, sizeof(*e));
	snprintf(e->tracer, sizeof(e->tracer), "%s", tracer);
	snprintf(e->stage, sizeof(e->stage), "%s", stage);
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
	e->has_cgroup = has_cgroup;
	e->cgroup_id = cgroup_id;
	return e;
}

#define COPY(f) snprintf(d->f, sizeof(d->f), "%s", p->f ? p->f : "")
static void pod_copy(struct loss_pod *d, const struct pod_ref *p)
{
	COPY(namespace_);
	COPY(pod);
	COPY(pod_uid);
	COPY(container);
	COPY(container_id);
	COPY(runtime);
}
#undef COPY

static void add(struct loss_tally *t, const char *tracer, const char *stage, const char *reason,
		bool has_cgroup, uint64_t cgroup_id, const struct pod_ref *pod, uint64_t n)
{
	struct loss_ent *e;

	if (!n)
		return;
	pthread_mutex_lock(&t->mu);
	e = find(t, tracer, stage, reason ? reason : "", has_cgroup, cgroup_id);
	e->count += n;
	e->total += n;
	if (pod && e->has_cgroup) { /* the newest word on the cgroup's pod */
		pod_copy(&e->pod, pod);
		e->has_pod = true;
	}
	pthread_mutex_unlock(&t->mu);
}

void loss_tally_add(struct loss_tally *t, const char *tracer, const char *stage,
		    const char *reason, uint64_t n)
{
	add(t, tracer, stage, reason, false, 0, NULL, n);
}

void loss_tally_add_cgroup(struct loss_tally *t, const char *tracer, const char *stage,
			   uint64_t cgroup_id, const struct pod_ref *pod, uint64_t n)
{
	add(t, tracer, stage, "", true, cgroup_id, pod, n);
}

void loss_tally_readd(struct loss_tally *t, const struct loss_ent *in, size_t n)
{
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < n; i++) {
		struct loss_ent *e = find(t, in[i].tracer, in[i].stage, in[i].reason,
					  in[i].has_cgroup, in[i].cgroup_id);

		e->count += in[i].count;
		if (e->total < e->count)
			e->total = e->count;
		if (in[i].has_pod && e->has_cgroup && !e->has_pod) {
			e->pod = in[i].pod;
			e->has_pod = true;
		}
	}
	pthread_mutex_unlock(&t->mu);
}

size_t loss_tally_take(struct loss_tally *t, struct loss_ent *out)
{
	size_t n = 0;

	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->n; i++)
		if (t->e[i].count)
			out[n++] = t->e[i];
	pthread_mutex_unlock(&t->mu);
	return n;
}

size_t loss_tally_all(struct loss_tally *t, struct loss_ent *out)
{
	size_t n;

	pthread_mutex_lock(&t->mu);
	n = t->n;
	memcpy(out, t->e, n * sizeof(*out));
	pthread_mutex_unlock(&t->mu);
	return n;
}

void loss_tally_commit(struct loss_tally *t, const struct loss_ent *snap, size_t n)
{
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < n; i++) {
		struct loss_ent *e = find(t, snap[i].tracer, snap[i].stage, snap[i].reason,
					  snap[i].has_cgroup, snap[i].cgroup_id);

		e->count -= snap[i].count < e->count ? snap[i].count : e->count;
	}
	pthread_mutex_unlock(&t->mu);
}

/* ---- batches ---- */

void batch_free(struct batch *b)
{
	if (!b)
		return;
	free(b->losses);
	free(b->body);
	free(b);
}

struct batch *batch_from_body(uint8_t *body, size_t len, uint64_t spool_id)
{
	struct batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->body = body;
	b->len = len;
	b->spool_id = spool_id;
	return b;
}

/* deflate's largest ratio is about 1032:1: more output than this is a lie */
#define DEFLATE_MAX_RATIO 1032u

int pb_gunzip(const void *in, size_t len, size_t max_out, uint8_t **out, size_t *out_len)
{
	return pb_gunzip_grow(in, len, max_out, NULL, NULL, out, out_len);
}

int pb_gunzip_grow(const void *in, size_t len, size_t max_out, pb_grow_fn grow, void *ctx,
		   uint8_t **out, size_t *out_len)
{
	const uint8_t *p = in;
	size_t cap = len * 4 < 65536 ? 65536 : len * 4, have = 0;
	uint8_t *buf = NULL, *nb;
	z_stream z = { 0 };
	int zr, err = 0;

	if (len >= 18 && p[0] == 0x1f && p[1] == 0x8b) {
		/* gzip's trailer has the size (mod 2^32): a body that says it is
		 * too large, and could be, is refused before anything is inflated */
		size_t isize = (size_t)p[len - 4] | (size_t)p[len - 3] << 8 |
			       (size_t)p[len - 2] << 16 | (size_t)p[len - 1] << 24;

		if (isize / DEFLATE_MAX_RATIO <= len) { /* (else the trailer lies) */
			if (isize > max_out)
				return -E2BIG;
			cap = isize + 1; /* and the buffer's size */
		}
	}
	if (cap > max_out)
		cap = max_out;
	/* 15 + 32: gzip or zlib header, detected */
	if (inflateInit2(&z, 15 + 32) != Z_OK)
		return -ENOMEM;
	if (grow && (err = grow(ctx, have, cap)))
		goto out;
	have = cap;
	buf = malloc(cap);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = buf;
	z.avail_out = (uInt)cap;
	for (;;) {
		zr = inflate(&z, Z_FINISH);
		if (zr == Z_STREAM_END)
			break;
		if (zr != Z_BUF_ERROR && zr != Z_OK) {
			err = -EBADMSG;
			goto out;
		}
		if (z.avail_out) { /* input ended before the stream did */
			err = -EBADMSG;
			goto out;
		}
		if (cap >= max_out) {
			err = -E2BIG;
			goto out;
		}
		cap = cap * 2 > max_out ? max_out : cap * 2;
		if (grow && (err = grow(ctx, have, cap)))
			goto out;
		have = cap;
		nb = realloc(buf, cap);
		if (!nb) {
			err = -ENOMEM;
			goto out;
		}
		buf = nb;
		z.next_out = buf + z.total_out;
		z.avail_out = (uInt)(cap - z.total_out);
	}
	if (z.avail_in) { /* trailing bytes after the stream */
		err = -EBADMSG;
		goto out;
	}
	*out = buf;
	*out_len = z.total_out;
	buf = NULL;
out:
	free(buf);
	inflateEnd(&z);
	return err;
}

int batch_decode(const void *gz, size_t len, size_t max_raw, Podsnoop__V1__Batch **out)
{
	uint8_t *raw;
	size_t n;
	int err = pb_gunzip(gz, len, max_raw, &raw, &n);

	if (err)
		return err;
	*out = podsnoop__v1__batch__unpack(NULL, n, raw);
	free(raw);
	return *out ? 0 : -EBADMSG;
}

size_t batch_max_raw(uint32_t max_bytes)
{
	return (size_t)max_bytes + BATCH_HDR_CAP;
}

size_t batch_max_body(uint32_t max_bytes)
{
	/* deflate's worst case plus the gzip header and trailer */
	return compressBound((uLong)batch_max_raw(max_bytes)) + 32;
}

int batch_load_meta(struct batch *b, size_t max_raw)
{
	Podsnoop__V1__Batch *m;
	size_t n;
	int err;

	if (b->have_meta)
		return 0;
	err = batch_decode(b->body, b->len, max_raw, &m);
	if (err)
		return err;
	b->seq = m->seq;
	b->n_records = (uint32_t)m->n_records;
	memset(b->counts, 0, sizeof(b->counts));
	for (size_t i = 0; i < m->n_records; i++) {
		enum rec_type t = rec_type_of(m->records[i]);

		if (t < REC_MAX)
			b->counts[t]++;
	}
	n = m->n_losses < LOSS_KEYS_MAX ? m->n_losses : LOSS_KEYS_MAX;
	free(b->losses);
	b->losses = calloc(n ? n : 1, sizeof(*b->losses));
	if (!b->losses) {
		podsnoop__v1__batch__free_unpacked(m, NULL);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const Podsnoop__V1__Loss *l = m->losses[i];
		struct loss_ent *e = &b->losses[i];

		snprintf(e->tracer, sizeof(e->tracer), "%s", l->tracer);
		snprintf(e->stage, sizeof(e->stage), "%s", l->stage);
		snprintf(e->reason, sizeof(e->reason), "%s", l->reason);
		e->count = l->count;
		e->total = l->total;
		if (l->task) {
			struct pod_ref pr;
			const struct pod_ref *p = pbconv_pod_ref(l->task, &pr);

			e->has_cgroup = true;
			e->cgroup_id = l->task->cgroup_id;
			if (p) {
				pod_copy(&e->pod, p);
				e->has_pod = true;
			}
		}
	}
	b->n_losses = n;
	b->have_meta = true;
	podsnoop__v1__batch__free_unpacked(m, NULL);
	return 0;
}

/* ---- builder ---- */

int bb_init(struct batch_builder *bb, uint32_t max_records, uint32_t max_bytes, int gzip_level,
	    const Podsnoop__V1__Agent *agent)
{
	memset(bb, 0, sizeof(*bb));
	bb->max_records = max_records;
	bb->agent = agent;
	bb->cap = max_bytes;
	bb->hdr_cap = BATCH_HDR_CAP;
	/* the header is packed right in front of the records: one deflate call */
	bb->hdr = malloc(bb->hdr_cap + bb->cap);
	if (!bb->hdr)
		return -ENOMEM;
	bb->raw = bb->hdr + bb->hdr_cap;
	/* gzip wrapper (15 + 16); level 1 costs a fraction of level 6 for a little more size */
	if (deflateInit2(&bb->z, gzip_level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		bb_free(bb);
		return -ENOMEM;
	}
	bb->z_ready = true;
	bb->zcap = deflateBound(&bb->z, bb->hdr_cap + bb->cap);
	bb->zbuf = malloc(bb->zcap);
	if (!bb->zbuf) {
		bb_free(bb);
		return -ENOMEM;
	}
	return 0;
}

void bb_free(struct batch_builder *bb)
{
	if (bb->z_ready)
		deflateEnd(&bb->z);
	free(bb->hdr);
	free(bb->zbuf);
	memset(bb, 0, sizeof(*bb));
}

static size_t varint_len(size_t v)
{
	size_t n = 1;

	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *put_varint(uint8_t *p, size_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

int bb_add(struct batch_builder *bb, const Podsnoop__V1__Record *r)
{
	size_t size = protobuf_c_message_get_packed_size(&r->base);
	size_t need = 1 + varint_len(size) + size;
	enum rec_type t = rec_type_of(r);
	uint8_t *p;

	if (need > bb->cap || t == REC_MAX)
		return -E2BIG;
	if (bb->len + need > bb->cap)
		return -ENOSPC;
	/* records are appended as fields of Batch: concatenated fields merge */
	p = bb->raw + bb->len;
	*p++ = BATCH_RECORDS_TAG;
	p = put_varint(p, size);
	protobuf_c_message_pack(&r->base, p);
	bb->len += need;
	bb->n_records++;
	bb->counts[t]++;
	return 0;
}

int bb_close(struct batch_builder *bb, uint64_t seq, uint64_t sent_ns,
	     const struct loss_ent *losses, size_t n_losses, struct batch **out)
{
	Podsnoop__V1__Batch m = PODSNOOP__V1__BATCH__INIT;
	Podsnoop__V1__Loss lm[LOSS_KEYS_MAX], *lp[LOSS_KEYS_MAX];
	struct pb_task_buf tb[LOSS_KEYS_MAX];
	struct batch *b = NULL;
	size_t hsz;
	int zr;

	if (n_losses > LOSS_KEYS_MAX)
		return -EINVAL;
	m.agent = (Podsnoop__V1__Agent *)bb->agent;
	m.seq = seq;
	m.sent_ns = sent_ns;
	for (size_t i = 0; i < n_losses; i++) {
		podsnoop__v1__loss__init(&lm[i]);
		lm[i].tracer = (char *)losses[i].tracer;
		lm[i].stage = (char *)losses[i].stage;
		lm[i].reason = (char *)losses[i].reason;
		lm[i].count = losses[i].count;
		lm[i].total = losses[i].total;
		if (losses[i].has_cgroup) {
			const struct loss_pod *p = &losses[i].pod;
			struct pod_ref pod = {
				.namespace_ = p->namespace_, .pod = p->pod, .pod_uid = p->pod_uid,
				.container = p->container, .container_id = p->container_id,
				.runtime = p->runtime,
			};

			lm[i].task = pbconv_task(&tb[i], 0, 0, 0, 0, 0, NULL, 0, losses[i].cgroup_id,
						 0, losses[i].has_pod ? &pod : NULL);
		}
		lp[i] = &lm[i];
	}
	m.n_losses = n_losses;
	m.losses = lp;
	hsz = podsnoop__v1__batch__get_packed_size(&m);
	if (hsz > bb->hdr_cap)
		return -E2BIG;
	podsnoop__v1__batch__pack(&m, bb->raw - hsz);

	deflateReset(&bb->z);
	bb->z.next_in = bb->raw - hsz;
	bb->z.avail_in = (uInt)(hsz + bb->len);
	bb->z.next_out = bb->zbuf;
	bb->z.avail_out = (uInt)bb->zcap;
	/* one call with an output of deflateBound() bytes always finishes */
	zr = deflate(&bb->z, Z_FINISH);
	if (zr != Z_STREAM_END)
		return -EIO;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->len = bb->z.total_out;
	b->body = malloc(b->len);
	b->losses = malloc((n_losses ? n_losses : 1) * sizeof(*b->losses));
	if (!b->body || !b->losses) {
		batch_free(b);
		return -ENOMEM;
	}
	memcpy(b->body, bb->zbuf, b->len);
	if (n_losses)
		memcpy(b->losses, losses, n_losses * sizeof(*losses));
	b->n_losses = n_losses;
	b->seq = seq;
	b->n_records = bb->n_records;
	memcpy(b->counts, bb->counts, sizeof(b->counts));
	b->have_meta = true;
	*out = b;
	return 0;
}

void bb_reset(struct batch_builder *bb)
{
	bb->len = 0;
	bb->n_records = 0;
	memset(bb->counts, 0, sizeof(bb->counts));
}
