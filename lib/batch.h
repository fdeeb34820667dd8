/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Batches for the collector: a builder that packs each record as it comes
 * (no allocation per record), closes the batch into gzip(Batch), and the
 * loss tally whose counters travel in the next batch. No threads, no I/O,
 * no logging here: ship.c drives it, the collector reuses the decoding.
 */
#ifndef PS_SHIP_BATCH_H
#define PS_SHIP_BATCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "podsnoop/v1/batch.pb-c.h"

/* Record types, in the order of Record.kind (records.proto). */
enum rec_type { REC_EXEC, REC_OPEN, REC_BIO, REC_BIO_HIST, REC_FS, REC_CACHE, REC_MAX };

/* The tracer a record of this type comes from (charged when it is lost). */
const char *rec_tracer(enum rec_type t);
/* REC_MAX when no kind is set. */
enum rec_type rec_type_of(const Podsnoop__V1__Record *r);

/* ---- loss counters, by (tracer, stage, reason) ---- */

#define LOSS_KEYS_MAX 64

/* The pod of a per-cgroup loss, copied: the tally outlives the metadata it came from. */
struct loss_pod {
	char namespace_[64];
	char pod[254];
	char pod_uid[40];
	char container[64];
	char container_id[72];
	char runtime[16];
};

struct loss_ent {
	char tracer[16];
	char stage[24];
	char reason[24];
	uint64_t count;		/* not yet carried by a batch */
	uint64_t total;		/* since start */
	/* part of the key: a per-cgroup loss (rate_limited) is counted per cgroup */
	bool has_cgroup;
	uint64_t cgroup_id;
	bool has_pod;		/* pod is known */
	struct loss_pod pod;
};

struct loss_tally {
	pthread_mutex_t mu;
	struct loss_ent e[LOSS_KEYS_MAX];
	size_t n;
};

void loss_tally_init(struct loss_tally *t);
void loss_tally_destroy(struct loss_tally *t);
/*
 * n records were lost. Keys beyond LOSS_KEYS_MAX share one "other" entry;
 * per-cgroup entries already carried by a batch make room first.
 */
void loss_tally_add(struct loss_tally *t, const char *tracer, const char *stage,
		    const char *reason, uint64_t n);
/* The same, of one cgroup's records; pod NULL when unknown (lib/records.h). */
struct pod_ref;
void loss_tally_add_cgroup(struct loss_tally *t, const char *tracer, const char *stage,
			   uint64_t cgroup_id, const struct pod_ref *pod, uint64_t n);
/* A batch carrying these counts was lost: they must travel again. */
void loss_tally_readd(struct loss_tally *t, const struct loss_ent *e, size_t n);
/* Copy the entries with a count to out (at most LOSS_KEYS_MAX); returns how many. */
size_t loss_tally_take(struct loss_tally *t, struct loss_ent *out);
/* Copy every entry (their totals), whatever their pending count; returns how many. */
size_t loss_tally_all(struct loss_tally *t, struct loss_ent *out);
/* A batch carrying snap was queued: those counts are on their way. */
void loss_tally_commit(struct loss_tally *t, const struct loss_ent *snap, size_t n);

/* ---- closed batches ---- */

struct batch {
	struct batch *next;		/* queue link */
	uint64_t seq;
	uint32_t n_records;
	uint32_t counts[REC_MAX];	/* records per type */
	struct loss_ent *losses;	/* the loss counters it carries */
	size_t n_losses;
	bool have_meta;			/* the fields above are known (false: read from the spool) */
	uint64_t spool_id;		/* 0: not in the spool */
	size_t len;
	uint8_t *body;			/* gzip(Batch), as POSTed */
};

void batch_free(struct batch *b);
/* A batch around a body read back from the spool (takes body). */
struct batch *batch_from_body(uint8_t *body, size_t len, uint64_t spool_id);
/*
 * Fill the meta fields of a batch from its body, gunzipped to at most max_raw
 * bytes; -EBADMSG when it does not decode, -E2BIG beyond max_raw.
 */
int batch_load_meta(struct batch *b, size_t max_raw);
/* The largest packed Batch, and gzip body, a builder of max_bytes makes. */
size_t batch_max_raw(uint32_t max_bytes);
size_t batch_max_body(uint32_t max_bytes);

/*
 * gunzip (or zlib, auto-detected) into a malloc'd buffer of at most max_out
 * bytes: -E2BIG beyond, -EBADMSG when the data is not valid.
 */
int pb_gunzip(const void *in, size_t len, size_t max_out, uint8_t **out, size_t *out_len);
/*
 * The same, calling grow(ctx, have, want) before the buffer is first made
 * (have 0) and each time it grows; an error it returns ends the gunzip. The
 * buffer handed back (or freed on error) is the last `want` bytes large.
 */
typedef int (*pb_grow_fn)(void *ctx, size_t have, size_t want);
int pb_gunzip_grow(const void *in, size_t len, size_t max_out, pb_grow_fn grow, void *ctx,
		   uint8_t **out, size_t *out_len);
/* gunzip and unpack a POSTed body; free with podsnoop__v1__batch__free_unpacked(b, NULL). */
int batch_decode(const void *gz, size_t len, size_t max_raw, Podsnoop__V1__Batch **out);

/* ---- the builder ---- */

struct batch_builder {
	uint8_t *raw;			/* the Batch.records fields, packed */
	size_t cap, len;
	uint8_t *hdr;			/* the other Batch fields, packed at close */
	size_t hdr_cap;
	uint8_t *zbuf;			/* gzip output, copied into the batch */
	size_t zcap;
	z_stream z;
	bool z_ready;
	uint32_t max_records;
	uint32_t n_records;
	uint32_t counts[REC_MAX];
	const Podsnoop__V1__Agent *agent;
};

/* max_bytes bounds the packed (uncompressed) batch. -errno. */
int bb_init(struct batch_builder *bb, uint32_t max_records, uint32_t max_bytes, int gzip_level,
	    const Podsnoop__V1__Agent *agent);
void bb_free(struct batch_builder *bb);
/*
 * Pack one record. -ENOSPC: it does not fit beside the records already
 * there (close, then add again); -E2BIG: it never fits a batch.
 */
int bb_add(struct batch_builder *bb, const Podsnoop__V1__Record *r);
static inline bool bb_empty(const struct batch_builder *bb)
{
	return bb->n_records == 0;
}
static inline bool bb_full(const struct batch_builder *bb)
{
	return bb->n_records >= bb->max_records;
}
/* Encode and compress what was added, with these header fields. -errno. */
int bb_close(struct batch_builder *bb, uint64_t seq, uint64_t sent_ns,
	     const struct loss_ent *losses, size_t n_losses, struct batch **out);
/* Start an empty batch. */
void bb_reset(struct batch_builder *bb);

#endif
