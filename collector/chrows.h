/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The ClickHouse tables (one per NDJSON record type, plus batches) and the
 * conversion of one NDJSON line, as lib/ndjson.c writes it, into one
 * JSONEachRow row of its table: the k8s object flattened, the histogram's
 * buckets as arrays, booleans as 0/1, the batch's node, agent_id and seq and
 * the record's index in front, a DateTime beside the nanosecond ts_ns. The
 * row is made from the NDJSON text itself, so a row holds what the NDJSON
 * output writes for the same record, by construction; numbers are copied as
 * text (a double would round 64-bit nanoseconds). No allocation, no logging.
 */
#ifndef PS_COLLECTOR_CHROWS_H
#define PS_COLLECTOR_CHROWS_H

#include <stddef.h>
#include <stdint.h>

enum ch_col_type {
	CT_U64, CT_I64, CT_F64, CT_STR, CT_BOOL,
	CT_NU64, CT_NI64, CT_NF64,	/* Nullable: null when absent or null */
	CT_ASTR,			/* Array(String) */
	CT_BK_LO, CT_BK_HI, CT_BK_COUNT,	/* bio_hist buckets: Array(UInt64), hi Nullable */
	CT_K8S,				/* a String from the k8s object */
	CT_DATETIME,			/* from ts_ns */
	/* from the batch, not the line */
	CT_NODE, CT_AGENT, CT_SEQ, CT_IDX,
};

struct ch_col {
	const char *name;
	enum ch_col_type type;
	const char *src;	/* the NDJSON key (in k8s for CT_K8S, in buckets[] for CT_BK_*) */
};

struct ch_table {
	const char *name;	/* the NDJSON "type" */
	const struct ch_col *cols;
	unsigned n_cols;
};

enum { CH_EXEC, CH_OPEN, CH_BIO, CH_BIO_HIST, CH_FS, CH_CACHE, CH_LOSS, CH_BATCHES, CH_TABLES };
extern const struct ch_table ch_tables[CH_TABLES];

/* The ClickHouse type of a column, as in CREATE TABLE. */
const char *ch_col_sql_type(enum ch_col_type t);
/* The table of an NDJSON line by its "type"; -1 when none. */
int ch_table_of_line(const char *line, size_t len);

/* node and agent_id as JSON string literals (quotes included) */
struct ch_batch_ctx {
	const char *node_json, *agent_json;
	uint64_t seq;
};

/*
 * The row of NDJSON line (without its '\n') for table t, with idx, into
 * out[0..cap). Returns its length ('\n' included), -ENOSPC when it does not
 * fit (then try again with more room), -EINVAL for a line that is not a
 * JSON object.
 */
long ch_row(const struct ch_table *t, const struct ch_batch_ctx *b, uint32_t idx,
	    const char *line, size_t len, char *out, size_t cap);

#endif
