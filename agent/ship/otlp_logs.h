/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * OTLP logs: each record becomes one LogRecord, packed on the event loop
 * straight into the open batch (no allocation per record) the way
 * lib/batch.c packs podsnoop.v1.Record; a batch closes into
 * gzip(ExportLogsServiceRequest) with one ResourceLogs and one ScopeLogs.
 * Attribute names: docs/otlp.md. Every string is made valid UTF-8 (each
 * byte that is not part of a valid sequence becomes U+FFFD), since
 * receivers drop a whole request over one invalid string. The field
 * numbers are opentelemetry-proto's (proto/opentelemetry); test_otlp.py
 * decodes the batches with the OpenTelemetry project's own code. No
 * threads, no logging.
 */
#ifndef PS_OTLP_LOGS_H
#define PS_OTLP_LOGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "lib/batch.h"
#include "lib/records.h"
#include "agent/ship/otlp_config.h"

/* opentelemetry.proto.logs.v1.SeverityNumber values used */
#define OTLP_SEV_INFO 9
#define OTLP_SEV_WARN 13

struct otlp_logs {
	uint8_t *hdr;			/* room for the request's framing, then raw */
	size_t hdr_cap;
	uint8_t *raw;			/* the ScopeLogs.log_records fields, packed */
	size_t cap, len, max_len;	/* max_len: records stop here; losses use the rest */
	uint8_t *fixed;			/* Resource and InstrumentationScope fields, packed */
	size_t res_len, scope_len;
	uint8_t *zbuf;
	size_t zcap;
	z_stream z;
	bool z_ready;
	uint32_t max_records, n_records, n_logs;
	uint32_t counts[REC_MAX];
};

struct otlp_resource {
	const char *service_name, *service_version, *instance_id, *node, *host;
	const struct otlp_kv *extra;	/* OTEL_RESOURCE_ATTRIBUTES, win over the above */
	size_t n_extra;
};

/* max_bytes bounds the packed records of a batch. -errno (-E2BIG: resource too large). */
int otlp_logs_init(struct otlp_logs *o, uint32_t max_records, uint32_t max_bytes, int gzip_level,
		   const struct otlp_resource *res);
void otlp_logs_free(struct otlp_logs *o);

/* Pack one record. -ENOSPC: close the batch and add again; -E2BIG: never fits. */
int otlp_add_exec(struct otlp_logs *o, const struct exec_view *v);
int otlp_add_open(struct otlp_logs *o, const struct open_view *v);
int otlp_add_bio(struct otlp_logs *o, const struct bio_view *v);
int otlp_add_fs(struct otlp_logs *o, const struct fs_view *v);
int otlp_add_cache(struct otlp_logs *o, const struct cache_view *v);
int otlp_add_loss(struct otlp_logs *o, const struct loss_rec *l);

static inline bool otlp_logs_empty(const struct otlp_logs *o)
{
	return o->n_logs == 0;
}
static inline bool otlp_logs_full(const struct otlp_logs *o)
{
	return o->n_logs >= o->max_records;
}
/* The pending shipper losses become loss LogRecords; then frame, gzip. -errno. */
int otlp_logs_close(struct otlp_logs *o, uint64_t seq, uint64_t now_ns,
		    const struct loss_ent *losses, size_t n_losses, struct batch **out);
void otlp_logs_reset(struct otlp_logs *o);

/* A batch's body gunzipped (to at most max_raw) and unpacked as d. -EBADMSG, -E2BIG. */
int otlp_body_unpack(const struct batch *b, size_t max_raw, const ProtobufCMessageDescriptor *d,
		     ProtobufCMessage **out);
/* A spooled body: records per type from the event names. -EBADMSG, -E2BIG. */
int otlp_logs_load_meta(struct batch *b, size_t max_raw);
size_t otlp_logs_max_raw(uint32_t max_bytes);
size_t otlp_logs_max_body(uint32_t max_bytes);
/* A partial success' error_message, printable (control characters as spaces), into msg. */
void otlp_message(char *msg, size_t size, const char *e);
/* A 2xx ExportLogsServiceResponse: partial_success.rejected_log_records (0 if none). */
uint64_t otlp_logs_refused(const void *body, size_t len, char *msg, size_t size);

/*
 * The Resource and the InstrumentationScope ("podsnoop", its version), each
 * as field 1 of its parent, which the logs and the metrics messages share
 * (ResourceLogs/ResourceMetrics.resource, ScopeLogs/ScopeMetrics.scope):
 * *out (malloc'd) holds res_len bytes of the one, then scope_len of the
 * other. -E2BIG, -ENOMEM.
 */
int otlp_resource_pack(const struct otlp_resource *r, uint8_t **out, size_t *res_len,
		       size_t *scope_len);
/* Protobuf varints: the length of v's, and writing it. */
size_t otlp_vlen(uint64_t v);
uint8_t *otlp_put_varint(uint8_t *p, uint64_t v);

/* Valid UTF-8 of s[0..n): its length, and writing it (no NUL). */
size_t utf8_clean_len(const char *s, size_t n);
uint8_t *utf8_clean_put(uint8_t *p, const char *s, size_t n);

#endif
