/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Exporting every record as an OTLP/HTTP LogRecord and the per-pod metrics
 * (--otlp-endpoint; docs/otlp.md).
 */
#ifndef PS_SHIP_OTLP_H
#define PS_SHIP_OTLP_H

#include "agent/config.h"

/* When cfg->ship.otlp.logs_url or metrics_url is set. Call after loop_init(). -errno, logged. */
int ship_otlp_start(const struct ps_config *cfg);
/*
 * The last metrics export: after the last record, while the tracers' counters
 * and the per-pod families are still there. Once; safe when it did not start.
 */
void ship_otlp_final(void);
/* After the last record; safe when it did not start. */
void ship_otlp_stop(void);

#endif
