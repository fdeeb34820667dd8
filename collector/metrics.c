// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * GET /metrics of the collector: what it took and refused, and how writing
 * into ClickHouse goes, as Prometheus text. The agent's registry renders it
 * (lib/metrics.c); the figures are read at each scrape from the
 * counters the collector keeps anyway (st, ch_get_stats()).
 */
#include <pthread.h>

#include "lib/metrics.h"
#include "collector/chrows.h"
#include "collector/clickhouse.h"
#include "collector/collector.h"

static void counter(struct mw *w, const char *name, const char *help, uint64_t v)
{
	mw_family(w, name, MT_COUNTER, help);
	mw_u64(w, NULL, v);
}

static void collect(struct mw *w, void *priv)
{
	struct collector_stats s;
	struct ch_stats cs;

	(void)priv;
	pthread_mutex_lock(&mu);
	s = st;
	pthread_mutex_unlock(&mu);
	counter(w, "podsnoop_collector_batches_total", "Batches taken (answered 200), "
		"duplicates not counted.", s.batches);
	counter(w, "podsnoop_collector_records_total", "Records of the batches taken.",
		s.records);
	counter(w, "podsnoop_collector_duplicates_total", "Batches answered 200 as already "
		"taken (--out's de-duplication).", s.duplicates);
	counter(w, "podsnoop_collector_busy_total", "Requests answered 503 because the "
		"collector's --max-buffered-bytes pool was full.", s.busy);
	if (!opt.ch_url)
		return;
	ch_get_stats(&cs);
	mw_family(w, "podsnoop_collector_clickhouse_rows_total", MT_COUNTER,
		  "Rows ClickHouse took, per table (a batch sent again counts again).");
	for (int t = 0; t < CH_TABLES; t++)
		mw_u64(w, (const char *const[]){ "table", ch_tables[t].name, NULL }, cs.rows[t]);
	counter(w, "podsnoop_collector_clickhouse_inserts_total", "INSERTs ClickHouse took "
		"(one per table per batch).", cs.inserts);
	counter(w, "podsnoop_collector_clickhouse_inserts_failed_total", "INSERTs ClickHouse "
		"refused or did not answer in --clickhouse-timeout-ms.", cs.inserts_failed);
	mw_family(w, "podsnoop_collector_clickhouse_insert_seconds", MT_HISTOGRAM,
		  "Time of the INSERTs ClickHouse took, the request and its answer.");
	mw_hist_log2(w, NULL, cs.insert_us_slots, CH_INSERT_SLOTS, 1e-6, cs.insert_us_sum);
	counter(w, "podsnoop_collector_clickhouse_batches_refused_total", "Batches answered 503 "
		"because ClickHouse did not take them (the agents send them again).", s.ch_failed);
	counter(w, "podsnoop_collector_clickhouse_outages_total", "Times ClickHouse began to "
		"fail (each logged as an outage).", s.ch_outages);
	mw_family(w, "podsnoop_collector_clickhouse_up", MT_GAUGE, "0 during an outage: the "
		  "last insert failed; else 1.");
	mw_u64(w, NULL, s.ch_down ? 0 : 1);
	counter(w, "podsnoop_collector_clickhouse_partitions_dropped_total", "Day partitions "
		"dropped by --retention-days.", cs.partitions_dropped);
}

int collector_metrics_init(void)
{
	return metrics_add_collector(collect, NULL);
}
