/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A small streaming JSON writer for NDJSON records: no allocation. A record
 * is staged in the writer's own buffer and handed to the FILE in large
 * pieces (per-call stdio overhead was most of the cost of a record). Strings may hold any bytes: control
 * characters are escaped and bytes that are not valid UTF-8 become U+FFFD,
 * so every line is valid JSON whatever a process passes to exec or open.
 */
#ifndef PS_JSONW_H
#define PS_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JW_MAX_DEPTH 8
#define JW_BUF_SIZE 4096	/* staged bytes; longer records go out in pieces */

struct jw {
	FILE *f;
	int depth;
	bool first[JW_MAX_DEPTH];
	size_t len;		/* bytes staged in buf */
	char buf[JW_BUF_SIZE];
};

void jw_begin(struct jw *w, FILE *f);	/* '{' of a record */
void jw_end(struct jw *w);		/* closes everything open, '\n', hands it to the FILE */

void jw_key(struct jw *w, const char *key);
void jw_obj_open(struct jw *w, const char *key);	/* key may be NULL in arrays */
void jw_obj_close(struct jw *w);
void jw_arr_open(struct jw *w, const char *key);
void jw_arr_close(struct jw *w);

/* Values: with a key in objects, key NULL inside arrays. */
void jw_str(struct jw *w, const char *key, const char *s, size_t len);
void jw_cstr(struct jw *w, const char *key, const char *s);
void jw_u64(struct jw *w, const char *key, uint64_t v);
void jw_i64(struct jw *w, const char *key, int64_t v);
void jw_bool(struct jw *w, const char *key, bool v);
void jw_double(struct jw *w, const char *key, double v);
void jw_null(struct jw *w, const char *key);

/* Write s as a JSON string literal (quotes included). */
void jw_write_string(FILE *f, const char *s, size_t len);
/* Length (1..4) of the valid UTF-8 sequence at s, 0 if invalid (RFC 3629). */
size_t jw_utf8_len(const unsigned char *s, size_t left);

#endif
