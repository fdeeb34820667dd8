/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The agent's one logger: stderr, "podsnoop: <level>: message". */
#ifndef PS_LOG_H
#define PS_LOG_H

#include <stddef.h>

enum log_level {
	LOG_ERROR,
	LOG_WARN,
	LOG_INFO,
	LOG_DEBUG,
	LOG_LIBBPF, /* -vv: libbpf's debug output, verifier logs included */
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * src as one printable line in dst (size bytes, NUL-terminated; cut to fit):
 * control characters and bytes that are not UTF-8 as \xNN, line ends as \n
 * and \r. Every log line goes through it; for text that other lines show
 * (/readyz). Returns the length written.
 */
size_t log_escape(char *dst, size_t size, const char *src);
/*
 * url without its credentials (the user:password@ of its authority becomes
 * ***@), for messages: the URL of a flag may carry them. Returns buf.
 */
const char *log_url(const char *url, char *buf, size_t size);
/* Route libbpf's messages into this logger. */
void log_route_libbpf(void);

#define pr_err(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define pr_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define pr_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
