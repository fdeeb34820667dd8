// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <cjson/cJSON.h>

#include "agent/attrib/bearer.h"
#include "agent/clock.h"
#include "agent/attrib/kubelet.h"
#include "agent/log.h"

/*
 * The parse budget: every allocation of one kubelet_parse (cJSON's through
 * its hooks, installed once; the pod arrays directly) is counted against it
 * on the parsing thread. Other cJSON users see plain malloc.
 */
static __thread struct {
	bool on, exceeded;
	size_t left;
} budget;

static void *counted_malloc(size_t n)
{
	if (budget.on) {
		size_t cost = n + 16; /* malloc's own header, about */

		if (cost > budget.left) {
			budget.exceeded = true;
			return NULL;
		}
		budget.left -= cost;
	}
	return malloc(n);
}

static void *counted_calloc(size_t n, size_t size)
{
	void *p;

	if (size && n > SIZE_MAX / size)
		return NULL;
	p = counted_malloc(n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}

static void install_hooks(void)
{
	cJSON_Hooks h = { .malloc_fn = counted_malloc, .free_fn = free };

	cJSON_InitHooks(&h);
}

static const char *str_item(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) && v->valuestring ? v->valuestring : NULL;
}

/* containerID "containerd://<id>" of a status and of its previous instance */
static size_t add_ids(const cJSON *statuses, struct kl_container *out, size_t at, size_t cap)
{
	const cJSON *s;

	cJSON_ArrayForEach(s, statuses) {
		const char *name = str_item(s, "name");
		const cJSON *last = cJSON_GetObjectItemCaseSensitive(s, "lastState");
		const char *ids[2] = {
			str_item(s, "containerID"),
			str_item(cJSON_GetObjectItemCaseSensitive(last, "terminated"), "containerID"),
		};

		if (!name)
			continue;
		for (int i = 0; i < 2; i++) {
			const char *rt;

			if (!ids[i] || at >= cap ||
			    cg_parse_runtime_id(ids[i], out[at].id, &rt) != 0)
				continue;
			out[at].name = name;
			out[at].runtime = rt ? rt : "";
			at++;
		}
	}
	return at;
}

static int parse_pod(const cJSON *item, struct kl_pod *p)
{
	static const char *const lists[] = { "containerStatuses", "initContainerStatuses",
					     "ephemeralContainerStatuses" };
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(item, "metadata");
	const cJSON *status = cJSON_GetObjectItemCaseSensitive(item, "status");
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(md, "labels"), *l;
	size_t cap = 0;

	memset(p, 0, sizeof(*p));
	p->uid = str_item(md, "uid");
	p->name = str_item(md, "name");
	p->namespace_ = str_item(md, "namespace");
	if (!p->uid || !p->name || !p->namespace_)
		return -EINVAL;
	if (cJSON_IsObject(labels) && cJSON_GetArraySize(labels) > 0) {
		p->labels = counted_calloc((size_t)cJSON_GetArraySize(labels), sizeof(*p->labels));
		if (!p->labels)
			return -ENOMEM;
		cJSON_ArrayForEach(l, labels) {
			if (!cJSON_IsString(l) || !l->string)
				continue;
			p->labels[p->n_labels].key = l->string;
			p->labels[p->n_labels].value = l->valuestring;
			p->n_labels++;
		}
	}
	for (int i = 0; i < 3; i++) {
		const cJSON *arr = cJSON_GetObjectItemCaseSensitive(status, lists[i]);

		if (cJSON_IsArray(arr))
			cap += 2 * (size_t)cJSON_GetArraySize(arr);
	}
	if (cap) {
		p->containers = counted_calloc(cap, sizeof(*p->containers));
		if (!p->containers)
			return -ENOMEM;
		for (int i = 0; i < 3; i++) {
			const cJSON *arr = cJSON_GetObjectItemCaseSensitive(status, lists[i]);

			if (cJSON_IsArray(arr))
				p->n_containers = add_ids(arr, p->containers, p->n_containers, cap);
		}
	}
	return 0;
}

void kubelet_podlist_free(struct kl_podlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->pods[i].labels);
		free(l->pods[i].containers);
	}
	free(l->pods);
	cJSON_Delete(l->doc);
	memset(l, 0, sizeof(*l));
}

static int parse(const char *json, size_t len, struct kl_podlist *out, char *err, size_t errlen)
{
	cJSON *doc, *items, *item;
	const char *kind;
	int n, rc;

	doc = cJSON_ParseWithLength(json, len);
	if (!doc && budget.exceeded)
		return -ENOMEM;
	if (!doc) {
		const char *at = cJSON_GetErrorPtr();

		snprintf(err, errlen, "not JSON (error near byte %td of %zu)",
			 at && at >= json && at <= json + len ? at - json : (ptrdiff_t)-1, len);
		return -EINVAL;
	}
	kind = str_item(doc, "kind");
	items = cJSON_GetObjectItemCaseSensitive(doc, "items");
	if ((kind && strcmp(kind, "PodList") != 0) || !cJSON_IsArray(items)) {
		snprintf(err, errlen, "not a PodList (kind %s, %s)", kind ? kind : "missing",
			 cJSON_IsArray(items) ? "items present" : "no items array");
		cJSON_Delete(doc);
		return -EINVAL;
	}
	out->doc = doc;
	n = cJSON_GetArraySize(items);
	if (n > 0) {
		out->pods = counted_calloc((size_t)n, sizeof(*out->pods));
		if (!out->pods) {
			kubelet_podlist_free(out);
			snprintf(err, errlen, "out of memory for %d pods", n);
			return -ENOMEM;
		}
	}
	cJSON_ArrayForEach(item, items) {
		rc = parse_pod(item, &out->pods[out->n]);
		if (rc == -ENOMEM) {
			out->n++; /* free what it holds */
			kubelet_podlist_free(out);
			snprintf(err, errlen, "out of memory");
			return rc;
		}
		if (rc) {
			free(out->pods[out->n].labels);
			free(out->pods[out->n].containers);
			out->skipped++;
			continue;
		}
		out->n++;
	}
	return 0;
}

int kubelet_parse(const char *json, size_t len, struct kl_podlist *out, char *err, size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	int rc;

	pthread_once(&once, install_hooks);
	memset(out, 0, sizeof(*out));
	budget.on = true;
	budget.exceeded = false;
	budget.left = KUBELET_PARSE_BUDGET;
	rc = parse(json, len, out, err, errlen);
	budget.on = false;
	if (rc == -ENOMEM && budget.exceeded) {
		snprintf(err, errlen, "parsing its %zu bytes would take more than %u MiB "
			 "(a pod list takes about 5 times its size): refused", len,
			 KUBELET_PARSE_BUDGET >> 20);
		rc = -E2BIG;
	}
	return rc;
}

/* a buffer larger than this is freed after each fetch */
#define KUBELET_KEEP_BUFFER (1u << 20)

static size_t on_body(char *data, size_t size, size_t nmemb, void *priv)
{
	struct kubelet_client *k = priv;
	size_t n = size * nmemb;

	if (k->len + n + 1 > KUBELET_MAX_RESPONSE) {
		k->too_big = true;
		return 0;
	}
	if (k->len + n + 1 > k->cap) {
		size_t cap = k->cap ? k->cap : 65536;
		char *b;

		while (cap < k->len + n + 1)
			cap *= 2;
		b = realloc(k->buf, cap);
		if (!b)
			return 0;
		k->buf = b;
		k->cap = cap;
	}
	memcpy(k->buf + k->len, data, n);
	k->len += n;
	return n;
}

int kubelet_open(struct kubelet_client *k, const char *base, const char *token_file,
		 const char *ca_file, bool insecure, long timeout_ms)
{
	size_t n = strlen(base);
	CURL *h;

	memset(k, 0, sizeof(*k));
	while (n && base[n - 1] == '/')
		n--;
	if (n >= 5 && strncmp(base + n - 5, "/pods", 5) == 0)
		n -= 5;
	if (snprintf(k->fetch_url, sizeof(k->fetch_url), "%.*s/pods", (int)n, base) >=
	    (int)sizeof(k->fetch_url))
		return -ENAMETOOLONG;
	log_url(k->fetch_url, k->url, sizeof(k->url));
	snprintf(k->token_file, sizeof(k->token_file), "%s",
		 token_file ? token_file : KUBELET_TOKEN_FILE);
	/* a given token file must hold a token now: empty, no request would carry one */
	if (token_file) {
		int err = bearer_check(token_file);

		if (err) {
			snprintf(k->err, sizeof(k->err), "--kubelet-token %s: %s", token_file,
				 bearer_strerror(err));
			return err;
		}
	}
	h = curl_easy_init();
	if (!h)
		return -ENOMEM;
	k->curl = h;
	curl_easy_setopt(h, CURLOPT_URL, k->fetch_url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, k);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* gzip if offered */
	/* refused at the headers when the length is given; on_body counts the rest */
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)KUBELET_MAX_RESPONSE - 1);
	if (!ca_file && access(KUBELET_CA_FILE, R_OK) == 0)
		ca_file = KUBELET_CA_FILE;
	if (ca_file && *ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, ca_file);
	if (insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return 0;
}

void kubelet_close(struct kubelet_client *k)
{
	if (k->curl)
		curl_easy_cleanup(k->curl);
	free(k->buf);
	memset(k, 0, sizeof(*k));
}

/* "Authorization: Bearer <token>", read anew each time: projected tokens rotate. */
static int auth_header(struct kubelet_client *k, struct curl_slist **hdrs)
{
	int err;

	*hdrs = NULL;
	if (!k->token_file[0])
		return 0;
	err = bearer_header(k->token_file, hdrs);
	/* the default file is optional (read-only port, tests); a given one is not */
	if (err == -ENOENT && strcmp(k->token_file, KUBELET_TOKEN_FILE) == 0)
		return 0;
	if (err)
		snprintf(k->err, sizeof(k->err), "kubelet token %s: %s", k->token_file,
			 bearer_strerror(err));
	return err;
}

int kubelet_fetch(struct kubelet_client *k, struct kl_podlist *out)
{
	uint64_t t0 = clock_now_ns(CLOCK_MONOTONIC), dt;
	struct curl_slist *hdrs;
	char perr[256];
	long http = 0;
	CURLcode rc;
	int err;

	memset(out, 0, sizeof(*out));
	k->calls++;
	err = auth_header(k, &hdrs);
	if (err) {
		k->errors++;
		return err;
	}
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, hdrs);
	k->len = 0;
	k->too_big = false;
	rc = curl_easy_perform(k->curl);
	curl_easy_setopt(k->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	dt = clock_now_ns(CLOCK_MONOTONIC) - t0;
	k->total_ns += dt;
	if (dt > k->max_ns)
		k->max_ns = dt;
	k->last_bytes = k->len;
	if (k->too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		k->errors++;
		snprintf(k->err, sizeof(k->err), "kubelet %s: answer over %u MiB: refused (a node's "
			 "pod list is far smaller)", k->url, KUBELET_MAX_RESPONSE >> 20);
		return -E2BIG;
	}
	if (rc != CURLE_OK) {
		k->errors++;
		snprintf(k->err, sizeof(k->err), "kubelet %s: %s%s", k->url, curl_easy_strerror(rc),
			 rc == CURLE_WRITE_ERROR ? " (out of memory)" : "");
		return rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
	}
	curl_easy_getinfo(k->curl, CURLINFO_RESPONSE_CODE, &http);
	if (http != 200) {
		k->errors++;
		snprintf(k->err, sizeof(k->err), "kubelet %s: HTTP %ld%s", k->url, http,
			 http == 401 || http == 403 ? " (token not accepted: needs nodes/proxy "
						      "or nodes/pods get)" : "");
		return http == 401 || http == 403 ? -EACCES : -EIO;
	}
	if (!k->len) {
		/* no body callback ran: there is no buffer either */
		k->errors++;
		snprintf(k->err, sizeof(k->err), "kubelet %s: empty answer (HTTP 200, no body): "
			 "not a kubelet's /pods", k->url);
		return -EINVAL;
	}
	k->buf[k->len] = '\0';
	err = kubelet_parse(k->buf, k->len, out, perr, sizeof(perr));
	/* the tree holds copies: a large body's buffer goes back until the next fetch */
	if (k->cap > KUBELET_KEEP_BUFFER) {
		free(k->buf);
		k->buf = NULL;
		k->cap = 0;
	}
	if (err) {
		k->errors++;
		snprintf(k->err, sizeof(k->err), "kubelet %.400s: %.300s", k->url, perr);
	}
	return err;
}
