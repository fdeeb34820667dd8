// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The collector's HTTP side (collector.h): libmicrohttpd's callbacks (a
 * thread per connection), the checks a request's line and headers allow
 * before its body is read, the body gathered within the shared pool, and
 * the deadlines the main thread enforces.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "lib/metrics.h"
#include "collector/collector.h"

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

void http_notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
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
void http_reap(void)
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

/* Counters only, no record data: served without the token, as /healthz. */
static enum MHD_Result metrics(struct MHD_Connection *c)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	size_t len = 0;
	char *body = metrics_render(&len);

	if (!body)
		return reply(c, 500, "out of memory", 0);
	r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	ret = MHD_queue_response(c, 200, r);
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

enum MHD_Result http_handler(void *cls, struct MHD_Connection *c, const char *url,
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
		if (!strcmp(url, "/metrics") && !strcmp(method, "GET"))
			return metrics(c);
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

void http_completed(void *cls, struct MHD_Connection *c, void **con_cls,
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
