/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Records leave the agent through sinks: NDJSON or text on stdout, the
 * shipper, the per-pod metrics. A tracer hands each decoded record (a view
 * into the ring buffer, lib/records.h) to out_<type>(), which attributes it
 * to its pod and gives it to every sink.
 */
#ifndef PS_OUTPUT_H
#define PS_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/ndjson.h"
#include "lib/records.h"

/*
 * Attribution: cgroup id (and mount namespace, for cgroup v1 nodes) to pod.
 * Called on the event path for every record: must not block or allocate.
 */
typedef const struct pod_ref *(*attrib_fn)(uint64_t cgroup_id, uint64_t mntns_id);
void out_set_attrib(attrib_fn fn);
/*
 * Optional: true when the record should wait for metadata that is on its way
 * (a container that just started). The raw ring buffer record was copied
 * aside (loop_sample_current()) and will be handed to the same ring buffer
 * callback again later; the sinks must not see it now. So a tracer's ring
 * callback may run twice for one record: it should decode, call
 * out_<type>(), and only then change its own state (counters, in-flight
 * maps). Records made outside ring callbacks (timers, histograms) never wait.
 */
typedef bool (*defer_fn)(uint64_t cgroup_id, uint64_t mntns_id);
void out_set_defer(defer_fn fn);
/*
 * For out_<type>(): attribute a record (v->pod); false when it was deferred
 * (return without calling the sinks). The pod_ref stays valid until the
 * sinks return: a sink that keeps records copies the strings.
 */
bool out_attribute(uint64_t cgroup_id, uint64_t mntns_id, const struct pod_ref **pod);

int out_add_sink(const struct sink_ops *ops, void *priv);
/* Attribute the record, then hand it to every sink. */
void out_exec(struct exec_view *v);
void out_open(struct open_view *v);
void out_bio(struct bio_view *v);
void out_bio_hist(struct bio_hist_view *v);
void out_loss(const struct loss_rec *l);
void out_fs(struct fs_view *v);
void out_cache(struct cache_view *v);
void out_flush(void);

/* The text output (execsnoop-style columns and the like), writing to a FILE *. */
extern const struct sink_ops text_sink;

#endif
