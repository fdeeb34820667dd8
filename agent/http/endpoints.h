/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The agent's HTTP endpoints (--listen), served by libmicrohttpd on a thread
 * of their own: /healthz (the event loop is alive), /readyz (every readiness
 * component is ok) and /metrics (the registry in metrics.h). Nothing here
 * runs on the event path; the loop only stores a heartbeat timestamp.
 */
#ifndef PS_ENDPOINTS_H
#define PS_ENDPOINTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* /healthz fails once the event loop has not beaten for this long */
#define ENDPOINTS_STALL_S 30
/*
 * Connections: in all, from one address (the kubelet's probes and the
 * scraper each come from their own), and how long a request's headers and
 * then its answer may take.
 */
#define ENDPOINTS_MAX_CONNS 64u
#define ENDPOINTS_MAX_CONNS_PER_IP 8u
#define ENDPOINTS_HEADER_S 5u
#define ENDPOINTS_ANSWER_S 30u

/*
 * Split "HOST:PORT", "[V6]:PORT" or ":PORT" (every address) into host
 * ("" for every address) and port (0..65535). -EINVAL when malformed.
 */
int endpoints_parse_addr(const char *addr, char *host, size_t host_sz, uint16_t *port);

/*
 * Bind addr and serve on a libmicrohttpd thread (signals blocked in it).
 * Returns 0 or -errno (-EADDRINUSE, -EADDRNOTAVAIL, -EINVAL, ...).
 */
int endpoints_start(const char *addr);
/* The bound port (useful with port 0), 0 when not serving. */
uint16_t endpoints_port(void);
/* Stop serving; waits for requests in flight. Safe when never started. */
void endpoints_stop(void);

/* The event loop is alive (called from the loop's periodic tick). */
void endpoints_heartbeat(void);

/*
 * Readiness components: /readyz answers 200 only when every component set so
 * far is ok, and lists each with its detail. Thread-safe (a short lock, never
 * taken on the event path). The agent sets "tracers"; a metadata source sets
 * "metadata" (ok when reachable, or ok with "off" when deliberately disabled).
 */
void health_set(const char *component, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Write the readiness report into buf; returns true when ready. */
bool health_report(char *buf, size_t n);
void health_reset(void);

#endif
