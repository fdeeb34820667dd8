// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* /healthz, /readyz and /metrics on libmicrohttpd's own thread. */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <microhttpd.h>

#include "agent/clock.h"
#include "agent/http/endpoints.h"
#include "agent/log.h"
#include "lib/metrics.h"
#include "lib/mhd_guard.h"

#define MAX_COMPONENTS 8

static struct MHD_Daemon *daemon_;
static pthread_t server;
static bool stopping;
static uint16_t bound_port;
static struct mhd_guard guard = MHD_GUARD_INIT(ENDPOINTS_HEADER_S, ENDPOINTS_ANSWER_S);
static uint64_t heartbeat_ns; /* CLOCK_MONOTONIC of the last beat; 0 before the loop runs */

static pthread_mutex_t health_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char name[32];
	bool ok;
	char detail[160];
} components[MAX_COMPONENTS];
static size_t n_components;

int endpoints_parse_addr(const char *addr, char *host, size_t host_sz, uint16_t *port)
{
	const char *colon, *h = addr, *p;
	size_t hlen;
	char *end;
	unsigned long v;

	if (!addr || !*addr)
		return -EINVAL;
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		h = addr + 1;
		hlen = (size_t)(close - h);
		p = close + 2;
		if (!hlen)
			return -EINVAL;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || memchr(addr, ':', (size_t)(colon - addr)))
			return -EINVAL; /* bare IPv6 needs brackets */
		hlen = (size_t)(colon - addr);
		p = colon + 1;
	}
	if (hlen >= host_sz || !*p || *p == '-' || *p == '+')
		return -EINVAL;
	errno = 0;
	v = strtoul(p, &end, 10);
	if (errno || *end || v > 65535)
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (uint16_t)v;
	return 0;
}

static int listen_on(const char *host, uint16_t port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL, *ai;
	char service[8];
	int fd = -1, err, one = 1, zero = 0;

	snprintf(service, sizeof(service), "%u", port);
	/* every address: one dual-stack IPv6 socket, or IPv4 where v6 is off */
	err = getaddrinfo(*host ? host : "::", service, &hints, &res);
	if (err && !*host)
		err = getaddrinfo("0.0.0.0", service, &hints, &res);
	if (err)
		return err == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
	err = -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6 && !*host)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
			break;
		err = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0 && !*host && err == -EAFNOSUPPORT)
		return listen_on("0.0.0.0", port);
	return fd >= 0 ? fd : err;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, char *body,
			     size_t len, bool owned, const char *ctype)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body,
					    owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!r) {
		if (owned)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned int status, const char *msg)
{
	char *copy = strdup(msg);

	if (!copy)
		return MHD_NO;
	return reply(c, status, copy, strlen(copy), true, "text/plain; charset=utf-8");
}

static enum MHD_Result healthz(struct MHD_Connection *c)
{
	uint64_t beat = __atomic_load_n(&heartbeat_ns, __ATOMIC_RELAXED), now, age;
	char msg[128];

	if (!beat)
		return text(c, MHD_HTTP_OK, "ok: starting\n");
	now = clock_now_ns(CLOCK_MONOTONIC);
	age = now > beat ? now - beat : 0;
	if (age > (uint64_t)ENDPOINTS_STALL_S * 1000000000ull) {
		snprintf(msg, sizeof(msg), "stalled: the event loop has not run for %llu s\n",
			 (unsigned long long)(age / 1000000000ull));
		return text(c, MHD_HTTP_SERVICE_UNAVAILABLE, msg);
	}
	return text(c, MHD_HTTP_OK, "ok\n");
}

static enum MHD_Result readyz(struct MHD_Connection *c)
{
	char buf[MAX_COMPONENTS * 200 + 64];
	bool ok = health_report(buf, sizeof(buf));

	return text(c, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, buf);
}

static enum MHD_Result metrics(struct MHD_Connection *c)
{
	size_t len = 0;
	char *body = metrics_render(&len);

	if (!body)
		return text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	return reply(c, MHD_HTTP_OK, body, len, true, "text/plain; version=0.0.4; charset=utf-8");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	(void)cls;
	(void)version;
	(void)upload_data;
	(void)req_cls;
	mhd_guard_phase(c, MHD_GUARD_BODY); /* the headers are in: now the answer is due */
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
	if (*upload_data_size)
		return text(c, MHD_HTTP_BAD_REQUEST, "no body expected\n");
	if (strcmp(url, "/healthz") == 0)
		return healthz(c);
	if (strcmp(url, "/readyz") == 0)
		return readyz(c);
	if (strcmp(url, "/metrics") == 0)
		return metrics(c);
	return text(c, MHD_HTTP_NOT_FOUND, "not found: try /healthz, /readyz or /metrics\n");
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	pr_debug("http: %s", buf);
}

/* MHD's loop and the deadlines on one thread: nothing else touches its connections. */
static void *serve_main(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&stopping, __ATOMIC_RELAXED)) {
		MHD_run_wait(daemon_, 250);
		if (mhd_guard_reap(&guard))
			pr_debug("http: cut connections whose request was not in within %u s",
				 ENDPOINTS_HEADER_S);
	}
	return NULL;
}

int endpoints_start(const char *addr)
{
	sigset_t all, old;
	char host[256];
	uint16_t port;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd, err;

	err = endpoints_parse_addr(addr, host, sizeof(host), &port);
	if (err)
		return err;
	fd = listen_on(host, port);
	if (fd < 0)
		return fd;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		bound_port = ntohs(ss.ss_family == AF_INET6 ?
					   ((struct sockaddr_in6 *)&ss)->sin6_port :
					   ((struct sockaddr_in *)&ss)->sin_port);
	/*
	 * Clients that hold connections without finishing a request (slowloris)
	 * must not lock out the probes and the scraper: one address gets a
	 * share of the connections, and a request's headers are due within
	 * ENDPOINTS_HEADER_S of the connection (or its last request), bytes
	 * or not.
	 */
	daemon_ = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, NULL,
				   MHD_OPTION_LISTEN_SOCKET, fd,
				   MHD_OPTION_CONNECTION_LIMIT, ENDPOINTS_MAX_CONNS,
				   MHD_OPTION_PER_IP_CONNECTION_LIMIT, ENDPOINTS_MAX_CONNS_PER_IP,
				   MHD_OPTION_CONNECTION_TIMEOUT, 10u,
				   MHD_OPTION_NOTIFY_CONNECTION, mhd_guard_notify, &guard,
				   MHD_OPTION_NOTIFY_COMPLETED, mhd_guard_completed, &guard,
				   MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
	if (!daemon_) {
		err = errno;
		close(fd);
		bound_port = 0;
		return -(err ? err : EIO);
	}
	stopping = false;
	/* the server thread must never take SIGINT/SIGTERM: the loop reads them */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	err = pthread_create(&server, NULL, serve_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		MHD_stop_daemon(daemon_);
		daemon_ = NULL;
		bound_port = 0;
		return -err;
	}
	return 0;
}

uint16_t endpoints_port(void)
{
	return bound_port;
}

void endpoints_stop(void)
{
	if (daemon_) {
		__atomic_store_n(&stopping, true, __ATOMIC_RELAXED);
		pthread_join(server, NULL);
		MHD_stop_daemon(daemon_);
	}
	daemon_ = NULL;
	bound_port = 0;
}

void endpoints_heartbeat(void)
{
	__atomic_store_n(&heartbeat_ns, clock_now_ns(CLOCK_MONOTONIC), __ATOMIC_RELAXED);
}

void health_set(const char *component, bool ok, const char *fmt, ...)
{
	char detail[sizeof(components[0].detail)];
	va_list ap;
	size_t i;

	pthread_mutex_lock(&health_lock);
	for (i = 0; i < n_components; i++)
		if (strcmp(components[i].name, component) == 0)
			break;
	if (i == n_components) {
		if (n_components == MAX_COMPONENTS) {
			pthread_mutex_unlock(&health_lock);
			return;
		}
		snprintf(components[i].name, sizeof(components[i].name), "%s", component);
		n_components++;
	}
	components[i].ok = ok;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	/* one line each: a detail from outside must not forge another component's */
	log_escape(components[i].detail, sizeof(components[i].detail), detail);
	pthread_mutex_unlock(&health_lock);
}

bool health_report(char *buf, size_t n)
{
	bool ready = true;
	size_t off = 0;

	pthread_mutex_lock(&health_lock);
	if (!n_components)
		ready = false;
	for (size_t i = 0; i < n_components; i++) {
		int w = snprintf(buf + off, n - off, "%s %s: %s\n",
				 components[i].ok ? "ok  " : "FAIL", components[i].name,
				 components[i].detail);

		ready &= components[i].ok;
		if (w > 0 && (size_t)w < n - off)
			off += (size_t)w;
	}
	pthread_mutex_unlock(&health_lock);
	if (!off)
		snprintf(buf, n, "FAIL starting: nothing reported yet\n");
	return ready;
}

void health_reset(void)
{
	pthread_mutex_lock(&health_lock);
	n_components = 0;
	pthread_mutex_unlock(&health_lock);
}
