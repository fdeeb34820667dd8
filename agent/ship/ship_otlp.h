/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Exporting every record as an OTLP/HTTP LogRecord (--otlp-endpoint; docs/otlp.md). */
#ifndef PS_SHIP_OTLP_H
#define PS_SHIP_OTLP_H

#include "agent/config.h"

/* When cfg->ship.otlp.logs_url is set. Call after loop_init(). -errno, logged. */
int ship_otlp_start(const struct ps_config *cfg);
/* After the last record; safe when it did not start. */
void ship_otlp_stop(void);

#endif
