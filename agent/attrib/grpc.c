// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>

#include "agent/attrib/grpc.h"

const char *grpc_code_name(int code)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
		"UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
	};

	if (code < 0)
		return "NO_STATUS";
	return (size_t)code < sizeof(names) / sizeof(names[0]) ? names[code] : "UNKNOWN_CODE";
}

void grpc_frame_header(uint8_t hdr[5], size_t len)
{
	hdr[0] = 0; /* not compressed */
	hdr[1] = (uint8_t)(len >> 24);
	hdr[2] = (uint8_t)(len >> 16);
	hdr[3] = (uint8_t)(len >> 8);
	hdr[4] = (uint8_t)len;
}

int grpc_unframe(const uint8_t *buf, size_t len, const uint8_t **msg, size_t *msg_len)
{
	uint32_t n;

	if (len < 5)
		return -EPROTO;
	if (buf[0] != 0) /* compressed: we never offer an encoding, so never expected */
		return -EPROTO;
	n = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 | buf[4];
	if (n != len - 5) /* unary: exactly one message */
		return -EPROTO;
	*msg = buf + 5;
	*msg_len = n;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void grpc_percent_decode(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
			*w++ = (char)(hexval(s[1]) << 4 | hexval(s[2]));
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

void grpc_header_line(const char *line, size_t n, struct grpc_status *st)
{
	char val[sizeof(st->message)];
	const char *colon = memchr(line, ':', n);
	size_t klen, vlen;
	const char *v;

	if (!colon)
		return;
	klen = (size_t)(colon - line);
	v = colon + 1;
	while (v < line + n && (*v == ' ' || *v == '\t'))
		v++;
	vlen = (size_t)(line + n - v);
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
		vlen--;
	if (vlen >= sizeof(val))
		vlen = sizeof(val) - 1;
	memcpy(val, v, vlen);
	val[vlen] = '\0';
	if (klen == 11 && strncasecmp(line, "grpc-status", 11) == 0) {
		char *end;
		long code = strtol(val, &end, 10);

		st->code = (end != val && !*end && code >= 0 && code < 1000) ? (int)code : 2;
	} else if (klen == 12 && strncasecmp(line, "grpc-message", 12) == 0) {
		grpc_percent_decode(val);
		snprintf(st->message, sizeof(st->message), "%s", val);
	}
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *priv)
{
	struct grpc_conn *c = priv;

	/* libcurl hands HTTP/2 trailers to the header callback too */
	grpc_header_line(data, size * nmemb, c->st);
	return size * nmemb;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *priv)
{
	struct grpc_conn *c = priv;
	size_t n = size * nmemb;

	if (c->len + n > GRPC_MAX_RESPONSE)
		return 0; /* abort: CURLE_WRITE_ERROR */
	if (c->len + n > c->cap) {
		size_t cap = c->cap ? c->cap : 16384;
		uint8_t *b;

		while (cap < c->len + n)
			cap *= 2;
		b = realloc(c->buf, cap);
		if (!b)
			return 0;
		c->buf = b;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, data, n);
	c->len += n;
	return n;
}

int grpc_open(struct grpc_conn *c, const char *socket, long timeout_ms)
{
	static const char *const hdrs[] = {
		"Content-Type: application/grpc", "TE: trailers", "User-Agent: podsnoop",
		"Expect:", /* no 100-continue dance */
	};
	struct curl_slist *l = NULL, *t;
	CURL *h;

	memset(c, 0, sizeof(*c));
	if (strlen(socket) >= sizeof(c->socket))
		return -ENAMETOOLONG;
	strcpy(c->socket, socket);
	c->timeout_ms = timeout_ms;
	h = curl_easy_init();
	if (!h)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		t = curl_slist_append(l, hdrs[i]);
		if (!t) {
			curl_slist_free_all(l);
			curl_easy_cleanup(h);
			return -ENOMEM;
		}
		l = t;
	}
	c->curl = h;
	c->headers = l;
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->socket);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM */
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
	/*
	 * libcurl 7.88 fails every request on a reused prior-knowledge HTTP/2
	 * connection ("Error in the HTTP2 framing layer", curl issue 10634,
	 * fixed in 7.89): one connection per call there. Unix sockets make that
	 * cheap.
	 */
	if (curl_version_info(CURLVERSION_NOW)->version_num < 0x075900)
		curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	return 0;
}

void grpc_close(struct grpc_conn *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	curl_slist_free_all(c->headers);
	free(c->buf);
	memset(c, 0, sizeof(*c));
}

static int curl_errno(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT: return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT: return -ETIMEDOUT;
	case CURLE_OUT_OF_MEMORY: return -ENOMEM;
	default: return -EIO;
	}
}

/* A reused connection the server closed (restart): worth one fresh attempt. */
static bool stale_connection(CURLcode rc)
{
	return rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING ||
	       rc == CURLE_HTTP2 || rc == CURLE_HTTP2_STREAM;
}

int grpc_call(struct grpc_conn *c, const char *path, const uint8_t *req, size_t req_len,
	      const uint8_t **msg, size_t *msg_len, struct grpc_status *st)
{
	char url[256];
	uint8_t *body;
	CURLcode rc;
	long http = 0;
	int err, attempt = 0;

	st->code = -1;
	st->message[0] = '\0';
	if (snprintf(url, sizeof(url), "http://localhost%s", path) >= (int)sizeof(url))
		return -ENAMETOOLONG;
	body = malloc(req_len + 5);
	if (!body)
		return -ENOMEM;
	grpc_frame_header(body, req_len);
	if (req_len)
		memcpy(body + 5, req, req_len);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)(req_len + 5));
	do {
		c->len = 0;
		c->st = st;
		st->code = -1;
		st->message[0] = '\0';
		c->errbuf[0] = '\0';
		rc = curl_easy_perform(c->curl);
	} while (rc != CURLE_OK && stale_connection(rc) && attempt++ == 0);
	free(body);
	if (rc != CURLE_OK) {
		long os_errno = 0;

		st->code = -1;
		curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
		if (rc == CURLE_COULDNT_CONNECT && os_errno > 0) {
			snprintf(st->message, sizeof(st->message), "cannot connect: %s",
				 strerror((int)os_errno));
			return -(int)os_errno;
		}
		snprintf(st->message, sizeof(st->message), "%s",
			 c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
		return curl_errno(rc);
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &http);
	if (st->code < 0) {
		snprintf(st->message, sizeof(st->message),
			 "no grpc-status in the answer (HTTP %ld): not a gRPC server?", http);
		return -EPROTO;
	}
	if (st->code != 0)
		return -EREMOTEIO;
	err = grpc_unframe(c->buf, c->len, msg, msg_len);
	if (err)
		snprintf(st->message, sizeof(st->message), "malformed gRPC message (%zu bytes)",
			 c->len);
	return err;
}
