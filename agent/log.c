// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "agent/log.h"
#include "lib/jsonw.h"

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

/* A byte that must not reach a log line as it is: a control character, or not UTF-8. */
static size_t plain_len(const unsigned char *s, size_t left, bool keep_newlines)
{
	size_t n;

	if (*s >= 0x20 && *s < 0x7f)
		return 1;
	if (*s == '\t' || (*s == '\n' && keep_newlines))
		return 1;
	if (*s < 0x80)
		return 0;
	n = jw_utf8_len(s, left);
	/* C1 controls (U+0080..U+009F) are terminal commands too */
	return n == 2 && s[0] == 0xc2 && s[1] < 0xa0 ? 0 : n;
}

static size_t escape(char *dst, size_t size, const char *src, size_t len, bool keep_newlines)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)src;
	size_t o = 0, i = 0, n;

	while (i < len && o + 1 < size) {
		n = plain_len(s + i, len - i, keep_newlines);
		if (n) {
			if (o + n >= size)
				break;
			memcpy(dst + o, s + i, n);
			o += n;
			i += n;
			continue;
		}
		if (o + 4 >= size)
			break;
		dst[o++] = '\\';
		if (s[i] == '\n' || s[i] == '\r') {
			dst[o++] = s[i] == '\n' ? 'n' : 'r';
		} else {
			dst[o++] = 'x';
			dst[o++] = hex[s[i] >> 4];
			dst[o++] = hex[s[i] & 15];
		}
		i++;
	}
	dst[o] = '\0';
	return o;
}

size_t log_escape(char *dst, size_t size, const char *src)
{
	return size ? escape(dst, size, src, strlen(src), false) : 0;
}

const char *log_url(const char *url, char *buf, size_t size)
{
	const char *auth = strstr(url, "://"), *at = NULL;
	size_t alen;

	if (auth) {
		auth += 3;
		alen = strcspn(auth, "/?#");
		for (size_t i = 0; i < alen; i++)
			if (auth[i] == '@')
				at = auth + i; /* the last one: a password may hold '@' */
	}
	if (!at)
		snprintf(buf, size, "%s", url);
	else
		snprintf(buf, size, "%.*s***%s", (int)(auth - url), url, at);
	return buf;
}

/*
 * raw: libbpf's and the verifier's own multi-line text. Everything else is
 * one line: whatever came from outside (a runtime's name, a kubelet's
 * answer, a path) cannot start a line of its own or reach a terminal.
 */
static void vlog(enum log_level level, bool raw, const char *fmt, va_list ap)
{
	char buf[4096], *msg = buf, *big = NULL, *esc = NULL;
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
	for (size_t i = 0, k; i < n; i += k) {
		k = plain_len((const unsigned char *)msg + i, n - i, raw);
		if (!k) {
			esc = malloc(4 * n + 1);
			if (esc) {
				escape(esc, 4 * n + 1, msg, n, raw);
				msg = esc;
			}
			break;
		}
	}
	/* one write per line keeps lines whole when several threads log */
	fprintf(stderr, "podsnoop: %s: %s\n", names[level], msg);
	free(esc);
	free(big);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, false, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf warnings matter at any verbosity; its info and debug need -vv */
	vlog(level == LIBBPF_WARN ? LOG_WARN : LOG_LIBBPF, true, fmt, ap);
	return 0;
}

void log_route_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
