/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The NDJSON records (docs/records.md): one JSON object per line. The
 * agent's --output ndjson and the collector's --out file are both written
 * by it, so a record reads the same wherever it is printed.
 */
#ifndef PS_LIB_NDJSON_H
#define PS_LIB_NDJSON_H

#include "lib/records.h"

/* priv: the FILE * to write to. */
extern const struct sink_ops ndjson_sink;

struct jw;
/* A record's "k8s" object; nothing when p is NULL (the collector's loss lines too). */
void ndjson_k8s(struct jw *w, const struct pod_ref *p);

#endif
