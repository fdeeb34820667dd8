// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <inttypes.h>
#include <math.h>
#include "jsonw.h"

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

void jw_write_string(FILE *f, const char *str, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, n;

	putc_unlocked('"', f);
	while (i < len) {
		unsigned char c = s[i];

		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			/* fast path: a run of plain ASCII */
			size_t j = i + 1;

			while (j < len && s[j] >= 0x20 && s[j] < 0x80 && s[j] != '"' && s[j] != '\\')
				j++;
			fwrite_unlocked(s + i, 1, j - i, f);
			i = j;
			continue;
		}
		switch (c) {
		case '"': fputs_unlocked("\\\"", f); i++; continue;
		case '\\': fputs_unlocked("\\\\", f); i++; continue;
		case '\n': fputs_unlocked("\\n", f); i++; continue;
		case '\r': fputs_unlocked("\\r", f); i++; continue;
		case '\t': fputs_unlocked("\\t", f); i++; continue;
		case '\b': fputs_unlocked("\\b", f); i++; continue;
		case '\f': fputs_unlocked("\\f", f); i++; continue;
		}
		if (c < 0x20) {
			fputs_unlocked("\\u00", f);
			putc_unlocked(hex[c >> 4], f);
			putc_unlocked(hex[c & 15], f);
			i++;
			continue;
		}
		n = utf8_seq(s + i, len - i);
		if (n) {
			fwrite_unlocked(s + i, 1, n, f);
			i += n;
		} else {
			fputs_unlocked("\\ufffd", f);
			i++;
		}
	}
	putc_unlocked('"', f);
}

static void sep(struct jw *w)
{
	if (w->depth <= 0)
		return;
	if (!w->first[w->depth - 1])
		putc_unlocked(',', w->f);
	w->first[w->depth - 1] = false;
}

void jw_key(struct jw *w, const char *key)
{
	sep(w);
	if (key) {
		jw_write_string(w->f, key, __builtin_strlen(key));
		putc_unlocked(':', w->f);
	}
}

static void push(struct jw *w, char open)
{
	putc_unlocked(open, w->f);
	if (w->depth < JW_MAX_DEPTH)
		w->first[w->depth] = true;
	w->depth++;
}

void jw_begin(struct jw *w, FILE *f)
{
	w->f = f;
	w->depth = 0;
	push(w, '{');
}

void jw_obj_open(struct jw *w, const char *key)
{
	jw_key(w, key);
	push(w, '{');
}

void jw_obj_close(struct jw *w)
{
	putc_unlocked('}', w->f);
	w->depth--;
}

void jw_arr_open(struct jw *w, const char *key)
{
	jw_key(w, key);
	push(w, '[');
}

void jw_arr_close(struct jw *w)
{
	putc_unlocked(']', w->f);
	w->depth--;
}

void jw_end(struct jw *w)
{
	/* only objects are left open by well-formed callers */
	while (w->depth > 0)
		jw_obj_close(w);
	putc_unlocked('\n', w->f);
}

void jw_str(struct jw *w, const char *key, const char *s, size_t len)
{
	jw_key(w, key);
	jw_write_string(w->f, s, len);
}

void jw_cstr(struct jw *w, const char *key, const char *s)
{
	jw_str(w, key, s, __builtin_strlen(s));
}

void jw_u64(struct jw *w, const char *key, uint64_t v)
{
	jw_key(w, key);
	fprintf(w->f, "%" PRIu64, v);
}

void jw_i64(struct jw *w, const char *key, int64_t v)
{
	jw_key(w, key);
	fprintf(w->f, "%" PRId64, v);
}

void jw_bool(struct jw *w, const char *key, bool v)
{
	jw_key(w, key);
	fputs_unlocked(v ? "true" : "false", w->f);
}

void jw_double(struct jw *w, const char *key, double v)
{
	jw_key(w, key);
	if (isfinite(v))
		fprintf(w->f, "%.6g", v);
	else
		fputs_unlocked("null", w->f); /* JSON has no NaN or Inf */
}
