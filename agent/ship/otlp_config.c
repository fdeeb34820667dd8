// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * --otlp-* flags and the exporter variables of the OpenTelemetry
 * specification. Every bad value is a one-line error (err_fn), never a
 * silent default: an exporter pointed at the wrong place loses everything.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/log.h"
#include "agent/ship/ship_config.h"

/* getenv of the logs variable (OTEL_EXPORTER_OTLP_LOGS_x), else the generic one */
static const char *env2(const char *x, const char **which)
{
	static char name[80];
	const char *v;

	snprintf(name, sizeof(name), "OTEL_EXPORTER_OTLP_LOGS_%s", x);
	v = getenv(name);
	if (!v || !*v) {
		snprintf(name, sizeof(name), "OTEL_EXPORTER_OTLP_%s", x);
		v = getenv(name);
	}
	*which = name;
	return v && *v ? v : NULL;
}

/* An http(s)://host... URL, printable, without spaces. */
static bool url_ok(const char *u)
{
	const char *host = strstr(u, "://");

	if ((strncmp(u, "http://", 7) && strncmp(u, "https://", 8)) || !host[3] ||
	    strchr("/?#:", host[3]))
		return false;
	for (const char *p = u; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return false;
	return strlen(u) < 2000;
}

/* base + "/v1/..." as the specification appends signal paths */
static char *with_path(const char *base, const char *path)
{
	size_t n = strlen(base);
	char *u = malloc(n + strlen(path) + 1);

	if (!u)
		return NULL;
	memcpy(u, base, n);
	while (n && u[n - 1] == '/')
		n--;
	strcpy(u + n, path);
	return u;
}

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* s[0..n) trimmed of blanks, percent-decoded when decode; NULL on a bad escape. */
static char *piece(const char *s, size_t n, bool decode)
{
	char *out, *o;

	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	out = o = malloc(n + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (decode && s[i] == '%') {
			int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
			int lo = hi >= 0 ? hexval((unsigned char)s[i + 2]) : -1;

			if (hi < 0 || lo < 0) {
				free(out);
				return NULL;
			}
			*o++ = (char)(hi << 4 | lo);
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* RFC 9110 token characters: what a header name may be made of */
static bool token_ok(const char *k)
{
	if (!*k)
		return false;
	for (; *k; k++)
		if (!(((unsigned char)*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
		      (*k >= '0' && *k <= '9') || strchr("!#$%&'*+-.^_`|~", *k)))
			return false;
	return true;
}

/* a header value may hold no control characters (no CR/LF: no header injection) */
static bool value_ok(const char *v)
{
	for (; *v; v++)
		if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f)
			return false;
	return true;
}

/* One "K=V" into "K: V" in oc->headers; what: the flag or variable, for errors. */
static int add_header(struct otlp_config *oc, const char *kv, size_t n, bool decode,
		      const char *what, ship_err_fn err_fn)
{
	const char *eq = memchr(kv, '=', n);
	char *k, *v, *line;
	int err = 0;

	if (!eq)
		return err_fn("%s: '%.*s' is not KEY=VALUE", what, (int)n, kv);
	k = piece(kv, (size_t)(eq - kv), false);
	v = piece(eq + 1, n - (size_t)(eq - kv) - 1, decode);
	if (!k || !v)
		err = err_fn("%s: '%.*s': a bad %%-escape", what, (int)n, kv);
	else if (!token_ok(k))
		err = err_fn("%s: '%s' is not a header name", what, k);
	else if (!value_ok(v))
		err = err_fn("%s: the value of %s holds control characters", what, k);
	else if (oc->n_headers >= OTLP_MAX_HEADERS)
		err = err_fn("%s: more than %d headers", what, OTLP_MAX_HEADERS);
	if (!err) {
		line = malloc(strlen(k) + strlen(v) + 3);
		if (!line)
			err = -ENOMEM;
		else
			sprintf(line, "%s: %s", k, v);
		if (line)
			oc->headers[oc->n_headers++] = line;
	}
	free(k);
	free(v);
	return err;
}

/* "k=v,k2=v2" (the specification's list; values %-encoded) */
static int list(const char *s, const char *what, ship_err_fn err_fn,
		int (*one)(void *ctx, const char *kv, size_t n, const char *what, ship_err_fn f),
		void *ctx)
{
	while (*s) {
		const char *c = strchr(s, ',');
		size_t n = c ? (size_t)(c - s) : strlen(s);
		int err;

		if (strspn(s, " \t") < n) {
			err = one(ctx, s, n, what, err_fn);
			if (err)
				return err;
		}
		s += n + (c ? 1 : 0);
	}
	return 0;
}

static int one_header(void *ctx, const char *kv, size_t n, const char *what, ship_err_fn f)
{
	return add_header(ctx, kv, n, true, what, f);
}

static int one_attr(void *ctx, const char *kv, size_t n, const char *what, ship_err_fn f)
{
	struct otlp_config *oc = ctx;
	const char *eq = memchr(kv, '=', n);
	char *k, *v;

	if (!eq)
		return f("%s: '%.*s' is not key=value", what, (int)n, kv);
	k = piece(kv, (size_t)(eq - kv), false);
	v = piece(eq + 1, n - (size_t)(eq - kv) - 1, true);
	if (!k || !v || !*k) {
		free(k);
		free(v);
		return f("%s: '%.*s': an empty key or a bad %%-escape", what, (int)n, kv);
	}
	if (oc->n_resource >= OTLP_MAX_RESOURCE) {
		free(k);
		free(v);
		return f("%s: more than %d attributes", what, OTLP_MAX_RESOURCE);
	}
	oc->resource[oc->n_resource].key = k;
	oc->resource[oc->n_resource++].value = v;
	return 0;
}

static int timeout(const char *what, const char *s, uint32_t *out, ship_err_fn err_fn)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || *s == '-' || v < 1 || v > 3600000)
		return err_fn("%s: '%s' is not a number of milliseconds 1..3600000", what, s);
	*out = (uint32_t)v;
	return 0;
}

int otlp_config_opt(struct otlp_config *oc, int opt, const char *arg, ship_err_fn err_fn)
{
	oc->given = true;
	switch (opt) {
	case OPT_OTLP_ENDPOINT:
		if (!url_ok(arg))
			return err_fn("--otlp-endpoint: '%s' is not an http:// or https:// URL", arg);
		oc->endpoint = arg;
		oc->endpoint_flag = true;
		return 0;
	case OPT_OTLP_HEADER:
		if (oc->n_flag_headers >= OTLP_MAX_HEADERS)
			return err_fn("--otlp-header: more than %d", OTLP_MAX_HEADERS);
		oc->flag_headers[oc->n_flag_headers++] = arg;
		return 0;
	case OPT_OTLP_TIMEOUT:
		return timeout("--otlp-timeout-ms", arg, &oc->timeout_ms, err_fn);
	case OPT_OTLP_CA:
	case OPT_OTLP_CERT:
	case OPT_OTLP_KEY:
		if (!*arg)
			return err_fn("%s: empty path", opt == OPT_OTLP_CA ? "--otlp-ca" :
				      opt == OPT_OTLP_CERT ? "--otlp-cert" : "--otlp-key");
		*(opt == OPT_OTLP_CA ? &oc->ca_file : opt == OPT_OTLP_CERT ? &oc->cert_file :
		  &oc->key_file) = arg;
		return 0;
	}
	return err_fn("internal: unknown OTLP option %d", opt);
}

/* OTEL_{LOGS,METRICS}_EXPORTER: "otlp" (the default) or "none", which turns the signal off */
static int signal_off(const char *sig, bool *off, ship_err_fn err_fn)
{
	char name[40];
	const char *v;

	snprintf(name, sizeof(name), "OTEL_%s_EXPORTER", sig);
	v = getenv(name);
	*off = v && !strcmp(v, "none");
	if (v && *v && !*off && strcmp(v, "otlp"))
		return err_fn("%s: '%s': podsnoop exports otlp or none", name, v);
	return 0;
}

/* The signal's URL: the flag's base + path, else its variable as it is, else the base's. */
static int signal_url(struct otlp_config *oc, const char *var, const char *path, char **out,
		      ship_err_fn err_fn)
{
	const char *v = getenv(var);

	if (oc->endpoint_flag) {
		*out = with_path(oc->endpoint, path);
	} else if (v && *v) {
		if (!url_ok(v))
			return err_fn("%s: '%s' is not an http:// or https:// URL", var, v);
		*out = strdup(v);
	} else if (oc->endpoint) {
		*out = with_path(oc->endpoint, path);
	}
	return 0;
}

int otlp_config_env(struct otlp_config *oc, ship_err_fn err_fn)
{
	const char *v, *which;
	bool logs_off, metrics_off;
	int err;

	if (!oc->endpoint_flag && (v = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")) && *v) {
		if (!url_ok(v))
			return err_fn("OTEL_EXPORTER_OTLP_ENDPOINT: '%s' is not an http:// or "
				      "https:// URL", v);
		oc->endpoint = v;
	}
	err = signal_off("LOGS", &logs_off, err_fn);
	if (!err)
		err = signal_off("METRICS", &metrics_off, err_fn);
	if (!err && !logs_off)
		err = signal_url(oc, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", OTLP_LOGS_PATH,
				 &oc->logs_url, err_fn);
	if (!err && !metrics_off)
		err = signal_url(oc, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", OTLP_METRICS_PATH,
				 &oc->metrics_url, err_fn);
	if (err)
		return err;
	if (!oc->logs_url && !oc->metrics_url) {
		if (oc->given)
			return err_fn("--otlp-* options need --otlp-endpoint URL (or "
				      "OTEL_EXPORTER_OTLP_ENDPOINT)");
		return 0;
	}
	for (size_t i = 0; i < oc->n_flag_headers; i++) {
		err = add_header(oc, oc->flag_headers[i], strlen(oc->flag_headers[i]), false,
				 "--otlp-header", err_fn);
		if (err)
			return err;
	}
	if ((v = getenv("OTEL_EXPORTER_OTLP_LOGS_HEADERS")) &&
	    (err = list(v, "OTEL_EXPORTER_OTLP_LOGS_HEADERS", err_fn, one_header, oc)))
		return err;
	if ((v = getenv("OTEL_EXPORTER_OTLP_HEADERS")) &&
	    (err = list(v, "OTEL_EXPORTER_OTLP_HEADERS", err_fn, one_header, oc)))
		return err;
	if (!oc->timeout_ms) {
		oc->timeout_ms = SHIP_TIMEOUT_MS_DEF;
		if ((v = env2("TIMEOUT", &which)) && (err = timeout(which, v, &oc->timeout_ms, err_fn)))
			return err;
	}
	if (!oc->ca_file)
		oc->ca_file = env2("CERTIFICATE", &which);
	if (!oc->cert_file)
		oc->cert_file = env2("CLIENT_CERTIFICATE", &which);
	if (!oc->key_file)
		oc->key_file = env2("CLIENT_KEY", &which);
	if ((v = env2("COMPRESSION", &which)) && strcmp(v, "gzip"))
		return err_fn("%s: '%s': podsnoop sends gzip only", which, v);
	if ((v = env2("PROTOCOL", &which)) && strcmp(v, "http/protobuf"))
		return err_fn("%s: '%s': podsnoop speaks http/protobuf only", which, v);
	if ((v = getenv("OTEL_RESOURCE_ATTRIBUTES")) &&
	    (err = list(v, "OTEL_RESOURCE_ATTRIBUTES", err_fn, one_attr, oc)))
		return err;
	if ((v = getenv("OTEL_SERVICE_NAME")) && *v)
		oc->service_name = v;
	for (size_t i = 0; i < oc->n_resource && !oc->service_name; i++)
		if (!strcmp(oc->resource[i].key, "service.name"))
			oc->service_name = oc->resource[i].value;
	if (oc->key_file && !oc->cert_file)
		return err_fn("--otlp-key needs --otlp-cert");
	return 0;
}

void otlp_config_usage(FILE *f)
{
	fprintf(f,
"OTLP/HTTP export (protobuf, gzip; docs/otlp.md), beside --collector and --output:\n"
"      --otlp-endpoint URL   export every record as an OTLP LogRecord to\n"
"                            URL" OTLP_LOGS_PATH " and the per-pod metrics (cumulative,\n"
"                            every --interval) to URL" OTLP_METRICS_PATH " (default:\n"
"                            $OTEL_EXPORTER_OTLP_ENDPOINT; a signal's own\n"
"                            $OTEL_EXPORTER_OTLP_{LOGS,METRICS}_ENDPOINT is used as\n"
"                            it is; $OTEL_{LOGS,METRICS}_EXPORTER=none turns one\n"
"                            off); local output is then off unless --output is given\n"
"      --otlp-header K=V     one more request header (repeatable; also\n"
"                            $OTEL_EXPORTER_OTLP_HEADERS=k=v,k2=v2)\n"
"      --otlp-ca FILE        CA certificates (PEM; $OTEL_EXPORTER_OTLP_CERTIFICATE)\n"
"      --otlp-cert FILE, --otlp-key FILE\n"
"                            client certificate and key (PEM;\n"
"                            $OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, _CLIENT_KEY)\n"
"      --otlp-timeout-ms N   one request (default $OTEL_EXPORTER_OTLP_TIMEOUT, else\n"
"                            %u); batching, queue, spool (DIR/otlp) and retry\n"
"                            flags are the shipping ones above\n"
"                            resource: $OTEL_RESOURCE_ATTRIBUTES, $OTEL_SERVICE_NAME\n"
"\n", SHIP_TIMEOUT_MS_DEF);
}

void otlp_config_print(const struct otlp_config *oc, FILE *f)
{
	char url[2048];

	fprintf(f, "otlp-logs-endpoint: %s\n",
		oc->logs_url ? log_url(oc->logs_url, url, sizeof(url)) : "off");
	fprintf(f, "otlp-metrics-endpoint: %s\n",
		oc->metrics_url ? log_url(oc->metrics_url, url, sizeof(url)) : "off");
	if (!oc->logs_url && !oc->metrics_url)
		return;
	for (size_t i = 0; i < oc->n_headers; i++) {
		const char *c = strchr(oc->headers[i], ':');

		/* values are often credentials: names only */
		fprintf(f, "otlp-header: %.*s\n", (int)(c - oc->headers[i]), oc->headers[i]);
	}
	fprintf(f, "otlp-ca: %s\notlp-cert: %s\notlp-key: %s\notlp-timeout-ms: %u\n",
		oc->ca_file ? oc->ca_file : "system", oc->cert_file ? oc->cert_file : "none",
		oc->key_file ? oc->key_file : "none", oc->timeout_ms);
	fprintf(f, "otlp-service-name: %s\n",
		oc->service_name ? oc->service_name : OTLP_SERVICE_NAME_DEF);
	for (size_t i = 0; i < oc->n_resource; i++)
		fprintf(f, "otlp-resource: %s=%s\n", oc->resource[i].key, oc->resource[i].value);
}
