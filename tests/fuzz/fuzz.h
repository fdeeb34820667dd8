/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Helpers shared by the libFuzzer targets (tests/fuzz/fuzz_*.c). A target
 * defines LLVMFuzzerTestOneInput and must leave nothing behind between
 * inputs: no leak (ASan's leak check runs at exit), no global state that
 * changes what the next input does.
 */
#ifndef PS_FUZZ_H
#define PS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Where a target stores what it read, so the reads are not optimised away. */
static volatile size_t fuzz_sink;

/* A NUL-terminated copy of the input, of exactly size + 1 bytes (ASan sees any over-read). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/*
 * Split a copy of the input at NUL bytes into at most max strings (what
 * follows the max-th is ignored). Returns how many; free(*buf) frees them.
 */
static inline size_t fuzz_split(const uint8_t *data, size_t size, char **out, size_t max,
				char **buf)
{
	char *s = fuzz_cstr(data, size), *p = s, *end = s + size;
	size_t n = 0;

	*buf = s;
	while (n < max) {
		out[n++] = p;
		p += strlen(p);
		if (p >= end || n == max)
			break;
		p++;
	}
	return n;
}

#endif
