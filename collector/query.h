/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `podsnoop-collector query NAME`: one of the shipped queries
 * (collector/queries/NAME.sql, built into the binary and installed beside
 * it) run against ClickHouse over the window --since/--until, its answer
 * printed as an aligned table. The .sql files run as they are with
 * clickhouse-client too: the window is written in them as a comment
 * marker, since or until between slash-stars, before a parenthesized
 * default ((now() - 3600), the last hour; (now())), which this command
 * replaces. Below query_main(): 0/-errno.
 */
#ifndef PS_COLLECTOR_QUERY_H
#define PS_COLLECTOR_QUERY_H

#include <stddef.h>
#include <stdio.h>

struct query_file {
	const char *name;	/* the file's name without .sql */
	const char *sql;
};
/* generated from collector/queries/ (collector/queries/embed.sh), NULL-terminated */
extern const struct query_file query_files[];

/* argv[0] is "query"; returns the exit status (0, or 2 with one line on stderr) */
int query_main(int argc, char **argv);

const struct query_file *query_find(const char *name);
/*
 * A --since/--until value as SQL: "90s", "15m", "2h", "7d" (that long ago:
 * "(now() - N)"), "now", "@UNIX" or "YYYY-MM-DDTHH:MM[:SS]Z" (UTC:
 * "toDateTime(N)"). -EINVAL for anything else.
 */
int query_time(const char *s, char *out, size_t outsz);
/*
 * sql with the parenthesized group after each since and until marker
 * replaced by since / until (NULL: kept).
 * Returns a malloc'd string, NULL with errno (EINVAL: a marker without a
 * group, or a query with no since marker).
 */
char *query_window(const char *sql, const char *since, const char *until);
/*
 * A TabSeparatedWithNamesAndTypes answer as an aligned table on f: numbers
 * right-aligned, NULL as "-", control characters kept escaped, and a last
 * line "(N rows)". -EINVAL when tsv is not that format.
 */
int query_table(const char *tsv, FILE *f);

#endif
