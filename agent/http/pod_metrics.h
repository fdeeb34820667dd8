/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The per-pod families of /metrics, one for each tracer's records, all
 * labelled namespace, pod, container (empty for the node's own tasks) and
 * summed since the agent started:
 *
 *   podsnoop_bio_latency_seconds{...,disk,op}	bio_hist records (kernel log2 slots)
 *   podsnoop_fs_latency_seconds{...,op,fs}	fs records (slower than --fs-min-us)
 *   podsnoop_open_latency_seconds{...}		open records
 *   podsnoop_opens_total{...,result}		open records: ok, failed
 *   podsnoop_execs_total{...,result}		exec records: ok, failed
 *   podsnoop_pagecache_{hits,misses}_total{...}	cache rows
 *   podsnoop_pod_events_lost_total{...,tracer,stage}	loss records that name a cgroup
 *
 * One mechanism for all (struct pod_family): a hist_agg per family, fed by
 * one sink on the event loop, written by a collector at scrape. Latencies
 * measured per record are put into the same log2 slots of whole
 * microseconds as the kernel's bio histograms, so every latency family has
 * the same bucket bounds; a counter is a one-slot series.
 *
 * Cardinality is bounded per family: at most POD_METRICS_MAX_SERIES label
 * sets; beyond that, samples fold into one series labelled "_other" (and
 * podsnoop_metrics_series_folded{family} says how many label sets went
 * there). A series not added to for POD_METRICS_IDLE_S leaves /metrics (gone
 * pods do not stay forever); should its label set come back, it starts again
 * from zero, a counter reset that Prometheus' rate() handles.
 */
#ifndef PS_POD_METRICS_H
#define PS_POD_METRICS_H

#include <stddef.h>

#define POD_METRICS_MAX_SERIES 2048
#define POD_METRICS_IDLE_S 3600

/*
 * With --listen, a tracer's families (and the shared loss family): the sink
 * sees every record after attribution, on the event loop (a lock and a hash
 * lookup per record, never a syscall); the collector renders at scrape, on
 * the HTTP thread. 0 or -errno.
 */
int pod_metrics_bio_start(void);
int pod_metrics_fs_start(void);
int pod_metrics_open_start(void);
int pod_metrics_exec_start(void);
int pod_metrics_cache_start(void);
/* Stop counting (records still flowing to the sink are ignored) and free. */
void pod_metrics_bio_stop(void);
void pod_metrics_fs_stop(void);
void pod_metrics_open_stop(void);
void pod_metrics_exec_stop(void);
void pod_metrics_cache_stop(void);

/* Tests: the cardinality bound of families started from now on (0: the default). */
void pod_metrics_set_max_series(size_t n);

#endif
