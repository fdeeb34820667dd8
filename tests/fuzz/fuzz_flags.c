// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The command line (agent/config.c, agent/ship_config.c, the selector
 * parser): argv as NUL-separated words, parsed as main() parses it, and
 * the settings printed as --check-config prints them. A chart value or a
 * wrapper script is outside input too. Each input is parsed twice, from
 * two copies (the first freed before the second is parsed): the outcome
 * must depend on argv alone, never on what an earlier parse left behind.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>

#include "fuzz.h"
#include "agent/config.h"

#define MAX_ARGS 64

static struct ps_config cfg; /* big: not on the stack */

/* rc, and the settings as text when they parsed */
static int parse(const uint8_t *data, size_t size, char **text)
{
	char *argv[MAX_ARGS + 2], *buf = NULL;
	size_t n = 0, len;
	FILE *f;
	int rc;

	argv[0] = "podsnoop";
	if (size)
		n = fuzz_split(data, size, argv + 1, MAX_ARGS, &buf);
	argv[n + 1] = NULL;
	rc = config_parse(&cfg, (int)n + 1, argv);
	assert(rc == 0 || rc == 1 || rc == -EINVAL);
	*text = NULL;
	if (rc == 0) {
		f = open_memstream(text, &len);
		assert(f);
		config_print(&cfg, f);
		fclose(f);
	}
	free(buf);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *first, *second;
	int rc = parse(data, size, &first);

	assert(parse(data, size, &second) == rc);
	assert(!first == !second && (!first || strcmp(first, second) == 0));
	free(first);
	free(second);
	return 0;
}
