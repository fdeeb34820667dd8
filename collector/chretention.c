// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * --retention-days (clickhouse.h): a pass at start, then a thread that drops
 * what has aged out every retention_check_s, on every server of the schema.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/ch_int.h"
#include "collector/chrows.h"
#include "collector/collector.h"

#define ERR_MAX 512		/* of ClickHouse's answer kept for messages */

static struct ch_conf conf;	/* database, retention_days, retention_check_s */
static pthread_t ret_thread;
static bool ret_started, ret_stop;
static pthread_mutex_t ret_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ret_cv;

/*
 * ClickHouse 18.16 has no TTL: a day's partition (toYYYYMMDD(ts)) of our
 * tables goes once the whole day is more than retention_days old, by
 * ClickHouse's clock and time zone, the ones that named the partition.
 * Dropping a partition that another collector dropped meanwhile is no error.
 * Over a cluster, the partitions are those of each server's local tables.
 */
static int retention_at(const char *base, unsigned *dropped, char *err, size_t errsz)
{
	char sql[1024], e[ERR_MAX], *ans = NULL, *line, *save, name[64];
	int n, rc;

	n = snprintf(sql, sizeof(sql), "SELECT DISTINCT table, partition FROM system.parts "
		     "WHERE database = '%s' AND active AND table IN (", conf.database);
	for (int t = 0; t < CH_TABLES; t++) {
		ch_stored_name(&ch_tables[t], name, sizeof(name));
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, "%s'%s'", t ? ", " : "", name);
	}
	snprintf(sql + n, sizeof(sql) - (size_t)n, ") AND length(partition) = 8 AND partition < "
		 "toString(toYYYYMMDD(today() - %u)) ORDER BY partition, table FORMAT "
		 "TabSeparated", conf.retention_days);
	rc = ch_select_sql(base, sql, &ans, 1 << 20, e, sizeof(e));
	if (rc) {
		snprintf(err, errsz, "cannot list the partitions: %s", e);
		return rc;
	}
	for (line = strtok_r(ans, "\n", &save); line && !rc; line = strtok_r(NULL, "\n", &save)) {
		char *tab = strchr(line, '\t');

		if (!tab || strspn(tab + 1, "0123456789") != 8 || tab[9])
			continue;
		*tab = '\0';
		snprintf(sql, sizeof(sql), "ALTER TABLE `%s`.`%s` DROP PARTITION %s", conf.database,
			 line, tab + 1);
		rc = ch_exec_sql(base, sql, e, sizeof(e));
		if (rc)
			snprintf(err, errsz, "cannot drop partition %s of %s: %s", tab + 1, line, e);
		else
			(*dropped)++;
	}
	free(ans);
	return rc;
}

/* Every server's old partitions; the first failure is reported, the others still tried. */
static int retention_pass(unsigned *dropped, char *err, size_t errsz)
{
	char e[1024];
	int rc = 0, r;

	*dropped = 0;
	for (unsigned i = 0; i < ch_servers(); i++) {
		r = retention_at(ch_server(i), dropped, e, sizeof(e));
		if (r && !rc) {
			rc = r;
			if (ch_servers() > 1) {
				char at[512];

				ch_without_credentials(ch_server(i), at, sizeof(at));
				snprintf(err, errsz, "at %s: %s", at, e);
			} else {
				snprintf(err, errsz, "%s", e);
			}
		}
	}
	ch_count_dropped(*dropped);
	return rc;
}

static void *retention_thread(void *arg)
{
	struct timespec until;
	char err[1024];
	unsigned dropped;
	bool stop;

	(void)arg;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += conf.retention_check_s;
		pthread_mutex_lock(&ret_mu);
		while (!ret_stop && pthread_cond_timedwait(&ret_cv, &ret_mu, &until) != ETIMEDOUT)
			;
		stop = ret_stop;
		pthread_mutex_unlock(&ret_mu);
		if (stop)
			return NULL;
		if (retention_pass(&dropped, err, sizeof(err)))
			log_warn("--retention-days: %s (tried again in %u s)", err,
				 conf.retention_check_s);
		else if (dropped)
			log_info("--retention-days %u: dropped %u day partitions", conf.retention_days,
				 dropped);
	}
}

int ch_retention_start(const struct ch_conf *c, char *err, size_t errsz)
{
	pthread_condattr_t ca;
	unsigned dropped;
	int rc;

	conf = *c;
	rc = retention_pass(&dropped, err, errsz);
	if (rc)
		return rc;
	if (dropped)
		log_info("--retention-days %u: dropped %u day partitions", conf.retention_days,
			 dropped);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ret_cv, &ca);
	pthread_condattr_destroy(&ca);
	rc = -pthread_create(&ret_thread, NULL, retention_thread, NULL);
	if (rc) {
		snprintf(err, errsz, "cannot start the retention thread: %s", strerror(-rc));
		return rc;
	}
	ret_started = true;
	return 0;
}

void ch_retention_stop(void)
{
	if (!ret_started)
		return;
	pthread_mutex_lock(&ret_mu);
	ret_stop = true;
	pthread_cond_signal(&ret_cv);
	pthread_mutex_unlock(&ret_mu);
	pthread_join(ret_thread, NULL);
	ret_started = false;
}
