// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/attrib/bearer.h"

int bearer_header(const char *path, struct curl_slist **list)
{
	static const char prefix[] = "Authorization: Bearer ";
	char line[sizeof(prefix) - 1 + BEARER_TOKEN_MAX + 2];
	char *tok = line + sizeof(prefix) - 1;
	struct curl_slist *n;
	size_t len;
	FILE *f;
	int err = 0;

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
