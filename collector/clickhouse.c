// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * --clickhouse (clickhouse.h). A batch is written as NDJSON first, by the
 * same writers as --out (lib/ndjson.c, collector/output.c), into memory;
 * each line becomes a row of its table (chrows.c); each table's rows go in
 * one gzipped INSERT, the batches row last, so a batches row means all of
 * its batch is in. Every buffer is drawn from the collector's pool, so
 * what requests hold at once stays bounded; a full pool is -EAGAIN (503).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>
#include <zlib.h>

#include "collector/ch_int.h"
#include "collector/chrows.h"
#include "collector/clickhouse.h"
#include "collector/collector.h"
#include "lib/jsonw.h"

#define ERR_MAX 512		/* of ClickHouse's answer kept for messages */
#define HANDLES_MAX 64		/* idle curl handles kept for reuse (keep-alive) */
#define SERVERS_MAX 256		/* of a cluster, the entry URL included */

static struct ch_conf conf;
static char url_shown[512];
static pthread_mutex_t ch_mu = PTHREAD_MUTEX_INITIALIZER;	/* handles, stats */
static CURL *idle[HANDLES_MAX];
static int n_idle;
static struct ch_stats stats;
/* where DDL and retention go: [0] the --clickhouse URL, then a cluster's servers */
static char *servers[SERVERS_MAX];
static unsigned n_servers;

unsigned ch_servers(void)
{
	return n_servers;
}

const char *ch_server(unsigned i)
{
	return i < n_servers ? servers[i] : NULL;
}

void ch_count_dropped(unsigned n)
{
	pthread_mutex_lock(&ch_mu);
	stats.partitions_dropped += n;
	pthread_mutex_unlock(&ch_mu);
}

const char *ch_url_shown(void)
{
	return url_shown;
}

void ch_get_stats(struct ch_stats *s)
{
	pthread_mutex_lock(&ch_mu);
	*s = stats;
	pthread_mutex_unlock(&ch_mu);
}

/* ---- buffers from the pool ---- */

struct buf {
	char *p;
	size_t len, cap;
	size_t *held;		/* the request's total taken from the pool */
	struct mem_pool *pool;
	bool full;
};

static int buf_reserve(struct buf *b, size_t more)
{
	size_t cap;
	char *np;

	if (b->len + more <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 16384;
	while (cap < b->len + more)
		cap *= 2;
	if (b->pool && pool_take(b->pool, cap - b->cap)) {
		b->full = true;
		return -EAGAIN;
	}
	np = realloc(b->p, cap);
	if (!np) {
		if (b->pool)
			pool_give(b->pool, cap - b->cap);
		return -ENOMEM;
	}
	*b->held += cap - b->cap;
	b->p = np;
	b->cap = cap;
	return 0;
}

static void buf_free(struct buf *b)
{
	if (b->pool)
		pool_give(b->pool, b->cap);
	*b->held -= b->cap;
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

static ssize_t cookie_write(void *c, const char *data, size_t n)
{
	struct buf *b = c;

	if (buf_reserve(b, n))
		return -1;
	memcpy(b->p + b->len, data, n);
	b->len += n;
	return (ssize_t)n;
}

/* ---- HTTP ---- */

struct answer {
	char *p;
	size_t len;
	size_t max;
};

static size_t on_data(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct answer *a = ctx;
	size_t n = size * nmemb, keep = n;
	char *np;

	if (a->len + keep > a->max)
		keep = a->max > a->len ? a->max - a->len : 0;
	if (!keep)
		return n;
	np = realloc(a->p, a->len + keep + 1);
	if (!np)
		return 0;
	a->p = np;
	memcpy(a->p + a->len, data, keep);
	a->len += keep;
	a->p[a->len] = '\0';
	return n;
}

static CURL *handle_get(void)
{
	CURL *h = NULL;

	pthread_mutex_lock(&ch_mu);
	if (n_idle)
		h = idle[--n_idle];
	pthread_mutex_unlock(&ch_mu);
	return h ? h : curl_easy_init();
}

static void handle_put(CURL *h)
{
	pthread_mutex_lock(&ch_mu);
	if (n_idle < HANDLES_MAX) {
		idle[n_idle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&ch_mu);
	if (h)
		curl_easy_cleanup(h);
}

/* The first line of ClickHouse's error, or curl's. */
static void describe(char *err, size_t errsz, long status, const char *body, const char *cerr)
{
	size_t n;

	if (status <= 0) {
		snprintf(err, errsz, "%s", cerr);
		return;
	}
	n = body ? strcspn(body, "\r\n") : 0;
	snprintf(err, errsz, "HTTP %ld: %.*s", status, (int)n, n ? body : "(no message)");
}

/*
 * POST body (gzipped or not) to the ClickHouse at base with query (NULL: the body is
 * the query) in database db (NULL: none). The HTTP status, or -errno with
 * err set; the answer's first max_answer bytes into *answer when asked.
 */
static long post(const char *base, const char *query, const char *db, const void *body,
		 size_t len, bool gzipped, char **answer, size_t max_answer, char *err, size_t errsz)
{
	struct answer a = { NULL, 0, answer ? max_answer : ERR_MAX };
	char cerr[CURL_ERROR_SIZE] = "", *url = NULL, *q = NULL, *d = NULL;
	struct curl_slist *hdr = NULL;
	long status = 0;
	CURLcode rc;
	CURL *h;

	h = handle_get();
	if (!h) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	curl_easy_reset(h);
	q = query ? curl_easy_escape(h, query, 0) : NULL;
	d = db ? curl_easy_escape(h, db, 0) : NULL;
	/*
	 * Through a Distributed table, an insert is answered once every shard
	 * took its rows, not once they are queued on the server we reach.
	 */
	if (asprintf(&url, "%s/?%s%s%s%s%s", base, q ? "query=" : "", q ? q : "",
		     d ? (q ? "&database=" : "database=") : "", d ? d : "",
		     conf.cluster ? (q || d ? "&insert_distributed_sync=1" :
				     "insert_distributed_sync=1") : "") < 0) {
		url = NULL;
		snprintf(err, errsz, "out of memory");
		status = -ENOMEM;
		goto out;
	}
	hdr = curl_slist_append(hdr, "Content-Type: text/plain; charset=utf-8");
	if (gzipped)
		hdr = curl_slist_append(hdr, "Content-Encoding: gzip");
	hdr = curl_slist_append(hdr, "Expect:"); /* no 100-continue round trip */
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, conf.timeout_ms < 5000 ?
			 conf.timeout_ms : 5000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, conf.timeout_ms);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (conf.user) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, conf.user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, conf.password ? conf.password : "");
	}
	if (conf.ca)
		curl_easy_setopt(h, CURLOPT_CAINFO, conf.ca);
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK) {
		describe(err, errsz, 0, NULL, *cerr ? cerr : curl_easy_strerror(rc));
		status = rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
		goto out;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (status / 100 != 2)
		describe(err, errsz, status, a.p, "");
out:
	if (answer && status / 100 == 2) {
		*answer = a.p ? a.p : strdup("");
		a.p = NULL;
	}
	free(a.p);
	free(url);
	curl_free(q);
	curl_free(d);
	curl_slist_free_all(hdr);
	handle_put(h);
	return status;
}

long ch_query(const char *sql, char **out, char *err, size_t errsz)
{
	return post(conf.url, NULL, conf.database, sql, strlen(sql), false, out, 64 * MIB, err,
		    errsz);
}

/* DDL and other statements without an answer, at server base: 0 or -errno. */
int ch_exec_sql(const char *base, const char *sql, char *err, size_t errsz)
{
	long st = post(base, NULL, NULL, sql, strlen(sql), false, NULL, 0, err, errsz);

	if (st < 0)
		return (int)st;
	return st / 100 == 2 ? 0 : -EIO;
}

/* sql's answer (TabSeparated) from base into *ans: 0 or -errno. */
int ch_select_sql(const char *base, const char *sql, char **ans, size_t max, char *err,
		  size_t errsz)
{
	long st = post(base, NULL, NULL, sql, strlen(sql), false, ans, max, err, errsz);

	if (st < 0)
		return (int)st;
	return st / 100 == 2 ? 0 : -EIO;
}

/* url without user:password@, for messages */
void ch_without_credentials(const char *url, char *out, size_t outsz)
{
	const char *auth = strstr(url, "://"), *at, *slash;

	if (!auth) {
		snprintf(out, outsz, "%s", url);
		return;
	}
	auth += 3;
	at = strchr(auth, '@');
	slash = strchr(auth, '/');
	if (at && (!slash || at < slash))
		snprintf(out, outsz, "%.*s%s", (int)(auth - url), url, at + 1);
	else
		snprintf(out, outsz, "%s", url);
}

/* ---- schema ---- */

/*
 * Where table t's rows are stored: its own name, or with a cluster
 * <name>_local on each server, under the Distributed <name>.
 */
void ch_stored_name(const struct ch_table *t, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s%s", t->name, conf.cluster ? "_local" : "");
}

static int create_table(const char *base, const struct ch_table *t, bool dist, char *err,
			size_t errsz)
{
	char *sql = NULL, *cols = NULL, *p, name[64], local[64];
	size_t cap = 64;
	int n = 0, rc;

	for (unsigned i = 0; i < t->n_cols; i++)
		cap += strlen(t->cols[i].name) + strlen(ch_col_sql_type(t->cols[i].type)) + 8;
	cols = p = malloc(cap);
	if (!cols)
		return -ENOMEM;
	for (unsigned i = 0; i < t->n_cols; i++)
		n += snprintf(p + n, cap - (size_t)n, "%s`%s` %s", i ? ", " : "",
			      t->cols[i].name, ch_col_sql_type(t->cols[i].type));
	ch_stored_name(t, local, sizeof(local));
	snprintf(name, sizeof(name), "%s", dist ? t->name : local);
	/*
	 * ReplacingMergeTree on (agent_id, seq, idx): a batch written again (a
	 * retry, maybe through another collector) replaces itself; copies of
	 * a record share its ts, so they meet in one partition. Over a
	 * cluster, the shard is a function of (agent_id, seq) alone, so they
	 * meet in one shard too.
	 */
	if (dist)
		rc = asprintf(&sql, "CREATE TABLE IF NOT EXISTS `%s`.`%s` (%s) ENGINE = "
			      "Distributed('%s', '%s', '%s', cityHash64(agent_id, seq))",
			      conf.database, name, cols, conf.cluster, conf.database, local);
	else
		rc = asprintf(&sql, "CREATE TABLE IF NOT EXISTS `%s`.`%s` (%s) ENGINE = "
			      "ReplacingMergeTree PARTITION BY toYYYYMMDD(ts) ORDER BY (agent_id, "
			      "seq%s)", conf.database, name, cols,
			      t == &ch_tables[CH_BATCHES] ? "" : ", idx");
	if (rc < 0) {
		free(cols);
		return -ENOMEM;
	}
	rc = ch_exec_sql(base, sql, err, errsz);
	free(sql);
	free(cols);
	return rc;
}

/*
 * The columns of ours a table of an older schema lacks, added. Collectors
 * started at once may race to add one: "already exists" is success.
 */
static int add_missing_columns(const char *base, const struct ch_table *t, const char *name,
			       char *err, size_t errsz)
{
	char sql[512], *have = NULL, line[256];
	int rc;

	snprintf(sql, sizeof(sql), "SELECT name FROM system.columns WHERE database = '%s' AND "
		 "table = '%s' FORMAT TabSeparated", conf.database, name);
	rc = ch_select_sql(base, sql, &have, 1 << 20, err, errsz);
	if (rc)
		return rc;
	for (unsigned i = 0; i < t->n_cols && !rc; i++) {
		snprintf(line, sizeof(line), "\n%s\n", t->cols[i].name);
		/* have: "a\nb\n"; look for "\nname\n" in "\n" + have */
		if ((!strncmp(have, line + 1, strlen(line + 1))) || strstr(have, line))
			continue;
		snprintf(sql, sizeof(sql), "ALTER TABLE `%s`.`%s` ADD COLUMN `%s` %s",
			 conf.database, name, t->cols[i].name, ch_col_sql_type(t->cols[i].type));
		rc = ch_exec_sql(base, sql, err, errsz);
		if (rc && strstr(err, "already exists"))
			rc = 0;
	}
	free(have);
	return rc;
}

/*
 * Our tables at base have the engines this mode writes through: a database
 * made with --clickhouse-cluster and used without it (or the other way
 * round) would be written past the shards, or not through them.
 */
static int check_engines(const char *base, char *err, size_t errsz)
{
	char sql[1024], *ans = NULL, *line, *save, name[64];
	int n, rc;

	n = snprintf(sql, sizeof(sql), "SELECT name, engine FROM system.tables WHERE database = "
		     "'%s' AND name IN (", conf.database);
	for (int t = 0; t < CH_TABLES; t++) {
		ch_stored_name(&ch_tables[t], name, sizeof(name));
		n += snprintf(sql + n, sizeof(sql) - (size_t)n, "%s'%s'", t ? ", " : "",
			      ch_tables[t].name);
		if (conf.cluster)
			n += snprintf(sql + n, sizeof(sql) - (size_t)n, ", '%s'", name);
	}
	snprintf(sql + n, sizeof(sql) - (size_t)n, ") FORMAT TabSeparated");
	rc = ch_select_sql(base, sql, &ans, 1 << 20, err, errsz);
	if (rc)
		return rc;
	for (line = strtok_r(ans, "\n", &save); line && !rc; line = strtok_r(NULL, "\n", &save)) {
		char *engine = strchr(line, '\t');
		size_t len;
		bool dist;

		if (!engine)
			continue;
		*engine++ = '\0';
		len = strlen(line);
		dist = conf.cluster && (len < 6 || strcmp(line + len - 6, "_local"));
		if (!strcmp(engine, dist ? "Distributed" : "ReplacingMergeTree"))
			continue;
		snprintf(err, errsz, "table %s.%s is %s, not %s: %s", conf.database, line, engine,
			 dist ? "Distributed" : "ReplacingMergeTree", conf.cluster ?
			 "this database was made without --clickhouse-cluster" :
			 "this database was made with --clickhouse-cluster (give it)");
		rc = -EINVAL;
	}
	free(ans);
	return rc;
}

/* The database, tables and schema_version at server base. */
static int schema(const char *base, char *err, size_t errsz)
{
	char sql[512], e[ERR_MAX], *ans = NULL, name[64];
	long version = 0;
	int rc;

	snprintf(sql, sizeof(sql), "CREATE DATABASE IF NOT EXISTS `%s`", conf.database);
	rc = ch_exec_sql(base, sql, e, sizeof(e));
	if (rc) {
		snprintf(err, errsz, "cannot create database %s: %s", conf.database, e);
		return rc;
	}
	snprintf(sql, sizeof(sql), "CREATE TABLE IF NOT EXISTS `%s`.schema_version (version "
		 "UInt32, applied DateTime, by String) ENGINE = MergeTree ORDER BY version",
		 conf.database);
	rc = ch_exec_sql(base, sql, e, sizeof(e));
	if (rc)
		goto fail;
	snprintf(sql, sizeof(sql), "SELECT max(version) FROM `%s`.schema_version",
		 conf.database);
	rc = ch_select_sql(base, sql, &ans, 64, e, sizeof(e));
	if (rc)
		goto fail;
	version = strtol(ans, NULL, 10);
	free(ans);
	rc = check_engines(base, e, sizeof(e));
	if (rc) {
		snprintf(err, errsz, "%s", e);
		return rc;
	}
	if (version > CH_SCHEMA_VERSION)
		/* a newer collector migrated: its tables hold at least our columns */
		return 0;
	for (int t = 0; t < CH_TABLES && !rc; t++) {
		const struct ch_table *tb = &ch_tables[t];

		ch_stored_name(tb, name, sizeof(name));
		rc = create_table(base, tb, false, e, sizeof(e));
		if (!rc && version < CH_SCHEMA_VERSION)
			rc = add_missing_columns(base, tb, name, e, sizeof(e));
		if (!rc && conf.cluster)
			rc = create_table(base, tb, true, e, sizeof(e));
		if (!rc && conf.cluster && version < CH_SCHEMA_VERSION)
			rc = add_missing_columns(base, tb, tb->name, e, sizeof(e));
	}
	if (rc)
		goto fail;
	if (version < CH_SCHEMA_VERSION) {
		snprintf(sql, sizeof(sql), "INSERT INTO `%s`.schema_version VALUES (%d, now(), "
			 "'podsnoop-collector')", conf.database, CH_SCHEMA_VERSION);
		rc = ch_exec_sql(base, sql, e, sizeof(e));
		if (rc)
			goto fail;
	}
	return 0;
fail:
	snprintf(err, errsz, "cannot create the schema in database %s: %s", conf.database, e);
	return rc;
}

/* ---- --clickhouse-cluster ---- */

static int add_server(const char *url)
{
	for (unsigned i = 0; i < n_servers; i++)
		if (!strcmp(servers[i], url))
			return 0;
	if (n_servers == SERVERS_MAX)
		return -E2BIG;
	servers[n_servers] = strdup(url);
	if (!servers[n_servers])
		return -ENOMEM;
	n_servers++;
	return 0;
}

/*
 * The URL of a cluster's server: the --clickhouse URL with its host
 * replaced (scheme, credentials, port and path kept). ClickHouse without
 * ZooKeeper runs no ON CLUSTER DDL, and system.clusters gives only the TCP
 * port, so each server is reached at the port the --clickhouse URL names.
 */
static int server_url(const char *host, char *out, size_t outsz)
{
	const char *h = strstr(conf.url, "://") + 3, *at, *slash, *rest;
	bool v6 = strchr(host, ':');

	at = strchr(h, '@');
	slash = strchr(h, '/');
	if (at && (!slash || at < slash))
		h = at + 1;
	if (*h == '[')
		rest = strchr(h, ']') ? strchr(h, ']') + 1 : h + strlen(h);
	else
		rest = h + strcspn(h, ":/");
	if (snprintf(out, outsz, "%.*s%s%s%s%s", (int)(h - conf.url), conf.url, v6 ? "[" : "",
		     host, v6 ? "]" : "", rest) >= (int)outsz)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * The servers of the cluster, from system.clusters at the --clickhouse URL:
 * a name it does not know stops the start, with the names it knows.
 */
static int cluster_servers(char *err, size_t errsz)
{
	char sql[512], e[ERR_MAX], *ans = NULL, *line, *save, url[1024];
	unsigned shards = 0;
	int rc;

	if (!*conf.cluster || strspn(conf.cluster, "abcdefghijklmnopqrstuvwxyz"
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != strlen(conf.cluster)) {
		snprintf(err, errsz, "--clickhouse-cluster '%s': use letters, digits, _, - and .",
			 conf.cluster);
		return -EINVAL;
	}
	snprintf(sql, sizeof(sql), "SELECT host_name, shard_num FROM system.clusters WHERE "
		 "cluster = '%s' ORDER BY shard_num, replica_num FORMAT TabSeparated",
		 conf.cluster);
	rc = ch_select_sql(conf.url, sql, &ans, 1 << 20, e, sizeof(e));
	if (rc) {
		snprintf(err, errsz, "ClickHouse at %s: cannot read system.clusters: %s", url_shown,
			 e);
		return rc;
	}
	for (line = strtok_r(ans, "\n", &save); line && !rc; line = strtok_r(NULL, "\n", &save)) {
		char *tab = strchr(line, '\t');

		if (!tab)
			continue;
		*tab = '\0';
		shards = (unsigned)strtoul(tab + 1, NULL, 10);
		rc = server_url(line, url, sizeof(url));
		if (!rc)
			rc = add_server(url);
	}
	free(ans);
	if (rc) {
		snprintf(err, errsz, "--clickhouse-cluster %s: %s", conf.cluster, strerror(-rc));
		return rc;
	}
	if (!shards) {
		ans = NULL;
		if (ch_select_sql(conf.url, "SELECT arrayStringConcat(groupUniqArray(cluster), ', ') "
			       "FROM system.clusters", &ans, 4096, e, sizeof(e)))
			ans = NULL;
		if (ans)
			ans[strcspn(ans, "\n")] = '\0';
		snprintf(err, errsz, "ClickHouse at %s has no cluster '%s' in its remote_servers "
			 "(it has: %s)", url_shown, conf.cluster, ans && *ans ? ans : "none");
		free(ans);
		return -ENOENT;
	}
	return 0;
}

int ch_init(const struct ch_conf *c, char *err, size_t errsz)
{
	char e[ERR_MAX], se[1024];
	size_t n;
	long st;
	int rc;

	conf = *c;
	ch_without_credentials(c->url, url_shown, sizeof(url_shown));
	/* "http://host:8123/" and "http://host:8123" alike */
	n = strlen(conf.url);
	if (n && conf.url[n - 1] == '/') {
		char *u = strndup(conf.url, n - 1);

		if (!u)
			return -ENOMEM;
		conf.url = u;
	}
	if (strncmp(conf.url, "http://", 7) && strncmp(conf.url, "https://", 8)) {
		snprintf(err, errsz, "--clickhouse %s: not an http:// or https:// URL", url_shown);
		return -EINVAL;
	}
	if (!*conf.database || strspn(conf.database, "abcdefghijklmnopqrstuvwxyz"
		"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(conf.database)) {
		snprintf(err, errsz, "--clickhouse-database '%s': use letters, digits and _",
			 conf.database);
		return -EINVAL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		snprintf(err, errsz, "cannot initialize libcurl");
		return -ENOMEM;
	}
	st = post(conf.url, NULL, NULL, "SELECT 1", 8, false, NULL, 0, e, sizeof(e));
	if (st / 100 != 2) {
		snprintf(err, errsz, "ClickHouse at %s: %s", url_shown, e);
		return st < 0 ? (int)st : -EIO;
	}
	if (conf.no_schema)
		return 0;
	rc = add_server(conf.url);
	if (!rc && conf.cluster)
		rc = cluster_servers(err, errsz);
	else if (rc)
		snprintf(err, errsz, "out of memory");
	/* the entry server first: it may be outside the cluster, and needs the tables too */
	for (unsigned i = 0; i < n_servers && !rc; i++) {
		rc = schema(servers[i], se, sizeof(se));
		if (rc && i) {
			char at[512];

			ch_without_credentials(servers[i], at, sizeof(at));
			snprintf(err, errsz, "ClickHouse at %s (cluster %s): %s", at, conf.cluster, se);
		} else if (rc) {
			snprintf(err, errsz, "%s", se);
		}
	}
	if (!rc && conf.retention_days)
		rc = ch_retention_start(&conf, err, errsz);
	return rc;
}

void ch_fini(void)
{
	ch_retention_stop();
	while (n_idle)
		curl_easy_cleanup(idle[--n_idle]);
	while (n_servers)
		free(servers[--n_servers]);
	curl_global_cleanup();
}

/* ---- a batch ---- */

static int gzip_into(const struct buf *in, struct buf *out)
{
	z_stream z = { 0 };
	int rc, err;

	if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	out->len = 0;
	err = buf_reserve(out, deflateBound(&z, in->len));
	if (err) {
		deflateEnd(&z);
		return err;
	}
	z.next_in = (Bytef *)in->p;
	z.avail_in = (uInt)in->len;
	z.next_out = (Bytef *)out->p;
	z.avail_out = (uInt)out->cap;
	rc = deflate(&z, Z_FINISH);
	out->len = out->cap - z.avail_out;
	deflateEnd(&z);
	return rc == Z_STREAM_END ? 0 : -EIO;
}

static void json_string(char *dst, size_t cap, const char *s)
{
	FILE *f = fmemopen(dst, cap, "w");

	if (!f) {
		snprintf(dst, cap, "\"\"");
		return;
	}
	jw_write_string(f, s, strlen(s));
	if (fclose(f) || !memchr(dst, '\0', cap))
		snprintf(dst, cap, "\"\"");
}

static uint64_t now_ns(int clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The NDJSON lines of the batch (records, losses, a batch line last) into nd. */
static int ndjson_of(struct req *r, size_t body_len, struct buf *nd)
{
	static const cookie_io_functions_t io = { .write = cookie_write };
	const Podsnoop__V1__Batch *b = r->batch;
	const Podsnoop__V1__Agent *a = b->agent;
	struct jw w;
	FILE *f;
	int err = 0;

	f = fopencookie(nd, "w", io);
	if (!f)
		return -ENOMEM;
	request_write_records(r, f);
	for (size_t i = 0; i < b->n_losses; i++)
		write_loss(f, b->losses[i], b->sent_ns);
	jw_begin(&w, f);
	jw_cstr(&w, "type", "batches");
	jw_u64(&w, "ts_ns", b->sent_ns);
	jw_u64(&w, "received_ns", now_ns(CLOCK_REALTIME));
	jw_cstr(&w, "version", a->version);
	jw_cstr(&w, "kernel", a->kernel);
	jw_u64(&w, "started_ns", a->started_ns);
	jw_u64(&w, "records", b->n_records);
	jw_u64(&w, "losses", b->n_losses);
	jw_u64(&w, "skipped", r->skipped);
	jw_u64(&w, "bytes", body_len);
	jw_u64(&w, "raw_bytes", r->raw_len);
	jw_end(&w);
	if (fclose(f) || nd->full)
		err = nd->full ? -EAGAIN : -ENOMEM;
	return err;
}

static int insert(int t, const struct buf *gz, char *err, size_t errsz)
{
	char q[128], e[ERR_MAX];
	uint64_t t0 = now_ns(CLOCK_MONOTONIC);
	long st;

	snprintf(q, sizeof(q), "INSERT INTO `%s` FORMAT JSONEachRow", ch_tables[t].name);
	st = post(conf.url, q, conf.database, gz->p, gz->len, true, NULL, 0, e, sizeof(e));
	pthread_mutex_lock(&ch_mu);
	if (st / 100 == 2) {
		uint64_t ns = now_ns(CLOCK_MONOTONIC) - t0, us = ns / 1000;
		unsigned slot = us < 2 ? 0 : 63u - (unsigned)__builtin_clzll(us);

		stats.inserts++;
		stats.insert_ns += ns;
		stats.insert_us_slots[slot < CH_INSERT_SLOTS ? slot : CH_INSERT_SLOTS - 1]++;
		stats.insert_us_sum += us;
	} else {
		stats.inserts_failed++;
	}
	pthread_mutex_unlock(&ch_mu);
	if (st / 100 == 2)
		return 0;
	snprintf(err, errsz, "INSERT INTO %s: %s", ch_tables[t].name, e);
	return st < 0 ? (int)st : -EIO;
}

int ch_write_batch(struct req *r, size_t body_len, char *err, size_t errsz)
{
	const Podsnoop__V1__Batch *b = r->batch;
	char node[512], agent[DEDUP_ID_MAX * 6 + 3];
	struct ch_batch_ctx ctx = { node, agent, b->seq };
	size_t held = 0;
	struct buf nd = { .held = &held, .pool = r->pool }, gz = nd, tb[CH_TABLES];
	uint32_t idx[CH_TABLES] = { 0 };
	uint64_t rows[CH_TABLES] = { 0 };
	const char *p, *end;
	int rc, t;

	for (t = 0; t < CH_TABLES; t++)
		tb[t] = nd;
	json_string(node, sizeof(node), b->agent->node);
	json_string(agent, sizeof(agent), b->agent->agent_id);
	rc = ndjson_of(r, body_len, &nd);
	if (rc)
		goto out;
	for (p = nd.p, end = nd.p + nd.len; p < end; p = memchr(p, '\n', (size_t)(end - p)) + 1) {
		size_t len = (size_t)((char *)memchr(p, '\n', (size_t)(end - p)) - p);
		size_t room = 2 * len + 2048;
		long n;

		t = ch_table_of_line(p, len);
		if (t < 0)
			continue;
		for (;;) {
			rc = buf_reserve(&tb[t], room);
			if (rc)
				goto out;
			n = ch_row(&ch_tables[t], &ctx, idx[t], p, len, tb[t].p + tb[t].len,
				   tb[t].cap - tb[t].len);
			if (n != -ENOSPC)
				break;
			room *= 2;
		}
		if (n < 0) {
			snprintf(err, errsz, "a %s record did not convert", ch_tables[t].name);
			rc = -EINVAL;
			goto out;
		}
		tb[t].len += (size_t)n;
		idx[t]++;
		rows[t]++;
	}
	/* the batches row last: it says the whole batch is in */
	for (int i = 0; i < CH_TABLES; i++) {
		t = i < CH_BATCHES ? i : CH_BATCHES;
		if (!tb[t].len)
			continue;
		rc = gzip_into(&tb[t], &gz);
		if (!rc)
			rc = insert(t, &gz, err, errsz);
		if (rc)
			goto out;
	}
	pthread_mutex_lock(&ch_mu);
	for (t = 0; t < CH_TABLES; t++)
		stats.rows[t] += rows[t];
	pthread_mutex_unlock(&ch_mu);
out:
	if (rc == -EAGAIN)
		snprintf(err, errsz, "collector busy: too much buffered now, retry");
	else if (rc == -ENOMEM)
		snprintf(err, errsz, "out of memory");
	for (t = 0; t < CH_TABLES; t++)
		buf_free(&tb[t]);
	buf_free(&nd);
	buf_free(&gz);
	return rc;
}
