/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Settings of the OTLP/HTTP exporter: --otlp-* flags, and the variables
 * the OpenTelemetry specification names for exporters (OTEL_EXPORTER_OTLP_*,
 * OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME). A flag wins over the
 * signal's variable (OTEL_EXPORTER_OTLP_LOGS_*), which wins over the
 * generic one. Parsed by ship_config.c; docs/otlp.md.
 */
#ifndef PS_OTLP_CONFIG_H
#define PS_OTLP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OTLP_MAX_HEADERS 32
#define OTLP_MAX_RESOURCE 32
#define OTLP_LOGS_PATH "/v1/logs"
#define OTLP_METRICS_PATH "/v1/metrics"
#define OTLP_SERVICE_NAME_DEF "podsnoop"

struct otlp_kv {
	char *key, *value;
};

struct otlp_config {
	/* as given: --otlp-endpoint, else $OTEL_EXPORTER_OTLP_ENDPOINT (a base URL) */
	const char *endpoint;
	bool endpoint_flag;		/* from the flag (a variable may not override it) */
	char *logs_url;			/* where logs are POSTed; NULL: no OTLP */
	char *metrics_url;		/* the same for metrics (base + /v1/metrics) */
	/* "Name: value", flags first, then the signal's variable, then the generic one */
	const char *headers[OTLP_MAX_HEADERS];
	size_t n_headers;
	const char *flag_headers[OTLP_MAX_HEADERS];	/* --otlp-header K=V as given */
	size_t n_flag_headers;
	const char *ca_file, *cert_file, *key_file;
	uint32_t timeout_ms;		/* 0: OTEL_EXPORTER_OTLP_TIMEOUT, else 10000 */
	/* OTEL_RESOURCE_ATTRIBUTES (percent-decoded), OTEL_SERVICE_NAME */
	struct otlp_kv resource[OTLP_MAX_RESOURCE];
	size_t n_resource;
	const char *service_name;
	bool given;			/* some --otlp-* flag was used */
};

#endif
