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
#include <stdio_ext.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "collector/dedup.h"
#include "collector/request.h"
#include "lib/jsonw.h"
#include "lib/version.h"

#define PATH_V1 "/v1/batches"
#define MAX_REJECT_SEQ 64
#define MIB (1024u * 1024u)
/* Retry-After for 503s: the pool is busy for a moment; a full disk needs a person */
#define RETRY_BUSY_S 2
#define RETRY_DISK_S 30

static struct {
	const char *listen;
	const char *out_path;
	const char *token_file;
	const char *tls_cert, *tls_key, *tls_client_ca;
	const char *save_dir;
	size_t max_body;
	struct req_limits lim;
	size_t max_buffered;
	unsigned max_conns, max_conns_per_ip;
	unsigned header_timeout, body_timeout;
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
	.fail_status = 500,
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* output, dedup, faults, stats */
static FILE *out;
static off_t out_good = -1;	/* --out's size after the last whole unit; -1: not a file */
static char *token;
static struct dedup seen;
static struct mem_pool pool;	/* bodies, gunzip output, decoded batches */
static struct {
	uint64_t batches, duplicates, rejected, records, skipped, bytes, raw_bytes, lost;
	uint64_t write_failed, busy, cut;
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

/*
 * Everything written since the last call reaches --out (and the disk, with
 * --fsync), or none of it stays: on a failed write or sync the file is cut
 * back to the end of the last whole unit. Call with mu held. 0 or -errno.
 */
static int out_commit(void)
{
	int err = 0;
	struct stat sb;

	if (fflush(out) == EOF || ferror(out))
		err = errno ? -errno : -EIO;
	else if (opt.fsync && fdatasync(fileno(out)) && errno != EINVAL && errno != EROFS)
		err = -errno; /* (a pipe cannot be synced) */
	if (!err) {
		if (out_good >= 0 && !fstat(fileno(out), &sb))
			out_good = sb.st_size;
		return 0;
	}
	__fpurge(out); /* what stdio still holds must not come out later */
	clearerr(out);
	if (out_good >= 0 && ftruncate(fileno(out), out_good))
		log_err("cannot cut %s back to its last whole batch: %s", opt.out_path,
			strerror(errno));
	return err;
}

/* Before a unit: errno tells out_commit() why stdio failed, if it does. */
static void out_begin(void)
{
	errno = 0;
}

static void write_rejected(const Podsnoop__V1__Batch *b)
{
	struct jw w;
	int err;

	out_begin();
	jw_begin(&w, out);
	jw_cstr(&w, "type", "rejected");
	jw_cstr(&w, "agent_id", b->agent->agent_id);
	jw_u64(&w, "seq", b->seq);
	jw_u64(&w, "records", b->n_records);
	jw_u64(&w, "status", 400);
	jw_end(&w);
	err = out_commit();
	if (err)
		log_err("%s: cannot write: %s", opt.out_path ? opt.out_path : "stdout",
			strerror(-err));
}

/* The batch line, the records and the losses, as one unit. Call with mu held. */
static int write_batch(struct req *r, size_t bytes, uint64_t *lost)
{
	const Podsnoop__V1__Batch *b = r->batch;

	out_begin();
	write_batch_line(b, bytes, r->skipped);
	request_write_records(r, out);
	*lost = 0;
	for (size_t i = 0; i < b->n_losses; i++) {
		write_loss(b->losses[i], b->sent_ns);
		*lost += b->losses[i]->count;
	}
	return out_commit();
}

/* A failed write, logged at most every 10 s with the count in between. */
static void log_write_failed(int err)
{
	static time_t last;
	static uint64_t since;
	time_t now = time(NULL);

	since++;
	if (now - last < 10)
		return;
	log_err("%s: cannot write a batch: %s; answered 503 and kept nothing of it (%" PRIu64
		" batches since the last message): agents send them again", opt.out_path ?
		opt.out_path : "stdout", strerror(-err), since);
	last = now;
	since = 0;
}

/* Decode, check and write one body. Returns the HTTP status; msg says why. */
static unsigned process(struct req *r, const uint8_t *body, size_t len, bool gzipped,
			long *retry_after)
{
	const Podsnoop__V1__Batch *b;
	uint64_t lost = 0;
	unsigned status;
	int err;

	status = request_decode(r, body, len, gzipped);
	if (status == 503) {
		*retry_after = RETRY_BUSY_S;
		pthread_mutex_lock(&mu);
		st.busy++;
		pthread_mutex_unlock(&mu);
	}
	if (status != 200)
		return status;
	b = r->batch;
	if (reject_seq(b->seq)) {
		snprintf(r->msg, sizeof(r->msg), "batch %" PRIu64 " rejected by --reject-seq (%zu "
			 "records)", b->seq, b->n_records);
		pthread_mutex_lock(&mu);
		write_rejected(b); /* what was refused, for tests to count exactly */
		st.rejected++;
		pthread_mutex_unlock(&mu);
		return 400;
	}

	pthread_mutex_lock(&mu);
	if (dedup_seen(&seen, b->agent->agent_id, b->seq)) {
		st.duplicates++;
		pthread_mutex_unlock(&mu);
		log_debug("agent %s batch %" PRIu64 ": duplicate, dropped", b->agent->agent_id, b->seq);
		snprintf(r->msg, sizeof(r->msg), "duplicate");
		return 200;
	}
	if (opt.save_dir)
		save_body(b->agent->agent_id, b->seq, body, len);
	err = write_batch(r, len, &lost);
	if (err) {
		st.write_failed++;
		log_write_failed(err);
		pthread_mutex_unlock(&mu);
		snprintf(r->msg, sizeof(r->msg), "cannot write the batch: %s; send it again later",
			 strerror(-err));
		*retry_after = RETRY_DISK_S;
		return 503;
	}
	err = dedup_mark(&seen, b->agent->agent_id, b->seq);
	if (err)
		log_err("dedup: %s", strerror(-err));
	st.batches++;
	st.records += b->n_records - r->skipped;
	st.skipped += r->skipped;
	st.bytes += len;
	st.raw_bytes += r->raw_len;
	st.lost += lost;
	pthread_mutex_unlock(&mu);
	if (r->skipped)
		log_warn("agent %s batch %" PRIu64 ": %" PRIu64 " records of kinds this collector "
			 "does not know, skipped (a newer agent?)", b->agent->agent_id, b->seq,
			 r->skipped);
	log_debug("agent %s batch %" PRIu64 ": %zu records, %zu losses, %zu bytes",
		  b->agent->agent_id, b->seq, b->n_records, b->n_losses, len);
	snprintf(r->msg, sizeof(r->msg), "ok");
	return 200;
}

/* ---- HTTP ---- */

/*
 * One connection, for the deadlines: from its start, or the end of its
 * last request, the next request's headers must be in within
 * --header-timeout; from the headers, its body within --body-timeout.
 * MHD's own timeout is reset by every byte, so a client trickling bytes
 * would hold a connection (and its thread) forever. The main thread cuts
 * connections past their deadline (reap()).
 */
enum phase { P_HEADERS, P_BODY, P_BUSY };

struct slot {
	struct slot *prev, *next;
	int fd;
	enum phase phase;
	time_t deadline;	/* CLOCK_MONOTONIC seconds */
	bool cut;
};

static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot *slots;

static time_t mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static void slot_set(struct slot *s, enum phase phase)
{
	if (!s)
		return;
	pthread_mutex_lock(&slots_mu);
	s->phase = phase;
	s->deadline = mono_now() + (phase == P_HEADERS ? opt.header_timeout : opt.body_timeout);
	pthread_mutex_unlock(&slots_mu);
}

static struct slot *slot_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			      enum MHD_ConnectionNotificationCode code)
{
	const union MHD_ConnectionInfo *ci;
	struct slot *s = *socket_context;

	(void)cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		s = calloc(1, sizeof(*s));
		if (!s || !ci) {
			free(s);
			log_err("connection without a deadline: %s", strerror(ENOMEM));
			return;
		}
		s->fd = ci->connect_fd;
		slot_set(s, P_HEADERS);
		pthread_mutex_lock(&slots_mu);
		s->next = slots;
		if (slots)
			slots->prev = s;
		slots = s;
		pthread_mutex_unlock(&slots_mu);
		*socket_context = s;
		return;
	}
	if (!s) /* MHD_CONNECTION_NOTIFY_CLOSED, before the socket is closed */
		return;
	pthread_mutex_lock(&slots_mu);
	*(s->prev ? &s->prev->next : &slots) = s->next;
	if (s->next)
		s->next->prev = s->prev;
	pthread_mutex_unlock(&slots_mu);
	free(s);
	*socket_context = NULL;
}

/*
 * Cut the connections past their deadline: shutdown() wakes the
 * connection's thread, which sees the end of its input and closes it. The
 * socket cannot have been closed (and its number reused) meanwhile: MHD
 * says CLOSED, which takes slots_mu, before it closes the socket.
 */
static void reap(void)
{
	time_t now = mono_now();
	unsigned n = 0;

	pthread_mutex_lock(&slots_mu);
	for (struct slot *s = slots; s; s = s->next) {
		if (s->phase == P_BUSY || s->cut || now < s->deadline)
			continue;
		shutdown(s->fd, SHUT_RDWR);
		s->cut = true;
		n++;
	}
	pthread_mutex_unlock(&slots_mu);
	if (!n)
		return;
	pthread_mutex_lock(&mu);
	st.cut += n;
	pthread_mutex_unlock(&mu);
	log_debug("closed %u connections that sent no whole request in time "
		  "(--header-timeout, --body-timeout)", n);
}

struct conn {
	uint8_t *buf;
	size_t len, cap;	/* cap bytes are taken from the pool */
	size_t want;		/* Content-Length; 0: not given */
	unsigned status;	/* nonzero: answer this, whatever the body */
	long retry_after;
	char msg[256];
	bool gzipped;
};

static void conn_free_body(struct conn *cn)
{
	free(cn->buf);
	pool_give(&pool, cn->cap);
	cn->buf = NULL;
	cn->len = cn->cap = 0;
}

/* Room for n more body bytes; false sets the 503 to answer. */
static bool conn_grow(struct conn *cn, size_t n, size_t want)
{
	size_t cap = cn->cap ? cn->cap : 65536;
	uint8_t *nb;

	while (cap < cn->len + n)
		cap *= 2;
	if (want && cap > want && want >= cn->len + n)
		cap = want; /* Content-Length: no more than that */
	if (pool_take(&pool, cap - cn->cap)) {
		pthread_mutex_lock(&mu);
		st.busy++;
		pthread_mutex_unlock(&mu);
		cn->status = 503;
		cn->retry_after = RETRY_BUSY_S;
		snprintf(cn->msg, sizeof(cn->msg), "collector busy: too much buffered now, retry");
		return false;
	}
	nb = realloc(cn->buf, cap);
	if (!nb) {
		pool_give(&pool, cap - cn->cap);
		cn->status = 503;
		snprintf(cn->msg, sizeof(cn->msg), "out of memory");
		return false;
	}
	cn->buf = nb;
	cn->cap = cap;
	return true;
}

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
	const char *auth, *ctype, *cenc, *clen;
	unsigned long long n;
	char *end;

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
	clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
	if (clen) { /* (MHD has checked it is a number) */
		errno = 0;
		n = strtoull(clen, &end, 10);
		if (errno || n > opt.max_body) {
			cn->status = 413;
			snprintf(cn->msg, sizeof(cn->msg), "body of %s bytes, more than "
				 "--max-body-bytes (%zu)", clen, opt.max_body);
			return;
		}
		cn->want = (size_t)n;
		if (opt.max_buffered && cn->want > opt.max_buffered -
		    __atomic_load_n(&pool.used, __ATOMIC_RELAXED)) {
			cn->status = 503;
			cn->retry_after = RETRY_BUSY_S;
			snprintf(cn->msg, sizeof(cn->msg), "collector busy: too much buffered now, "
				 "retry");
		}
	}
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
	struct req r;

	(void)cls, (void)version;
	if (!cn) { /* the headers are in, no byte of the body is read yet */
		if (!strcmp(url, "/healthz") && !strcmp(method, "GET"))
			return reply(c, 200, "ok", 0);
		cn = calloc(1, sizeof(*cn));
		if (!cn)
			return MHD_NO;
		*con_cls = cn;
		check_headers(c, url, method, cn);
		if (cn->status) { /* answered now: the body is never read */
			if (cn->status == 503) {
				pthread_mutex_lock(&mu);
				st.busy++;
				pthread_mutex_unlock(&mu);
			}
			log_info("answered %u to %s %s: %s", cn->status, method, url, cn->msg);
			return reply(c, cn->status, cn->msg, cn->retry_after);
		}
		slot_set(slot_of(c), P_BODY);
		return MHD_YES;
	}
	if (*data_size) {
		/* after a verdict the rest of the body is read and thrown away */
		if (!cn->status && cn->len + *data_size > opt.max_body) {
			cn->status = 413;
			snprintf(cn->msg, sizeof(cn->msg), "body larger than --max-body-bytes (%zu)",
				 opt.max_body);
			conn_free_body(cn);
		}
		if (!cn->status && (cn->len + *data_size <= cn->cap ||
				    conn_grow(cn, *data_size, cn->want))) {
			memcpy(cn->buf + cn->len, data, *data_size);
			cn->len += *data_size;
		}
		if (cn->status == 503)
			conn_free_body(cn);
		*data_size = 0;
		return MHD_YES;
	}
	slot_set(slot_of(c), P_BUSY);
	if (cn->status) {
		log_info("answered %u to %s %s: %s", cn->status, method, url, cn->msg);
		return reply(c, cn->status, cn->msg, cn->retry_after);
	}
	if (stall("before"))
		return MHD_NO; /* a collector that hung: the batch is never processed */
	status = injected_fault(cn->msg, sizeof(cn->msg));
	if (status) {
		log_info("fault: answering %u (%s)", status, cn->msg);
		return reply(c, status, cn->msg, opt.retry_after);
	}
	request_init(&r, &opt.lim, &pool);
	status = process(&r, cn->buf, cn->len, cn->gzipped, &cn->retry_after);
	request_release(&r);
	conn_free_body(cn);
	if (status != 200)
		log_warn("answered %u: %s", status, r.msg);
	stall("after");
	return reply(c, status, r.msg, cn->retry_after);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct conn *cn = *con_cls;

	(void)cls, (void)toe;
	slot_set(slot_of(c), P_HEADERS); /* the next request's headers, if any */
	if (cn) {
		conn_free_body(cn);
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

/*
 * Batches already in the output file count as seen (a restarted collector).
 * A unit the last run did not finish (killed while writing: a partial
 * line, or a batch with fewer lines than it announced) is cut off, so the
 * agent's retry of that batch is written whole. Returns the batches marked,
 * or -errno.
 */
static int load_seen(const char *path)
{
	FILE *f = fopen(path, "r+");
	char *line = NULL, *p, id[DEDUP_ID_MAX + 1];
	unsigned long long seq = 0, recs, losses, skipped;
	uint64_t pending = 0;		/* lines the batch at `unit` still owes */
	off_t pos = 0, unit = 0;	/* where the next line and that batch begin */
	size_t cap = 0;
	ssize_t len;
	int n = 0, err = 0;

	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while ((len = getline(&line, &cap, f)) > 0 && line[len - 1] == '\n') {
		pos += len;
		if (pending) {
			if (!--pending && !dedup_mark(&seen, id, seq))
				n++;
			continue;
		}
		/* our own batch lines: {"type":"batch",...,"agent_id":"...",...,"seq":N,... */
		if (strncmp(line, "{\"type\":\"batch\",", 16))
			continue;
		p = strstr(line, ",\"agent_id\":\"");
		if (!p || sscanf(p, ",\"agent_id\":\"%64[0-9a-zA-Z_-]\"", id) != 1)
			continue;
		p = strstr(line, ",\"seq\":");
		if (!p || sscanf(p, ",\"seq\":%llu", &seq) != 1)
			continue;
		recs = losses = skipped = 0;
		if ((p = strstr(line, ",\"records\":")))
			sscanf(p, ",\"records\":%llu", &recs);
		if ((p = strstr(line, ",\"losses\":")))
			sscanf(p, ",\"losses\":%llu", &losses);
		if ((p = strstr(line, ",\"skipped\":")))
			sscanf(p, ",\"skipped\":%llu", &skipped);
		/* seen once its lines are all there */
		unit = pos - len;
		pending = recs - (skipped < recs ? skipped : recs) + losses;
		if (!pending && !dedup_mark(&seen, id, seq))
			n++;
	}
	if (pending || len > 0) { /* a run stopped while writing */
		off_t keep = pending ? unit : pos;
		struct stat sb;

		if (!fstat(fileno(f), &sb))
			log_warn("%s: cut off its last %lld bytes, an unfinished %s", path,
				 (long long)(sb.st_size - keep), pending ? "batch" : "line");
		if (ftruncate(fileno(f), keep))
			err = -errno;
	}
	free(line);
	fclose(f);
	return err ? err : n;
}

int main(int argc, char **argv)
{
	enum {
		O_FSYNC = 256, O_TOKEN, O_TLS_CERT, O_TLS_KEY, O_TLS_CA, O_MAX_BODY, O_FAIL_STATUS,
		O_FAIL_COUNT, O_FAIL_MSG, O_RETRY_AFTER, O_STALL_MS, O_STALL_COUNT, O_STALL_AFTER,
		O_REJECT_SEQ, O_SAVE, O_MAX_RAW, O_MAX_RECORDS, O_MAX_DECODE, O_MAX_BUFFERED,
		O_MAX_CONNS, O_MAX_CONNS_IP, O_HEADER_TIMEOUT, O_BODY_TIMEOUT, O_DEDUP_AGENTS,
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
			     MHD_OPTION_NOTIFY_CONNECTION, notify_connection, NULL,
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
			reap();
		else if (sig < 0 && errno != EINTR)
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
	log_info("answered 503 to %" PRIu64 " batches that could not be written and %" PRIu64
		 " while busy (buffered at most %zu bytes at once); closed %" PRIu64 " connections "
		 "past their deadlines; de-duplication forgot %" PRIu64 " agents and %" PRIu64
		 " ranges", st.write_failed, st.busy, pool.peak, st.cut, seen.forgotten_agents,
		 seen.forgotten_ranges);
	if (out != stdout)
		fclose(out);
	dedup_free(&seen);
	free(token);
	free(cert);
	free(key);
	free(ca);
	return 0;
}
