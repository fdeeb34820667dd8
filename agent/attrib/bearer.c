// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/attrib/bearer.h"

static const char prefix[] = "Authorization: Bearer ";

/* The token of path into tok (BEARER_TOKEN_MAX + 2 bytes), NUL-terminated. */
static int read_token(const char *path, char *tok)
{
	size_t len;
	FILE *f;
	int err = 0;

	tok[0] = '\0';
	f = fopen(path, "re");
	if (!f)
		return -errno;
	len = fread(tok, 1, BEARER_TOKEN_MAX + 1, f);
	if (ferror(f))
		err = -EIO;
	fclose(f);
	if (!err && len > BEARER_TOKEN_MAX)
		err = -E2BIG;
	while (!err && len && strchr("\n\r \t", tok[len - 1]))
		len--;
	if (!err && !len)
		err = -ENODATA;
	tok[err ? 0 : len] = '\0';
	if (!err && (memchr(tok, '\n', len) || memchr(tok, '\r', len) || strlen(tok) != len))
		err = -EINVAL;
	return err;
}

int bearer_check(const char *path)
{
	char tok[BEARER_TOKEN_MAX + 2];
	int err = read_token(path, tok);

	explicit_bzero(tok, sizeof(tok));
	return err;
}

int bearer_header(const char *path, struct curl_slist **list)
{
	char line[sizeof(prefix) - 1 + BEARER_TOKEN_MAX + 2];
	struct curl_slist *n;
	int err = read_token(path, line + sizeof(prefix) - 1);

	if (!err) {
		memcpy(line, prefix, sizeof(prefix) - 1);
		n = curl_slist_append(*list, line);
		if (n)
			*list = n;
		else
			err = -ENOMEM;
	}
	explicit_bzero(line, sizeof(line));
	return err;
}

const char *bearer_strerror(int err)
{
	switch (err) {
	case -ENODATA: return "empty (no token to send)";
	case -EINVAL: return "not one line";
	case -E2BIG: return "over " BEARER_TOKEN_MAX_S " bytes";
	default: return strerror(-err);
	}
}
