// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include "lib/jsonw.h"

static void flush_buf(struct jw *w)
{
	if (w->len)
		fwrite_unlocked(w->buf, 1, w->len, w->f);
	w->len = 0;
}

static void put(struct jw *w, const void *s, size_t n)
{
	if (w->len + n > sizeof(w->buf)) {
		flush_buf(w);
		if (n > sizeof(w->buf)) {
			fwrite_unlocked(s, 1, n, w->f);
			return;
		}
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

static void putch(struct jw *w, char c)
{
	if (w->len == sizeof(w->buf))
		flush_buf(w);
	w->buf[w->len++] = c;
}

static void puts_(struct jw *w, const char *s)
{
	put(w, s, strlen(s));
}

/*
 * Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid: no
 * overlong forms, no surrogates, nothing above U+10FFFF (RFC 3629).
 */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
	unsigned char c = s[0];
	size_t n, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

size_t jw_utf8_len(const unsigned char *s, size_t left)
{
	return left ? utf8_seq(s, left) : 0;
}

static void write_string(struct jw *w, const char *str, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, n;

	putch(w, '"');
	while (i < len) {
		unsigned char c = s[i];

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			/* fast path: a run of plain ASCII */
			size_t j = i + 1;

			while (j < len && s[j] >= 0x20 && s[j] < 0x80 && s[j] != '"' && s[j] != '\\')
				j++;
			put(w, s + i, j - i);
			i = j;
			continue;
		}
		switch (c) {
		case '"': puts_(w, "\\\""); i++; continue;
		case '\\': puts_(w, "\\\\"); i++; continue;
		case '\n': puts_(w, "\\n"); i++; continue;
		case '\r': puts_(w, "\\r"); i++; continue;
		case '\t': puts_(w, "\\t"); i++; continue;
		case '\b': puts_(w, "\\b"); i++; continue;
		case '\f': puts_(w, "\\f"); i++; continue;
		}
		if (c < 0x20) {
			puts_(w, "\\u00");
			putch(w, hex[c >> 4]);
			putch(w, hex[c & 15]);
			i++;
			continue;
		}
		n = utf8_seq(s + i, len - i);
		if (n) {
			put(w, s + i, n);
			i += n;
		} else {
			puts_(w, "\\ufffd");
			i++;
		}
	}
	putch(w, '"');
}

void jw_write_string(FILE *f, const char *str, size_t len)
{
	struct jw w;

	w.f = f;
	w.len = 0;
	write_string(&w, str, len);
	flush_buf(&w);
}

static void sep(struct jw *w)
{
	if (w->depth <= 0)
		return;
	if (!w->first[w->depth - 1])
		putch(w, ',');
	w->first[w->depth - 1] = false;
}

void jw_key(struct jw *w, const char *key)
{
	sep(w);
	if (key) {
		/* keys are the agent's own ASCII names: nothing to escape */
		putch(w, '"');
		puts_(w, key);
		put(w, "\":", 2);
	}
}

static void push(struct jw *w, char open)
{
	putch(w, open);
	if (w->depth < JW_MAX_DEPTH)
		w->first[w->depth] = true;
	w->depth++;
}

void jw_begin(struct jw *w, FILE *f)
{
	w->f = f;
	w->depth = 0;
	w->len = 0;
	push(w, '{');
}

void jw_obj_open(struct jw *w, const char *key)
{
	jw_key(w, key);
	push(w, '{');
}

void jw_obj_close(struct jw *w)
{
	putch(w, '}');
	w->depth--;
}

void jw_arr_open(struct jw *w, const char *key)
{
	jw_key(w, key);
	push(w, '[');
}

void jw_arr_close(struct jw *w)
{
	putch(w, ']');
	w->depth--;
}

void jw_end(struct jw *w)
{
	/* only objects are left open by well-formed callers */
	while (w->depth > 0)
		jw_obj_close(w);
	putch(w, '\n');
	flush_buf(w);
}

void jw_str(struct jw *w, const char *key, const char *s, size_t len)
{
	jw_key(w, key);
	write_string(w, s, len);
}

void jw_cstr(struct jw *w, const char *key, const char *s)
{
	jw_str(w, key, s, __builtin_strlen(s));
}

/* Decimal digits without printf: numbers are most of a record's fields. */
static void put_u64(struct jw *w, uint64_t v)
{
	char buf[20];
	size_t i = sizeof(buf);

	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(w, buf + i, sizeof(buf) - i);
}

void jw_u64(struct jw *w, const char *key, uint64_t v)
{
	jw_key(w, key);
	put_u64(w, v);
}

void jw_i64(struct jw *w, const char *key, int64_t v)
{
	jw_key(w, key);
	if (v < 0) {
		putch(w, '-');
		put_u64(w, -(uint64_t)v);
	} else {
		put_u64(w, (uint64_t)v);
	}
}

void jw_bool(struct jw *w, const char *key, bool v)
{
	jw_key(w, key);
	puts_(w, v ? "true" : "false");
}

void jw_double(struct jw *w, const char *key, double v)
{
	char buf[32];

	jw_key(w, key);
	if (isfinite(v)) {
		snprintf(buf, sizeof(buf), "%.6g", v);
		puts_(w, buf);
	} else {
		puts_(w, "null"); /* JSON has no NaN or Inf */
	}
}

void jw_null(struct jw *w, const char *key)
{
	jw_key(w, key);
	puts_(w, "null");
}
