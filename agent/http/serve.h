/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * --listen: the agent's side of the HTTP endpoints, and the figures behind
 * /metrics (kept with --listen or the OTLP metrics export). main.c calls
 * these at fixed points of its run; they do nothing when neither is on.
 */
#ifndef PS_SERVE_H
#define PS_SERVE_H

#include <stddef.h>

#include "agent/config.h"

/* After the event loop exists (signals blocked): register metrics, bind, serve; -errno. */
int serve_start(const struct ps_config *cfg);
/* tracer_table[i] attached with this method. */
void serve_tracer_started(size_t i, const char *method);
/* Tracers are started: /readyz turns ready. */
void serve_tracers_ready(void);
/* Once a second from the event loop: the /healthz heartbeat. */
void serve_tick(void);
/* Before the tracers are detached: stop serving. */
void serve_stop(void);
/* After the last record and the last OTLP export, before the tracers are destroyed. */
void serve_metrics_stop(void);

#endif
