/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The tracers' counters and ring buffer fill, published in /metrics. */
#ifndef PS_TRACER_METRICS_H
#define PS_TRACER_METRICS_H

#include <stdbool.h>
#include <stddef.h>

/* Register the collector, podsnoop_build_info and podsnoop_ready. -errno */
int tracer_metrics_init(void);
/* tracer_table[i] is attached with this method: publish its figures. */
void tracer_metrics_started(size_t i, const char *method);
/* Stop reading tracer_table[i] (before it is destroyed). */
void tracer_metrics_stopped(size_t i);
void tracer_metrics_set_ready(bool ready);
/*
 * More samples of podsnoop_events_lost_total ({tracer, stage}), written
 * after the kernel's at each scrape: the shipper's losses. NULL: none.
 */
struct mw;
void tracer_metrics_set_lost_extra(void (*fn)(struct mw *w));
/* Unmap the ring buffer position pages (after the HTTP server stopped). */
void tracer_metrics_free(void);

#endif
