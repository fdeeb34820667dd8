/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* "Authorization: Bearer <token>" from a token file, for libcurl clients. */
#ifndef PS_BEARER_H
#define PS_BEARER_H

#include <curl/curl.h>

#define BEARER_TOKEN_MAX 16384
#define BEARER_TOKEN_MAX_S "16384"

/*
 * Read the token in path (trailing whitespace dropped) and append the header
 * to *list. Returns 0, -ENODATA for an empty file (nothing appended),
 * -EINVAL when the token spans lines (it would split the header), -E2BIG
 * beyond BEARER_TOKEN_MAX, -ENOMEM, or -errno of the read. The token is
 * wiped from our buffers. Read it again for each request: projected
 * service account tokens are rotated.
 */
int bearer_header(const char *path, struct curl_slist **list);
/* Read and check the token as bearer_header would, append nothing: 0 or its error. */
int bearer_check(const char *path);
/* What an error of bearer_header/bearer_check means, for a message. */
const char *bearer_strerror(int err);

#endif
