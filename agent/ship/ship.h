/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Shipping to a collector (--collector): a sink that packs every record
 * into the current batch on the event loop (no allocation, no I/O per
 * record), closes batches at a record count, byte size or age, and hands
 * them through a bounded queue to a shipper thread that POSTs them with
 * retries, parking them in the spool while the collector cannot take them.
 * Every record that does not make it is counted, and the counts travel in
 * the next batch. docs/shipping.md describes the whole policy.
 */
#ifndef PS_SHIP_H
#define PS_SHIP_H

#include "agent/config.h"
#include "agent/out/output.h"

extern const struct sink_ops ship_sink;

/*
 * Open the spool, start the shipper thread and add ship_sink. Call after
 * loop_init() (signals blocked). -errno, after logging why.
 */
int ship_start(const struct ps_config *cfg);
/*
 * After the last record: close the open batch, let the shipper send for at
 * most --flush-timeout-ms, spool what is left, stop the thread, log a
 * summary. Safe when ship_start did not run.
 */
void ship_stop(void);
/*
 * After the last record, before ship_stop() and ship_otlp_stop(): every sink
 * closes its open batch and starts flushing now, against one deadline
 * (--flush-timeout-ms from now), so the stop takes that long however many
 * sinks run.
 */
void ship_flush_begin(void);

#endif
