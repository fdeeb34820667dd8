// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * podsnoop-collector: the reference collector. Receives the agent's batches
 * (POST /v1/batches, gzip(podsnoop.v1.Batch)), checks them, drops
 * duplicates by (agent_id, seq) and writes the records as NDJSON with the
 * agent's own writer (lib/ndjson.c, through lib/pbconv.c), so its output
 * has the same schema as `podsnoop --output ndjson`. Before a batch's
 * records comes one {"type":"batch",...} line naming the agent and seq.
 * Fault injection flags (--fail-*, --stall-*, --reject-seq) serve the tests.
 * Usage: podsnoop-collector --help.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "collector/dedup.h"
#include "lib/jsonw.h"
#include "agent/out/output.h"
#include "lib/pbconv.h"
#include "lib/batch.h"
#include "lib/version.h"

#define PATH_V1 "/v1/batches"
#define MAX_REJECT_SEQ 64
#define ID_CHARS "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-"

static struct {
	const char *listen;
	const char *out_path;
	const char *token_file;
	const char *tls_cert, *tls_key, *tls_client_ca;
	const char *save_dir;
	size_t max_body;
	size_t max_raw;
	size_t dedup_agents;
	bool fsync;
	int verbose;
	/* faults */
	long fail_status;
	long fail_count;
	long retry_after;
	const char *fail_message;
	long stall_ms;
	long stall_count;
	bool stall_after_write;
	uint64_t reject_seq[MAX_REJECT_SEQ];
	int n_reject_seq;
} opt = {
	.listen = "0.0.0.0:9400",
	.max_body = 64u << 20,
	.max_raw = 512u << 20,
	.dedup_agents = DEDUP_AGENTS_DEF,
	.fail_status = 500,
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* output, dedup, faults, stats */
static FILE *out;
static char *token;
static struct dedup seen;
static struct {
	uint64_t batches, duplicates, rejected, records, skipped, bytes, raw_bytes, lost;
} st;

static void logf_(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const char *level, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "podsnoop-collector: %s: %s\n", level, buf);
}
#define log_err(...) logf_("error", __VA_ARGS__)
#define log_warn(...) logf_("warning", __VA_ARGS__)
#define log_info(...) logf_("info", __VA_ARGS__)
#define log_debug(...) do { if (opt.verbose) logf_("debug", __VA_ARGS__); } while (0)

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

/* ---- writing a batch ---- */

static void write_batch_line(const Podsnoop__V1__Batch *b, size_t bytes, uint64_t skipped)
{
	const Podsnoop__V1__Agent *a = b->agent;
	struct jw w;

	jw_begin(&w, out);
	jw_cstr(&w, "type", "batch");
	jw_u64(&w, "ts_ns", b->sent_ns);
	jw_cstr(&w, "node", a->node);
	jw_cstr(&w, "agent_id", a->agent_id);
	jw_cstr(&w, "version", a->version);
	jw_cstr(&w, "kernel", a->kernel);
	jw_u64(&w, "started_ns", a->started_ns);
	jw_u64(&w, "seq", b->seq);
	jw_u64(&w, "records", b->n_records);
	jw_u64(&w, "losses", b->n_losses);
	jw_u64(&w, "bytes", bytes);
	if (skipped)
		jw_u64(&w, "skipped", skipped);
	jw_end(&w);
}

/*
 * The agent's loss record plus the reason (ndjson.c's loss lines carry no
 * reason: the agent's own stages do not have one).
 */
static void write_loss(const Podsnoop__V1__Loss *l, uint64_t ts_ns)
{
	struct jw w;

	jw_begin(&w, out);
	jw_cstr(&w, "type", "loss");
	jw_u64(&w, "ts_ns", ts_ns);
	jw_cstr(&w, "tracer", l->tracer);
	jw_cstr(&w, "stage", l->stage);
	if (*l->reason)
		jw_cstr(&w, "reason", l->reason);
	jw_u64(&w, "count", l->count);
	jw_u64(&w, "total", l->total);
	jw_end(&w);
}

/*
 * One record through the agent's NDJSON writer; write=false only checks.
 * Returns 0, -EINVAL for a record no agent would send, -ENOTSUP for a kind
 * this collector cannot write yet.
 */
struct view_bufs {
	struct exec_view_buf exec;
	struct open_view_buf open;
	struct bio_view_buf bio;
	struct bio_hist_view_buf bio_hist;
	struct fs_view_buf fs;
	struct cache_view_buf cache;
};

static int record(const Podsnoop__V1__Record *r, struct view_bufs *vb, bool write)
{
	switch (r->kind_case) {
	case PODSNOOP__V1__RECORD__KIND_EXEC: {
		struct exec_view v;
		int err = pbconv_exec_view(r->exec, &vb->exec, &v);

		if (!err && write)
			ndjson_sink.exec(out, &v);
		return err;
	}
	case PODSNOOP__V1__RECORD__KIND_OPEN: {
		struct open_view v;
		int err = pbconv_open_view(r->open, &vb->open, &v);

		if (!err && write)
			ndjson_sink.open(out, &v);
		return err;
	}
	case PODSNOOP__V1__RECORD__KIND_BIO: {
		struct bio_view v;
		int err = pbconv_bio_view(r->bio, &vb->bio, &v);

		if (!err && write)
			ndjson_sink.bio(out, &v);
		return err;
	}
	case PODSNOOP__V1__RECORD__KIND_BIO_HIST: {
		struct bio_hist_view v;
		int err = pbconv_bio_hist_view(r->bio_hist, &vb->bio_hist, &v);

		if (!err && write)
			ndjson_sink.bio_hist(out, &v);
		return err;
	}
	case PODSNOOP__V1__RECORD__KIND_FS: {
		struct fs_view v;
		int err = pbconv_fs_view(r->fs, &vb->fs, &v);

		if (!err && write)
			ndjson_sink.fs(out, &v);
		return err;
	}
	case PODSNOOP__V1__RECORD__KIND_CACHE: {
		struct cache_view v;
		int err = pbconv_cache_view(r->cache, &vb->cache, &v);

		if (!err && write)
			ndjson_sink.cache(out, &v);
		return err;
	}
	case PODSNOOP__V1__RECORD__KIND__NOT_SET:
		return -EINVAL;
	default:
		return -ENOTSUP;
	}
}

static bool reject_seq(uint64_t seq)
{
	for (int i = 0; i < opt.n_reject_seq; i++)
		if (opt.reject_seq[i] == seq)
			return true;
	return false;
}

/* Returns true when it stalled. */
static bool stall(const char *when)
{
	bool now = false;

	pthread_mutex_lock(&mu);
	if (opt.stall_count > 0 && !strcmp(when, "after") == opt.stall_after_write) {
		opt.stall_count--;
		now = true;
	}
	pthread_mutex_unlock(&mu);
	if (now) {
		log_info("fault: stalling %ld ms (%s writing)", opt.stall_ms, when);
		usleep((useconds_t)opt.stall_ms * 1000);
	}
	return now;
}

/* --save-bodies: keep the body as received, for other decoders to read. */
static void save_body(const char *agent_id, uint64_t seq, const uint8_t *body, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s-%020" PRIu64 ".pb%s", opt.save_dir, agent_id, seq,
		 len >= 2 && body[0] == 0x1f && body[1] == 0x8b ? ".gz" : "");
	f = fopen(path, "wb");
	if (!f || fwrite(body, 1, len, f) != len)
		log_err("--save-bodies: %s: %s", path, strerror(errno));
	if (f)
		fclose(f);
}

/* Check and write one body. Returns the HTTP status; msg says why. */
static unsigned process(const uint8_t *body, size_t len, bool gzipped, char *msg, size_t msz)
{
	struct view_bufs *vb = malloc(sizeof(*vb)); /* large: not on a thread's stack */
	Podsnoop__V1__Batch *b = NULL;
	uint64_t skipped = 0, lost = 0;
	uint8_t *raw = NULL;
	size_t raw_len = len;
	unsigned status = 200;
	int err = 0;

	if (!vb)
		err = -ENOMEM;
	if (!err && gzipped)
		err = pb_gunzip(body, len, opt.max_raw, &raw, &raw_len);
	if (!err) {
		b = podsnoop__v1__batch__unpack(NULL, raw_len, raw ? raw : body);
		err = b ? 0 : -EBADMSG;
	}
	free(raw);
	if (err) {
		snprintf(msg, msz, "%s", err == -E2BIG ? "batch too large when decompressed" :
			 err == -ENOMEM ? "out of memory" : "body is not a gzipped podsnoop.v1.Batch");
		free(vb);
		return err == -E2BIG ? 413 : err == -ENOMEM ? 503 : 400;
	}
	if (!b->agent || !*b->agent->agent_id || strlen(b->agent->agent_id) > DEDUP_ID_MAX ||
	    strspn(b->agent->agent_id, ID_CHARS) != strlen(b->agent->agent_id)) {
		snprintf(msg, msz, "batch without a valid agent.agent_id (1..64 of [0-9A-Za-z_-])");
		status = 400;
		goto out;
	}
	if (!b->seq) {
		snprintf(msg, msz, "batch without seq");
		status = 400;
		goto out;
	}
	for (size_t i = 0; i < b->n_records; i++) {
		err = record(b->records[i], vb, false);
		if (err == -ENOTSUP) {
			skipped++;
		} else if (err) {
			snprintf(msg, msz, "record %zu of batch %" PRIu64 " is malformed", i, b->seq);
			status = 400;
			goto out;
		}
	}
	if (reject_seq(b->seq)) {
		snprintf(msg, msz, "batch %" PRIu64 " rejected by --reject-seq (%zu records)", b->seq,
			 b->n_records);
		pthread_mutex_lock(&mu);
		{ /* what was refused, for tests to count exactly */
			struct jw w;

			jw_begin(&w, out);
			jw_cstr(&w, "type", "rejected");
			jw_cstr(&w, "agent_id", b->agent->agent_id);
			jw_u64(&w, "seq", b->seq);
			jw_u64(&w, "records", b->n_records);
			jw_u64(&w, "status", 400);
			jw_end(&w);
			fflush(out);
		}
		st.rejected++;
		pthread_mutex_unlock(&mu);
		status = 400;
		goto out;
	}

	pthread_mutex_lock(&mu);
	if (dedup_seen(&seen, b->agent->agent_id, b->seq)) {
		st.duplicates++;
		pthread_mutex_unlock(&mu);
		log_debug("agent %s batch %" PRIu64 ": duplicate, dropped", b->agent->agent_id, b->seq);
		snprintf(msg, msz, "duplicate");
		goto out;
	}
	if (opt.save_dir)
		save_body(b->agent->agent_id, b->seq, body, len);
	write_batch_line(b, len, skipped);
	for (size_t i = 0; i < b->n_records; i++)
		record(b->records[i], vb, true);
	for (size_t i = 0; i < b->n_losses; i++) {
		write_loss(b->losses[i], b->sent_ns);
		lost += b->losses[i]->count;
	}
	fflush(out);
	if (opt.fsync)
		fdatasync(fileno(out));
	err = dedup_mark(&seen, b->agent->agent_id, b->seq);
	if (err)
		log_err("dedup: %s", strerror(-err));
	st.batches++;
	st.records += b->n_records - skipped;
	st.skipped += skipped;
	st.bytes += len;
	st.raw_bytes += raw_len;
	st.lost += lost;
	pthread_mutex_unlock(&mu);
	if (skipped)
		log_warn("agent %s batch %" PRIu64 ": %" PRIu64 " records of kinds this collector "
			 "cannot write yet", b->agent->agent_id, b->seq, skipped);
	log_debug("agent %s batch %" PRIu64 ": %zu records, %zu losses, %zu bytes",
		  b->agent->agent_id, b->seq, b->n_records, b->n_losses, len);
	snprintf(msg, msz, "ok");
out:
	podsnoop__v1__batch__free_unpacked(b, NULL);
	free(vb);
	return status;
}

/* ---- HTTP ---- */

struct conn {
	uint8_t *buf;
	size_t len, cap;
	unsigned status;	/* nonzero: answer this, whatever the body */
	char msg[256];
	bool gzipped;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *msg,
			     long retry_after)
{
	char body[300];
	struct MHD_Response *r;
	enum MHD_Result ret;
	int n = snprintf(body, sizeof(body), "%s\n", msg);

	r = MHD_create_response_from_buffer((size_t)n, body, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/plain");
	if (retry_after > 0) {
		char ra[32];

		snprintf(ra, sizeof(ra), "%ld", retry_after);
		MHD_add_response_header(r, "Retry-After", ra);
	}
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static bool client_cert_ok(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci;
	unsigned int list_size = 0, status = 0;
	gnutls_session_t s;

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return false;
	s = (gnutls_session_t)ci->tls_session;
	if (!gnutls_certificate_get_peers(s, &list_size) || !list_size)
		return false;
	return gnutls_certificate_verify_peers2(s, &status) == 0 && status == 0;
}

/* Checks that need only the request line and headers; sets cn->status. */
static void check_headers(struct MHD_Connection *c, const char *url, const char *method,
			  struct conn *cn)
{
	const char *auth, *ctype, *cenc;

	if (strcmp(url, PATH_V1)) {
		cn->status = 404;
		snprintf(cn->msg, sizeof(cn->msg), "no such path; batches go to " PATH_V1);
		return;
	}
	if (strcmp(method, "POST")) {
		cn->status = 405;
		snprintf(cn->msg, sizeof(cn->msg), "POST batches here");
		return;
	}
	if (opt.tls_client_ca && !client_cert_ok(c)) {
		cn->status = 403;
		snprintf(cn->msg, sizeof(cn->msg), "a client certificate signed by our CA is required");
		return;
	}
	if (token) {
		auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
		if (!auth || strncmp(auth, "Bearer ", 7) || strcmp(auth + 7, token)) {
			cn->status = 401;
			snprintf(cn->msg, sizeof(cn->msg), "%s",
				 auth ? "invalid bearer token" : "missing bearer token");
			return;
		}
	}
	ctype = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	if (!ctype || strncmp(ctype, "application/x-protobuf", 22)) {
		cn->status = 415;
		snprintf(cn->msg, sizeof(cn->msg), "Content-Type must be application/x-protobuf");
		return;
	}
	cenc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Encoding");
	if (cenc && strcmp(cenc, "gzip") && strcmp(cenc, "identity")) {
		cn->status = 415;
		snprintf(cn->msg, sizeof(cn->msg), "Content-Encoding must be gzip or identity");
		return;
	}
	cn->gzipped = cenc && !strcmp(cenc, "gzip");
}

/* The fault to inject for this request, if any (status 0: none). */
static unsigned injected_fault(char *msg, size_t msz)
{
	unsigned status = 0;

	pthread_mutex_lock(&mu);
	if (opt.fail_count > 0) {
		opt.fail_count--;
		status = (unsigned)opt.fail_status;
		snprintf(msg, msz, "%s", opt.fail_message ? opt.fail_message : "injected fault");
	}
	pthread_mutex_unlock(&mu);
	return status;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
			       const char *method, const char *version, const char *data,
			       size_t *data_size, void **con_cls)
{
	struct conn *cn = *con_cls;
	unsigned status;

	(void)cls, (void)version;
	if (!cn) {
		if (!strcmp(url, "/healthz") && !strcmp(method, "GET"))
			return reply(c, 200, "ok", 0);
		cn = calloc(1, sizeof(*cn));
		if (!cn)
			return MHD_NO;
		*con_cls = cn;
		check_headers(c, url, method, cn);
		return MHD_YES;
	}
	if (*data_size) {
		/* after an early verdict the body is read and thrown away */
		if (!cn->status && cn->len + *data_size > opt.max_body) {
			cn->status = 413;
			snprintf(cn->msg, sizeof(cn->msg), "body larger than --max-body-bytes");
		}
		if (!cn->status) {
			if (cn->len + *data_size > cn->cap) {
				size_t cap = cn->cap ? cn->cap : 65536;
				uint8_t *nb;

				while (cap < cn->len + *data_size)
					cap *= 2;
				nb = realloc(cn->buf, cap);
				if (!nb)
					return MHD_NO;
				cn->buf = nb;
				cn->cap = cap;
			}
			memcpy(cn->buf + cn->len, data, *data_size);
			cn->len += *data_size;
		}
		*data_size = 0;
		return MHD_YES;
	}
	if (cn->status) {
		log_info("answered %u to %s %s: %s", cn->status, method, url, cn->msg);
		return reply(c, cn->status, cn->msg, 0);
	}
	if (stall("before"))
		return MHD_NO; /* a collector that hung: the batch is never processed */
	status = injected_fault(cn->msg, sizeof(cn->msg));
	if (status) {
		log_info("fault: answering %u (%s)", status, cn->msg);
		return reply(c, status, cn->msg, opt.retry_after);
	}
	status = process(cn->buf, cn->len, cn->gzipped, cn->msg, sizeof(cn->msg));
	if (status != 200)
		log_warn("answered %u: %s", status, cn->msg);
	stall("after");
	return reply(c, status, cn->msg, 0);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct conn *cn = *con_cls;

	(void)cls, (void)c, (void)toe;
	if (cn) {
		free(cn->buf);
		free(cn);
		*con_cls = NULL;
	}
}

/* ---- start ---- */

static void usage(FILE *f)
{
	fprintf(f,
"Usage: podsnoop-collector [OPTIONS]\n"
"\n"
"Receives podsnoop batches on POST " PATH_V1 " (gzip(podsnoop.v1.Batch)),\n"
"drops duplicates by (agent_id, seq) and writes the records as NDJSON, the\n"
"schema of `podsnoop --output ndjson`, each batch's records after a\n"
"{\"type\":\"batch\",...} line. GET /healthz answers ok.\n"
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
"      --max-body-bytes N    largest body accepted (default 64 MiB)\n"
"      --dedup-agents N      agents whose seqs are kept (default 16384; the\n"
"                            least recently seen are forgotten)\n"
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

static long num(const char *optname, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max) {
		fprintf(stderr, "podsnoop-collector: error: %s: '%s' is not a number in %ld..%ld\n",
			optname, s, min, max);
		exit(2);
	}
	return v;
}

/* Batches already in the output file count as seen (a restarted collector). */
static int load_seen(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *p;
	size_t cap = 0;
	int n = 0;

	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (getline(&line, &cap, f) > 0) {
		char id[DEDUP_ID_MAX + 1];
		unsigned long long seq;

		/* our own batch lines: {"type":"batch",...,"agent_id":"...",...,"seq":N,... */
		if (strncmp(line, "{\"type\":\"batch\",", 16))
			continue;
		p = strstr(line, ",\"agent_id\":\"");
		if (!p || sscanf(p, ",\"agent_id\":\"%64[0-9a-zA-Z_-]\"", id) != 1)
			continue;
		p = strstr(line, ",\"seq\":");
		if (!p || sscanf(p, ",\"seq\":%llu", &seq) != 1)
			continue;
		if (!dedup_mark(&seen, id, seq))
			n++;
	}
	free(line);
	fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	enum {
		O_FSYNC = 256, O_TOKEN, O_TLS_CERT, O_TLS_KEY, O_TLS_CA, O_MAX_BODY, O_FAIL_STATUS,
		O_FAIL_COUNT, O_FAIL_MSG, O_RETRY_AFTER, O_STALL_MS, O_STALL_COUNT, O_STALL_AFTER,
		O_REJECT_SEQ, O_SAVE, O_DEDUP_AGENTS,
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
		{ "dedup-agents", required_argument, NULL, O_DEDUP_AGENTS },
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
	char *cert = NULL, *key = NULL, *ca = NULL;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			     MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *di;
	struct MHD_Daemon *d;
	struct sockaddr_in sa;
	sigset_t sigs;
	int c, sig, n;

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
		case O_MAX_BODY: opt.max_body = (size_t)num("--max-body-bytes", optarg, 1024, 1L << 32); break;
		case O_DEDUP_AGENTS:
			opt.dedup_agents = (size_t)num("--dedup-agents", optarg, 1, 100000000);
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
	dedup_init(&seen, opt.dedup_agents);
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
	} else {
		out = stdout;
	}
	setvbuf(out, NULL, _IOFBF, 1 << 20);

	/* signals are taken by sigwait below; MHD's threads inherit the mask */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	d = MHD_start_daemon(flags, 0, NULL, NULL, handler, NULL,
			     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
			     MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1,
			     MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
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
		if (sigwait(&sigs, &sig))
			sig = SIGTERM;
	} while (sig != SIGINT && sig != SIGTERM);
	log_info("%s received, stopping", strsignal(sig));
	MHD_stop_daemon(d);
	fflush(out);
	log_info("accepted %" PRIu64 " batches (%" PRIu64 " records, %" PRIu64 " bytes, %" PRIu64
		 " decompressed), %" PRIu64 " duplicates, %" PRIu64 " rejected, %" PRIu64
		 " records of unknown kinds skipped, %" PRIu64 " records reported lost by agents",
		 st.batches, st.records, st.bytes, st.raw_bytes, st.duplicates, st.rejected,
		 st.skipped, st.lost);
	log_info("de-duplication forgot %" PRIu64 " agents and %" PRIu64 " ranges",
		 seen.forgotten_agents, seen.forgotten_ranges);
	if (out != stdout)
		fclose(out);
	dedup_free(&seen);
	free(token);
	free(cert);
	free(key);
	free(ca);
	return 0;
}
