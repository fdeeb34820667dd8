// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * podsnoop-collector: the reference collector. Receives the agent's batches
 * (POST /v1/batches, gzip(podsnoop.v1.Batch)), checks them, drops
 * duplicates by (agent_id, seq) and writes the records as NDJSON with the
 * agent's own writer (lib/ndjson.c, through lib/pbconv.c), so its output
 * has the same schema as `podsnoop --output ndjson`. Before a batch's
 * records comes one {"type":"batch",...} line naming the agent and seq.
 * What one request may cost is bounded before it is spent (collector/request.c:
 * body, gunzip output, records, protobuf-c's allocations, all from one pool
 * shared by every request), and so is what a connection may hold: a cap on
 * connections in all and per address, deadlines for a request's headers
 * and body. A batch is answered 200 only once all its lines are in --out
 * (and synced, with --fsync); when a write fails, the file is cut back to
 * the last whole batch and the answer is 503, so the agent sends it again.
 * With --clickhouse, each batch goes into ClickHouse too (clickhouse.c),
 * before --out, and is answered 200 only once ClickHouse took it.
 * Fault injection flags (--fail-*, --stall-*, --reject-seq) serve the tests.
 * Usage: podsnoop-collector --help. The parts: collector.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <microhttpd.h>

#include "collector/clickhouse.h"
#include "collector/collector.h"
#include "collector/query.h"
#include "lib/version.h"

struct collector_opts opt = {
	.listen = "0.0.0.0:9400",
	/* An agent's batch is --batch-bytes (default 512K) before gzip and
	 * --batch-records (default 5000): these leave room for 32 and 20 times
	 * that; decoding takes about 4 times the raw size in memory. */
	.max_body = 16 * MIB,
	.lim = {
		.max_raw = 16 * MIB,
		.max_records = 100000,
		.max_losses = REQ_MAX_LOSSES,
		.max_decode = 128 * MIB,
	},
	.max_buffered = 256 * MIB,
	.max_conns = 1024,
	.max_conns_per_ip = 16,
	.header_timeout = 10,
	.body_timeout = 60,
	.dedup_agents = DEDUP_AGENTS_DEF,
	.ch_database = "podsnoop",
	.ch_timeout_ms = 10000,
	.ch_retention_check_s = 3600,
	.fail_status = 500,
};

pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
FILE *out;
off_t out_good = -1;
char *token;
struct dedup seen;
struct mem_pool pool;
struct collector_stats st;

void collector_log(const char *level, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "podsnoop-collector: %s: %s\n", level, buf);
}

static char *read_file(const char *path, size_t *len_out)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f)
		return NULL;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *nb = realloc(buf, cap = cap ? cap * 2 : 8192);

			if (!nb) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, 4096, f);
		len += n;
		if (n < 4096)
			break;
	}
	fclose(f);
	buf[len] = '\0';
	if (len_out)
		*len_out = len;
	return buf;
}

/* ---- start ---- */

static void usage(FILE *f)
{
	fprintf(f,
"Usage: podsnoop-collector [OPTIONS]\n"
"       podsnoop-collector query NAME [--since TIME] ...  (query --help)\n"
"\n"
"Receives podsnoop batches on POST " PATH_V1 " (gzip(podsnoop.v1.Batch)),\n"
"drops duplicates by (agent_id, seq) and writes the records as NDJSON, the\n"
"schema of `podsnoop --output ndjson`, each batch's records after a\n"
"{\"type\":\"batch\",...} line. GET /healthz answers ok; GET /metrics has\n"
"its counters (Prometheus text; docs/clickhouse.md).\n"
"\n"
"  -l, --listen ADDR:PORT    IPv4 address and port (default 0.0.0.0:9400;\n"
"                            port 0: any, printed at start)\n"
"  -o, --out FILE            append NDJSON to FILE (default: stdout); the\n"
"                            batches already in FILE count as seen\n"
"      --fsync               fdatasync FILE before answering each batch\n"
"      --save-bodies DIR     also keep each new batch's body as received in\n"
"                            DIR/<agent_id>-<seq>.pb.gz\n"
"      --token-file FILE     require \"Authorization: Bearer <contents>\"\n"
"      --tls-cert FILE       serve HTTPS with this certificate (PEM) ...\n"
"      --tls-key FILE        ... and key\n"
"      --tls-client-ca FILE  require a client certificate signed by this CA\n"
"\n"
"ClickHouse (docs/clickhouse.md): every batch also into ClickHouse, answered\n"
"200 only once ClickHouse took it, 503 with Retry-After while it cannot:\n"
"      --clickhouse URL      its HTTP interface, http(s)://host:port; without\n"
"                            --out, no NDJSON is written\n"
"      --clickhouse-database NAME  (default podsnoop; created at start)\n"
"      --clickhouse-user NAME      (default: ClickHouse's default user)\n"
"      --clickhouse-password-file FILE  the user's password\n"
"      --clickhouse-ca FILE  CA certificates to check an https URL with\n"
"      --clickhouse-timeout-ms MS  a request to ClickHouse (default 10000)\n"
"      --clickhouse-cluster NAME  write through Distributed tables over this\n"
"                            remote_servers cluster, the tables made on each\n"
"                            of its servers (HTTP on the URL's port)\n"
"      --retention-days N    drop each day's partitions once the day is more\n"
"                            than N days old (default 0: keep forever)\n"
"      --retention-check-s SECS  between two such checks (default 3600; one\n"
"                            at start)\n"
"\n"
"Without --token-file and --tls-cert it listens in the clear and takes batches\n"
"from anyone who can reach it; give it both on any network others share.\n"
"\n"
"Bounds (SIZE takes K, M or G; a batch past one is answered 413, and the agent\n"
"drops it; a full pool, connection table or disk is answered 503, and the agent\n"
"sends it again):\n"
"      --max-body-bytes SIZE   largest body (default 16M); a larger\n"
"                              Content-Length is refused before the body\n"
"      --max-raw-bytes SIZE    largest batch after gunzip (default 16M; an\n"
"                              agent's --batch-bytes must fit)\n"
"      --max-records N         most records in a batch (default 100000; an\n"
"                              agent's --batch-records must fit)\n"
"      --max-decode-bytes SIZE most memory one batch may take decoded\n"
"                              (default 128M: about 4 times its raw size)\n"
"      --max-buffered-bytes SIZE  memory for all requests at once (default\n"
"                              256M; 0: no bound)\n"
"      --max-connections N     connections at once (default 1024); past it\n"
"                              new ones are closed at once\n"
"      --max-connections-per-ip N  from one address (default 16; 0: no bound)\n"
"      --header-timeout SECS   a request's headers must be in within SECS of\n"
"                              the connection's start or its last request's\n"
"                              end (default 10) ...\n"
"      --body-timeout SECS     ... and its body within SECS of them (default\n"
"                              60), else the connection is closed\n"
"      --dedup-agents N        agents whose seqs are kept (default 16384; the\n"
"                              least recently seen are forgotten)\n"
"  -v, --verbose             log every batch\n"
"\n"
"Fault injection (for tests):\n"
"      --fail-status CODE    answer CODE (default 500) ...\n"
"      --fail-count N        ... to the next N batches, unprocessed\n"
"      --fail-message TEXT   body of those answers\n"
"      --retry-after SECS    add Retry-After: SECS to them\n"
"      --stall-ms MS         hold the next --stall-count requests for MS, then\n"
"                            close them unprocessed (a collector that hangs)\n"
"      --stall-count N       (default 0)\n"
"      --stall-after-write   stall after writing the batch instead, then answer\n"
"                            (the client timed out: its retry is a duplicate)\n"
"      --reject-seq N        answer 400 to every batch with seq N (repeatable)\n"
"\n"
"SIGINT/SIGTERM: stop, print totals on stderr, exit 0.\n");
}

static int parse_listen(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535)
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, *host ? host : "0.0.0.0", &sa->sin_addr) != 1)
		return -EINVAL;
	return 0;
}

/* A number in min..max; with size, a K, M or G suffix (powers of 1024) too. */
static long long num_(const char *optname, const char *s, long long min, long long max, bool size)
{
	long long v, mult = 1;
	char *end;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (size && end != s && end[0] && !end[1] && strchr("kKmMgG", end[0])) {
		mult = 1024ll << (strchr("kK", end[0]) ? 0 : strchr("mM", end[0]) ? 10 : 20);
		end++;
	}
	if (errno || *end || end == s || v < min / mult || v > max / mult) {
		fprintf(stderr, "podsnoop-collector: error: %s: '%s' is not a %s in %lld..%lld\n",
			optname, s, size ? "size" : "number", min, max);
		exit(2);
	}
	return v * mult;
}
#define num(o, s, min, max) num_(o, s, min, max, false)
#define size(o, s, min, max) ((size_t)num_(o, s, min, max, true))

int main(int argc, char **argv)
{
	enum {
		O_FSYNC = 256, O_TOKEN, O_TLS_CERT, O_TLS_KEY, O_TLS_CA, O_MAX_BODY, O_FAIL_STATUS,
		O_FAIL_COUNT, O_FAIL_MSG, O_RETRY_AFTER, O_STALL_MS, O_STALL_COUNT, O_STALL_AFTER,
		O_REJECT_SEQ, O_SAVE, O_MAX_RAW, O_MAX_RECORDS, O_MAX_DECODE, O_MAX_BUFFERED,
		O_MAX_CONNS, O_MAX_CONNS_IP, O_HEADER_TIMEOUT, O_BODY_TIMEOUT, O_DEDUP_AGENTS,
		O_CH, O_CH_DB, O_CH_USER, O_CH_PASS, O_CH_CA, O_CH_TIMEOUT, O_CH_CLUSTER,
		O_RETENTION, O_RETENTION_CHECK,
	};
	static const struct option lopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "out", required_argument, NULL, 'o' },
		{ "fsync", no_argument, NULL, O_FSYNC },
		{ "save-bodies", required_argument, NULL, O_SAVE },
		{ "token-file", required_argument, NULL, O_TOKEN },
		{ "tls-cert", required_argument, NULL, O_TLS_CERT },
		{ "tls-key", required_argument, NULL, O_TLS_KEY },
		{ "tls-client-ca", required_argument, NULL, O_TLS_CA },
		{ "max-body-bytes", required_argument, NULL, O_MAX_BODY },
		{ "max-raw-bytes", required_argument, NULL, O_MAX_RAW },
		{ "max-records", required_argument, NULL, O_MAX_RECORDS },
		{ "max-decode-bytes", required_argument, NULL, O_MAX_DECODE },
		{ "max-buffered-bytes", required_argument, NULL, O_MAX_BUFFERED },
		{ "max-connections", required_argument, NULL, O_MAX_CONNS },
		{ "max-connections-per-ip", required_argument, NULL, O_MAX_CONNS_IP },
		{ "header-timeout", required_argument, NULL, O_HEADER_TIMEOUT },
		{ "body-timeout", required_argument, NULL, O_BODY_TIMEOUT },
		{ "dedup-agents", required_argument, NULL, O_DEDUP_AGENTS },
		{ "clickhouse", required_argument, NULL, O_CH },
		{ "clickhouse-database", required_argument, NULL, O_CH_DB },
		{ "clickhouse-user", required_argument, NULL, O_CH_USER },
		{ "clickhouse-password-file", required_argument, NULL, O_CH_PASS },
		{ "clickhouse-ca", required_argument, NULL, O_CH_CA },
		{ "clickhouse-timeout-ms", required_argument, NULL, O_CH_TIMEOUT },
		{ "clickhouse-cluster", required_argument, NULL, O_CH_CLUSTER },
		{ "retention-days", required_argument, NULL, O_RETENTION },
		{ "retention-check-s", required_argument, NULL, O_RETENTION_CHECK },
		{ "fail-status", required_argument, NULL, O_FAIL_STATUS },
		{ "fail-count", required_argument, NULL, O_FAIL_COUNT },
		{ "fail-message", required_argument, NULL, O_FAIL_MSG },
		{ "retry-after", required_argument, NULL, O_RETRY_AFTER },
		{ "stall-ms", required_argument, NULL, O_STALL_MS },
		{ "stall-count", required_argument, NULL, O_STALL_COUNT },
		{ "stall-after-write", no_argument, NULL, O_STALL_AFTER },
		{ "reject-seq", required_argument, NULL, O_REJECT_SEQ },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	char *cert = NULL, *key = NULL, *ca = NULL, *ch_password = NULL;
	/* poll(), not select(): connections past FD_SETSIZE */
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			     MHD_USE_POLL | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *di;
	struct MHD_Daemon *d;
	struct sockaddr_in sa;
	struct timespec tick = { 1, 0 };
	struct stat sb;
	struct rlimit rl;
	sigset_t sigs;
	int c, sig, n;

	if (argc > 1 && !strcmp(argv[1], "query"))
		return query_main(argc - 1, argv + 1);
	while ((c = getopt_long(argc, argv, "l:o:vh", lopts, NULL)) != -1) {
		switch (c) {
		case 'l': opt.listen = optarg; break;
		case 'o': opt.out_path = optarg; break;
		case 'v': opt.verbose++; break;
		case O_FSYNC: opt.fsync = true; break;
		case O_SAVE: opt.save_dir = optarg; break;
		case O_TOKEN: opt.token_file = optarg; break;
		case O_TLS_CERT: opt.tls_cert = optarg; break;
		case O_TLS_KEY: opt.tls_key = optarg; break;
		case O_TLS_CA: opt.tls_client_ca = optarg; break;
		case O_MAX_BODY: opt.max_body = size("--max-body-bytes", optarg, 1024, 1LL << 32); break;
		case O_MAX_RAW: opt.lim.max_raw = size("--max-raw-bytes", optarg, 1024, 1LL << 32); break;
		case O_MAX_RECORDS:
			opt.lim.max_records = (size_t)num("--max-records", optarg, 1, 10000000);
			break;
		case O_MAX_DECODE:
			opt.lim.max_decode = size("--max-decode-bytes", optarg, 1 << 16, 1LL << 36);
			break;
		case O_MAX_BUFFERED:
			opt.max_buffered = size("--max-buffered-bytes", optarg, 0, 1LL << 40);
			break;
		case O_MAX_CONNS:
			opt.max_conns = (unsigned)num("--max-connections", optarg, 1, 1 << 20);
			break;
		case O_MAX_CONNS_IP:
			opt.max_conns_per_ip = (unsigned)num("--max-connections-per-ip", optarg, 0,
							     1 << 20);
			break;
		case O_HEADER_TIMEOUT:
			opt.header_timeout = (unsigned)num("--header-timeout", optarg, 1, 3600);
			break;
		case O_BODY_TIMEOUT:
			opt.body_timeout = (unsigned)num("--body-timeout", optarg, 1, 86400);
			break;
		case O_DEDUP_AGENTS:
			opt.dedup_agents = (size_t)num("--dedup-agents", optarg, 1, 100000000);
			break;
		case O_CH: opt.ch_url = optarg; break;
		case O_CH_DB: opt.ch_database = optarg; break;
		case O_CH_USER: opt.ch_user = optarg; break;
		case O_CH_PASS: opt.ch_password_file = optarg; break;
		case O_CH_CA: opt.ch_ca = optarg; break;
		case O_CH_CLUSTER: opt.ch_cluster = optarg; break;
		case O_CH_TIMEOUT:
			opt.ch_timeout_ms = num("--clickhouse-timeout-ms", optarg, 100, 3600000);
			break;
		case O_RETENTION:
			opt.ch_retention_days = (unsigned)num("--retention-days", optarg, 0, 100000);
			break;
		case O_RETENTION_CHECK:
			opt.ch_retention_check_s = (unsigned)num("--retention-check-s", optarg, 1,
								 86400);
			break;
		case O_FAIL_STATUS: opt.fail_status = num("--fail-status", optarg, 100, 599); break;
		case O_FAIL_COUNT: opt.fail_count = num("--fail-count", optarg, 0, 1L << 30); break;
		case O_FAIL_MSG: opt.fail_message = optarg; break;
		case O_RETRY_AFTER: opt.retry_after = num("--retry-after", optarg, 0, 86400); break;
		case O_STALL_MS: opt.stall_ms = num("--stall-ms", optarg, 0, 3600000); break;
		case O_STALL_COUNT: opt.stall_count = num("--stall-count", optarg, 0, 1L << 30); break;
		case O_STALL_AFTER: opt.stall_after_write = true; break;
		case O_REJECT_SEQ:
			if (opt.n_reject_seq == MAX_REJECT_SEQ) {
				fprintf(stderr, "podsnoop-collector: error: too many --reject-seq\n");
				return 2;
			}
			opt.reject_seq[opt.n_reject_seq++] =
				(uint64_t)num("--reject-seq", optarg, 1, LONG_MAX);
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (opt.ch_cluster && !opt.ch_url) {
		fprintf(stderr, "podsnoop-collector: error: --clickhouse-cluster needs --clickhouse\n");
		return 2;
	}
	if (opt.ch_retention_days && !opt.ch_url) {
		fprintf(stderr, "podsnoop-collector: error: --retention-days needs --clickhouse\n");
		return 2;
	}
	if (optind < argc || parse_listen(opt.listen, &sa) || (!opt.tls_cert != !opt.tls_key) ||
	    (opt.tls_client_ca && !opt.tls_cert)) {
		fprintf(stderr, "podsnoop-collector: error: bad arguments (--listen ADDR:PORT; "
			"--tls-cert and --tls-key together; --tls-client-ca needs them)\n");
		return 2;
	}
	if (opt.token_file) {
		size_t len;

		token = read_file(opt.token_file, &len);
		if (!token) {
			log_err("--token-file %s: %s", opt.token_file, strerror(errno));
			return 1;
		}
		while (len && strchr("\r\n \t", token[len - 1]))
			token[--len] = '\0';
		if (!len || strlen(token) != len) { /* "Bearer " alone would pass */
			log_err("--token-file %s: %s", opt.token_file, len ? "holds a NUL byte" :
				"is empty");
			return 1;
		}
	}
	if (opt.tls_cert) {
		cert = read_file(opt.tls_cert, NULL);
		key = read_file(opt.tls_key, NULL);
		ca = opt.tls_client_ca ? read_file(opt.tls_client_ca, NULL) : NULL;
		if (!cert || !key || (opt.tls_client_ca && !ca)) {
			log_err("cannot read the TLS files: %s", strerror(errno));
			return 1;
		}
		flags |= MHD_USE_TLS;
	}
	if (!token && !opt.tls_cert)
		log_warn("no --token-file and no --tls-cert: anyone who can reach %s can send "
			 "batches, in the clear", opt.listen);
	/* a thread and a socket per connection: room for --max-connections of them */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < (rlim_t)opt.max_conns + 32) {
		opt.max_conns = rl.rlim_cur > 64 ? (unsigned)rl.rlim_cur - 32 : 32;
		log_warn("RLIMIT_NOFILE is %llu: --max-connections lowered to %u",
			 (unsigned long long)rl.rlim_cur, opt.max_conns);
	}
	pool.max = opt.max_buffered;
	dedup_init(&seen, opt.dedup_agents);
	if (collector_metrics_init()) {
		log_err("cannot register the metrics");
		return 1;
	}
	if (opt.ch_url) {
		struct ch_conf cc = {
			.url = opt.ch_url, .database = opt.ch_database, .user = opt.ch_user,
			.ca = opt.ch_ca, .timeout_ms = opt.ch_timeout_ms,
			.cluster = opt.ch_cluster,
			.retention_days = opt.ch_retention_days,
			.retention_check_s = opt.ch_retention_check_s,
		};
		char err[1024];

		if (opt.ch_password_file) {
			size_t len;

			ch_password = read_file(opt.ch_password_file, &len);
			if (!ch_password) {
				log_err("--clickhouse-password-file %s: %s", opt.ch_password_file,
					strerror(errno));
				return 1;
			}
			while (len && strchr("\r\n", ch_password[len - 1]))
				ch_password[--len] = '\0';
			cc.password = ch_password;
			if (!cc.user)
				cc.user = "default";
		}
		n = ch_init(&cc, err, sizeof(err));
		if (n) {
			log_err("%s", err);
			return 1;
		}
		if (opt.ch_cluster)
			log_info("writing to ClickHouse at %s, database %s (schema version %d), "
				 "cluster %s: tables made on %u servers", ch_url_shown(),
				 opt.ch_database, CH_SCHEMA_VERSION, opt.ch_cluster, ch_servers());
		else
			log_info("writing to ClickHouse at %s, database %s (schema version %d)",
				 ch_url_shown(), opt.ch_database, CH_SCHEMA_VERSION);
	}
	if (opt.out_path) {
		n = load_seen(opt.out_path);
		if (n < 0) {
			log_err("%s: %s", opt.out_path, strerror(-n));
			return 1;
		}
		if (n)
			log_info("%d batches already in %s count as seen", n, opt.out_path);
		out = fopen(opt.out_path, "a");
		if (!out) {
			log_err("%s: %s", opt.out_path, strerror(errno));
			return 1;
		}
		if (!fstat(fileno(out), &sb) && S_ISREG(sb.st_mode))
			out_good = sb.st_size;
	} else if (!opt.ch_url) {
		out = stdout;
	}
	if (out)
		setvbuf(out, NULL, _IOFBF, 1 << 20);

	/* signals are taken by sigwait below; MHD's threads inherit the mask */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	d = MHD_start_daemon(flags, 0, NULL, NULL, http_handler, NULL,
			     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
			     MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
			     MHD_OPTION_NOTIFY_COMPLETED, http_completed, NULL,
			     MHD_OPTION_NOTIFY_CONNECTION, http_notify_connection, NULL,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
			     MHD_OPTION_CONNECTION_LIMIT, opt.max_conns,
			     MHD_OPTION_PER_IP_CONNECTION_LIMIT, opt.max_conns_per_ip,
			     /* request line and headers (MHD's default): larger is 431 */
			     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
			     MHD_OPTION_THREAD_STACK_SIZE, (size_t)MIB,
			     cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cert,
			     MHD_OPTION_HTTPS_MEM_KEY, key,
			     ca ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, ca,
			     MHD_OPTION_END);
	if (!d) {
		log_err("cannot listen on %s%s", opt.listen,
			cert && !MHD_is_feature_supported(MHD_FEATURE_TLS) ?
			" (this libmicrohttpd has no TLS)" : "");
		return 1;
	}
	di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	{
		char host[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &sa.sin_addr, host, sizeof(host));
		log_info("podsnoop-collector %s listening on %s://%s:%u" PATH_V1, PODSNOOP_VERSION,
			 cert ? "https" : "http", host, di ? di->port : ntohs(sa.sin_port));
	}
	log_info("ready");

	do {
		sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig < 0 && errno == EAGAIN)
			http_reap();
		else if (sig < 0 && errno != EINTR)
			sig = SIGTERM;
	} while (sig != SIGINT && sig != SIGTERM);
	log_info("%s received, stopping", strsignal(sig));
	MHD_stop_daemon(d);
	if (out)
		fflush(out);
	log_info("accepted %" PRIu64 " batches (%" PRIu64 " records, %" PRIu64 " bytes, %" PRIu64
		 " decompressed), %" PRIu64 " duplicates, %" PRIu64 " rejected, %" PRIu64
		 " records of unknown kinds skipped, %" PRIu64 " records reported lost by agents",
		 st.batches, st.records, st.bytes, st.raw_bytes, st.duplicates, st.rejected,
		 st.skipped, st.lost);
	log_info("answered 503 to %" PRIu64 " batches that could not be written and %" PRIu64
		 " while busy (buffered at most %zu bytes at once); closed %" PRIu64 " connections "
		 "past their deadlines; de-duplication forgot %" PRIu64 " agents and %" PRIu64
		 " ranges", st.write_failed, st.busy, pool.peak, st.cut, seen.forgotten_agents,
		 seen.forgotten_ranges);
	if (opt.ch_url) {
		struct ch_stats cs;

		ch_get_stats(&cs);
		log_info("ClickHouse: %" PRIu64 " inserts, %" PRIu64 " failed (answered 503 to %"
			 PRIu64 " batches)", cs.inserts, cs.inserts_failed, st.ch_failed);
		ch_fini();
	}
	if (out && out != stdout)
		fclose(out);
	free(ch_password);
	dedup_free(&seen);
	free(token);
	free(cert);
	free(key);
	free(ca);
	return 0;
}
