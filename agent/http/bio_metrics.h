/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * podsnoop_bio_latency_seconds{namespace,pod,container,disk,op} in /metrics:
 * the bio tracer's interval histograms (bio_hist records: the kernel's log2
 * slots of microseconds, drained every --interval) summed into cumulative
 * Prometheus histograms per pod, container, disk and op.
 *
 * Cardinality is bounded: at most BIO_METRICS_MAX_SERIES label sets; beyond
 * that, histograms fold into one series labelled "_other" (and
 * podsnoop_metrics_series_folded{family="podsnoop_bio_latency_seconds"} says
 * how many label sets went there). A series with no request for
 * BIO_METRICS_IDLE_S leaves /metrics (gone pods do not stay forever); should
 * its label set come back, it starts again from zero, a counter reset that
 * Prometheus' rate() handles.
 */
#ifndef PS_BIO_METRICS_H
#define PS_BIO_METRICS_H

#define BIO_METRICS_MAX_SERIES 2048
#define BIO_METRICS_IDLE_S 3600

/*
 * Add the sink (sees every bio_hist record after attribution, on the event
 * loop: once per histogram and interval, never per request) and the
 * collector (renders at scrape, on the HTTP thread). 0 or -errno.
 */
int bio_metrics_start(void);
/* Stop counting (records still flowing to the sink are ignored) and free. */
void bio_metrics_stop(void);

#endif
