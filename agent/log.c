// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "agent/log.h"

static enum log_level cur_level = LOG_INFO;

void log_set_level(enum log_level level)
{
	cur_level = level;
}

enum log_level log_get_level(void)
{
	return cur_level;
}

static const char *const names[] = {
	[LOG_ERROR] = "error", [LOG_WARN] = "warning", [LOG_INFO] = "info",
	[LOG_DEBUG] = "debug", [LOG_LIBBPF] = "libbpf",
};

static void vlog(enum log_level level, const char *fmt, va_list ap)
{
	char buf[4096], *msg = buf, *big = NULL;
	va_list aq;
	int len;
	size_t n;

	if (level > cur_level)
		return;
	va_copy(aq, ap);
	len = vsnprintf(buf, sizeof(buf), fmt, ap);
	/* verifier logs run to megabytes: their end (the error) must not be cut */
	if (len >= (int)sizeof(buf) && (big = malloc((size_t)len + 1))) {
		vsnprintf(big, (size_t)len + 1, fmt, aq);
		msg = big;
	}
	va_end(aq);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	/* one write per line keeps lines whole when several threads log */
	fprintf(stderr, "podsnoop: %s: %s\n", names[level], msg);
	free(big);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf warnings matter at any verbosity; its info and debug need -vv */
	vlog(level == LIBBPF_WARN ? LOG_WARN : LOG_LIBBPF, fmt, ap);
	return 0;
}

void log_route_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
