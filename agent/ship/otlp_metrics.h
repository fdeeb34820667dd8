/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * OTLP metrics: the per-pod families of /metrics and podsnoop's own losses,
 * as one ExportMetricsServiceRequest per export. Nothing is aggregated here:
 * the figures are read from the /metrics registry (metrics_visit(), the
 * state pod_metrics.c and tracer_metrics.c keep), so both show the same
 * numbers with the same cardinality bound. Cumulative temporality; latency
 * histograms with explicit bounds at the kernel's log2 slots, exactly the
 * `le` values of /metrics. Names, units and attributes: docs/otlp.md. No
 * threads, no logging.
 */
#ifndef PS_OTLP_METRICS_H
#define PS_OTLP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/metrics.h"
#include "agent/ship/otlp_logs.h"
#include "lib/batch.h"

struct otlp_metrics {
	uint8_t *fixed;			/* Resource, InstrumentationScope (otlp_resource_pack) */
	size_t res_len, scope_len;
	int gzip_level;
	uint64_t start_ns;		/* agent start (realtime): points of series without a birth */
	int64_t boot_to_wall;		/* fixed at init, so that a series' start time never moves */
	bool due;			/* an export is asked for (ship core: not empty) */
	/* the request being built: Metric fields, and the current family's points */
	uint8_t *buf, *fam;
	size_t len, cap, fam_len, fam_cap;
	int fam_idx;			/* the family being visited, -1 when not exported */
	enum metric_type fam_type;
	const char *fam_help;		/* its description */
	uint64_t now_ns;
	uint32_t n_points;
	int err;
};

int otlp_metrics_init(struct otlp_metrics *o, int gzip_level, uint64_t agent_start_ns,
		      const struct otlp_resource *res);
void otlp_metrics_free(struct otlp_metrics *o);
/*
 * Read every exported family now (on the thread that feeds pod_metrics:
 * the event loop), frame, gzip. The batch's n_records is its data points,
 * its counts all 0: a point lost is no record lost, the next export carries
 * the same totals. -errno.
 */
int otlp_metrics_close(struct otlp_metrics *o, uint64_t seq, uint64_t now_ns, struct batch **out);
/* Data points of a body (gzipped request): into b->n_records. -EBADMSG, -E2BIG. */
int otlp_metrics_load_meta(struct batch *b, size_t max_raw);
/* A 2xx ExportMetricsServiceResponse: partial_success.rejected_data_points (0 if none). */
uint64_t otlp_metrics_refused(const void *body, size_t len, char *msg, size_t size);
/* The largest request body accepted back (a bound for gunzip). */
size_t otlp_metrics_max_raw(uint32_t batch_bytes);

#endif
