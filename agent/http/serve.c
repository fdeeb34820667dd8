// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/http/endpoints.h"
#include "agent/log.h"
#include "lib/metrics.h"
#include "agent/http/pod_metrics.h"
#include "agent/http/serve.h"
#include "agent/tracers/tracer.h"
#include "agent/http/tracer_metrics.h"

static bool serving, counting;
static char attached[256];
static int n_attached;

int serve_start(const struct ps_config *cfg)
{
	int err;

	/* the figures are kept for /metrics and for the OTLP metrics export alike */
	if (!cfg->listen && !cfg->ship.otlp.metrics_url)
		return 0;
	err = tracer_metrics_init();
	if (err) {
		pr_err("metrics: %s", strerror(-err));
		return err;
	}
	pod_metrics_set_max_series(cfg->metrics_series);
	for (size_t i = 0; i < tracer_count; i++) {
		const struct tracer *t = tracer_table[i];

		if (!(cfg->tracers & (1u << i)) || !t->metrics_start)
			continue;
		err = t->metrics_start();
		if (err) {
			pr_err("metrics: %s: %s", t->name, strerror(-err));
			return err;
		}
	}
	counting = true;
	if (!cfg->listen)
		return 0;
	health_set("tracers", false, "starting");
	/* a metadata source replaces this with its own state once it runs */
	health_set("metadata", true, "off (no metadata source configured)");
	err = endpoints_start(cfg->listen);
	if (err) {
		pr_err("--listen %s: %s", cfg->listen, strerror(-err));
		return err;
	}
	serving = true;
	pr_info("serving /healthz /readyz /metrics on %s (port %u)", cfg->listen,
		endpoints_port());
	return 0;
}

void serve_tracer_started(size_t i, const char *method)
{
	size_t len = strlen(attached);

	if (counting)
		tracer_metrics_started(i, method);
	if (!serving)
		return;
	n_attached++;
	snprintf(attached + len, sizeof(attached) - len, "%s%s=%s", len ? ", " : "",
		 tracer_table[i]->name, method);
}

void serve_tracers_ready(void)
{
	if (!serving)
		return;
	health_set("tracers", n_attached > 0, "%d attached: %s", n_attached, attached);
	tracer_metrics_set_ready(n_attached > 0);
}

void serve_tick(void)
{
	if (serving)
		endpoints_heartbeat();
}

void serve_stop(void)
{
	if (serving)
		endpoints_stop();
	serving = false;
}

void serve_metrics_stop(void)
{
	if (!counting)
		return;
	for (size_t i = 0; i < tracer_count; i++)
		if (tracer_table[i]->metrics_stop)
			tracer_table[i]->metrics_stop();
	tracer_metrics_set_ready(false);
	for (size_t i = 0; i < tracer_count; i++)
		tracer_metrics_stopped(i);
	tracer_metrics_free();
	counting = false;
}
