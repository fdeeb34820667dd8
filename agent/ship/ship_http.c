// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "agent/attrib/bearer.h"
#include "agent/ship/ship_http.h"
#include "lib/version.h"

enum http_verdict http_classify(bool transport_ok, long status)
{
	if (!transport_ok)
		return HTTP_RETRY;
	if (status >= 200 && status < 300)
		return HTTP_SENT;
	if (status >= 500 || status == 408 || status == 429)
		return HTTP_RETRY;
	/* 1xx/3xx as a final answer are as unusable as a 4xx */
	return HTTP_REJECT;
}

enum http_verdict http_classify_otlp(bool transport_ok, long status)
{
	if (!transport_ok)
		return HTTP_RETRY;
	if (status >= 200 && status < 300)
		return HTTP_SENT;
	if (status == 429 || status == 502 || status == 503 || status == 504)
		return HTTP_RETRY;
	return HTTP_REJECT;
}

uint64_t backoff_ms(unsigned attempt, uint32_t min_ms, uint32_t max_ms, uint32_t rnd)
{
	uint64_t d = min_ms ? min_ms : 1;

	for (unsigned i = 0; i < attempt && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	/* equal jitter: [d/2, d], so agents that failed together spread out */
	return d - d / 2 + (d / 2 ? rnd % (d / 2 + 1) : 0);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct http_client *h = ctx;
	size_t n = size * nmemb, room = sizeof(h->resp) - 1 - h->resp_len;

	if (room) {
		size_t k = n < room ? n : room;

		memcpy(h->resp + h->resp_len, data, k);
		h->resp_len += k;
	}
	return n;
}

static int on_progress(void *ctx, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
	struct { int (*fn)(void *); void *ctx; } *p = ctx;

	(void)dlt, (void)dln, (void)ult, (void)uln;
	return p->fn ? p->fn(p->ctx) : 0;
}

/* Headers, with the token read again when its file changed (tokens get rotated). -errno. */
static int refresh_headers(struct http_client *h)
{
	static const char *const fixed[] = {
		"Content-Type: application/x-protobuf",
		"Content-Encoding: gzip",
		"Expect:", /* no 100-continue round trip for large batches */
	};
	struct curl_slist *l = NULL, *n;
	struct stat st;
	int err;

	if (h->cfg->token_file) {
		if (stat(h->cfg->token_file, &st))
			return -errno;
		if (h->hdrs && st.st_size == h->token_size &&
		    st.st_mtim.tv_sec == h->token_mtime.tv_sec &&
		    st.st_mtim.tv_nsec == h->token_mtime.tv_nsec)
			return 0;
	} else if (h->hdrs) {
		return 0;
	}
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		n = curl_slist_append(l, fixed[i]);
		if (!n) {
			curl_slist_free_all(l);
			return -ENOMEM;
		}
		l = n;
	}
	for (size_t i = 0; i < h->cfg->n_headers; i++) {
		n = curl_slist_append(l, h->cfg->headers[i]);
		if (!n) {
			curl_slist_free_all(l);
			return -ENOMEM;
		}
		l = n;
	}
	if (h->cfg->token_file) {
		err = bearer_header(h->cfg->token_file, &l);
		if (err) {
			curl_slist_free_all(l);
			return err;
		}
		h->token_mtime = st.st_mtim;
		h->token_size = st.st_size;
	}
	curl_slist_free_all(h->hdrs);
	h->hdrs = l;
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, h->hdrs);
	return 0;
}

int http_init(struct http_client *h, const struct ship_config *cfg)
{
	memset(h, 0, sizeof(*h));
	h->cfg = cfg;
	h->curl = curl_easy_init();
	if (!h->curl)
		return -ENOMEM;
	curl_easy_setopt(h->curl, CURLOPT_URL, cfg->url);
	curl_easy_setopt(h->curl, CURLOPT_POST, 1L);
	curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L); /* we are a thread */
	curl_easy_setopt(h->curl, CURLOPT_USERAGENT, "podsnoop/" PODSNOOP_VERSION);
	curl_easy_setopt(h->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h->curl, CURLOPT_ERRORBUFFER, h->errbuf);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, h);
	curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	if (cfg->ca_file)
		curl_easy_setopt(h->curl, CURLOPT_CAINFO, cfg->ca_file);
	if (cfg->cert_file)
		curl_easy_setopt(h->curl, CURLOPT_SSLCERT, cfg->cert_file);
	if (cfg->key_file)
		curl_easy_setopt(h->curl, CURLOPT_SSLKEY, cfg->key_file);
	return 0;
}

void http_free(struct http_client *h)
{
	if (h->curl)
		curl_easy_cleanup(h->curl);
	curl_slist_free_all(h->hdrs);
	memset(h, 0, sizeof(*h));
}

/* Keep a one-line, printable version of what the collector said. */
static void body_msg(const char *in, size_t len, char *out, size_t size)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 1 < size; i++) {
		unsigned char c = (unsigned char)in[i];

		out[o++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
	}
	while (o && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

void http_post(struct http_client *h, const void *body, size_t len, uint32_t timeout_ms,
	       int (*progress)(void *ctx), void *ctx, struct http_result *r)
{
	struct { int (*fn)(void *); void *ctx; } pctx = { progress, ctx };
	curl_off_t retry_after = 0;
	CURLcode cr;
	int err;

	memset(r, 0, sizeof(*r));
	err = refresh_headers(h);
	if (err) {
		/* a token being rotated or not mounted yet: try again later */
		r->verdict = HTTP_RETRY;
		snprintf(r->msg, sizeof(r->msg), "cannot read --collector-token-file %s: %s",
			 h->cfg->token_file, bearer_strerror(err));
		return;
	}
	h->resp_len = 0;
	h->errbuf[0] = '\0';
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(h->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(h->curl, CURLOPT_XFERINFODATA, &pctx);
	cr = curl_easy_perform(h->curl);
	curl_easy_setopt(h->curl, CURLOPT_XFERINFODATA, NULL);
	if (cr == CURLE_ABORTED_BY_CALLBACK) {
		r->aborted = true;
		r->verdict = HTTP_RETRY;
		snprintf(r->msg, sizeof(r->msg), "stopped: flush time is up");
		return;
	}
	if (cr != CURLE_OK) {
		r->verdict = HTTP_RETRY;
		snprintf(r->msg, sizeof(r->msg), "%s", h->errbuf[0] ? h->errbuf :
			 curl_easy_strerror(cr));
		return;
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &r->status);
	r->verdict = (h->classify ? h->classify : http_classify)(true, r->status);
	if (curl_easy_getinfo(h->curl, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK &&
	    retry_after > 0)
		r->retry_after_ms = (uint64_t)retry_after * 1000u;
	body_msg(h->resp, h->resp_len, r->msg, sizeof(r->msg));
	r->body = h->resp;
	r->body_len = h->resp_len;
}
