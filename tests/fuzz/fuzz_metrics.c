// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The metrics writer (agent/metrics.c): label values come from pods (names,
 * namespaces, containers are chosen by whoever deploys them) and disks. The
 * input is NUL-separated values, three per label set (pod, container,
 * disk), added to bounded aggregations as the bio latency metric adds them
 * (one keeping a single series, so nearly everything is folded; one keeping
 * four, with expiry), then rendered as a scrape renders them, and the text
 * checked: every line a comment or a sample of a family announced before it.
 */
#include <assert.h>
#include <string.h>

#include "fuzz.h"
#include "lib/metrics.h"

#define MAX_VALUES 96

static const char *const names[] = { "pod", "container", "disk" };
static struct hist_agg *aggs[2];
static const char *help;
static const char *extra[7];

static void collect(struct mw *w, void *priv)
{
	(void)priv;
	mw_family(w, "fuzz_latency_seconds", MT_HISTOGRAM, help);
	for (size_t i = 0; i < 2; i++)
		hist_agg_write(w, aggs[i], 1e-6);
	mw_family(w, "fuzz_info", MT_GAUGE, "Label values as given.");
	mw_u64(w, extra, 1);
}

static bool starts(const char *line, const char *prefix)
{
	return strncmp(line, prefix, strlen(prefix)) == 0;
}

static void check(char *text, size_t len)
{
	char family[64] = "";

	assert(strlen(text) == len);
	for (char *line = text, *nl; *line; line = nl + 1) {
		nl = strchr(line, '\n');
		assert(nl); /* the text ends with a line end */
		*nl = '\0';
		if (starts(line, "# TYPE ")) {
			const char *sp = strchr(line + 7, ' ');

			assert(sp && (size_t)(sp - line - 7) < sizeof(family));
			memcpy(family, line + 7, (size_t)(sp - line - 7));
			family[sp - line - 7] = '\0';
		} else if (!starts(line, "# HELP ")) {
			assert(*family && starts(line, family));
			assert(line[strlen(line) - 1] != ' ');
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool registered;
	const char *values[3];
	uint64_t slots[8];
	char *v[MAX_VALUES], *buf, *text;
	size_t n, len;

	if (!registered) {
		metrics_add_collector(collect, NULL);
		registered = true;
	}
	n = fuzz_split(data, size, v, MAX_VALUES, &buf);
	aggs[0] = hist_agg_new(names, 3, 8, 1);
	aggs[1] = hist_agg_new(names, 3, 8, 4);
	assert(aggs[0] && aggs[1]);
	for (size_t i = 0; i + 3 <= n; i += 3) {
		for (size_t j = 0; j < 8; j++)
			slots[j] = (i + j) % 3;
		values[0] = v[i];
		values[1] = v[i + 1];
		values[2] = v[i + 2];
		assert(hist_agg_add_at(aggs[0], values, slots, i, i) == 0);
		assert(hist_agg_add_at(aggs[1], values, slots, i, i) == 0);
		if (i % 12 == 9)
			hist_agg_expire(aggs[1], i - 3);
	}
	help = n ? v[0] : "";
	for (size_t i = 0; i < 3; i++) {
		extra[2 * i] = names[i];
		extra[2 * i + 1] = i < n ? v[n - 1 - i] : "";
	}
	text = metrics_render(&len);
	assert(text);
	check(text, len);
	free(text);
	hist_agg_free(aggs[0]);
	hist_agg_free(aggs[1]);
	free(buf);
	return 0;
}
