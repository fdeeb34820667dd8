// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* `podsnoop-collector query NAME`: a shipped query as a table (query.h). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collector/clickhouse.h"
#include "collector/query.h"

#define SINCE_MARK "/*since*/"
#define UNTIL_MARK "/*until*/"

const struct query_file *query_find(const char *name)
{
	for (const struct query_file *q = query_files; q->name; q++)
		if (!strcmp(q->name, name))
			return q;
	return NULL;
}

int query_time(const char *s, char *out, size_t outsz)
{
	static const struct { char unit; long mult; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	struct tm tm = { 0 };
	const char *end;
	char *e;
	long v;

	if (!strcmp(s, "now")) {
		snprintf(out, outsz, "(now())");
		return 0;
	}
	if (s[0] == '@') {
		errno = 0;
		v = strtol(s + 1, &e, 10);
		if (e == s + 1 || *e || errno || v < 0 || v > 4294967295L)
			return -EINVAL;
		snprintf(out, outsz, "toDateTime(%ld)", v);
		return 0;
	}
	if (isdigit((unsigned char)s[0]) && strchr(s, '-')) {
		end = strptime(s, "%Y-%m-%dT%H:%M", &tm);
		if (end && *end == ':')
			end = strptime(end, ":%S", &tm);
		if (!end || strcmp(end, "Z"))
			return -EINVAL;
		snprintf(out, outsz, "toDateTime(%lld)", (long long)timegm(&tm));
		return 0;
	}
	errno = 0;
	v = strtol(s, &e, 10);
	if (e == s || errno || v < 0 || v > 100L * 365 * 86400 || strlen(e) != 1)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (*e == units[i].unit) {
			snprintf(out, outsz, "(now() - %ld)", v * units[i].mult);
			return 0;
		}
	return -EINVAL;
}

/* the end of the parenthesized group at p, NULL when p holds none */
static const char *group_end(const char *p)
{
	int depth = 0;

	if (*p != '(')
		return NULL;
	for (; *p; p++) {
		if (*p == '(')
			depth++;
		else if (*p == ')' && !--depth)
			return p + 1;
	}
	return NULL;
}

char *query_window(const char *sql, const char *since, const char *until)
{
	size_t cap = strlen(sql) + 1, n = 0;
	bool have_since = false;
	const char *p = sql;
	char *res, *nr;

	res = malloc(cap);
	if (!res)
		return NULL;
	while (*p) {
		bool is_since = !strncmp(p, SINCE_MARK, strlen(SINCE_MARK));
		bool is_until = !strncmp(p, UNTIL_MARK, strlen(UNTIL_MARK));
		const char *with = is_since ? since : until, *g;
		size_t wl;

		if (!is_since && !is_until) {
			res[n++] = *p++;
			continue;
		}
		have_since |= is_since;
		p += strlen(SINCE_MARK);	/* both markers are that long */
		g = group_end(p);
		if (!g) {
			free(res);
			errno = EINVAL;
			return NULL;
		}
		if (!with) {
			wl = (size_t)(g - p);
			with = p;
		} else {
			wl = strlen(with);
		}
		if (n + wl + strlen(p) + 1 > cap) {
			cap = n + wl + strlen(p) + 1;
			nr = realloc(res, cap);
			if (!nr) {
				free(res);
				return NULL;
			}
			res = nr;
		}
		memcpy(res + n, with, wl);
		n += wl;
		p = g;
	}
	res[n] = '\0';
	if (!have_since) {
		free(res);
		errno = EINVAL;
		return NULL;
	}
	return res;
}

/* ---- the table ---- */

struct cell {
	char *s;
	size_t width;	/* in characters (UTF-8) */
};

/* one TSV field as shown: \\ and \' undone, other escapes kept, \N as "-" */
static int cell_of(const char *f, size_t len, struct cell *c)
{
	size_t n = 0, w = 0;

	c->s = malloc(len + 2);
	if (!c->s)
		return -ENOMEM;
	if (len == 2 && !memcmp(f, "\\N", 2)) {
		strcpy(c->s, "-");
		c->width = 1;
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)f[i];

		if (ch == '\\' && i + 1 < len && (f[i + 1] == '\\' || f[i + 1] == '\'')) {
			ch = (unsigned char)f[++i];
		} else if (ch < 0x20 || ch == 0x7f) {
			ch = '?';	/* not sent escaped: keep it off the terminal */
		}
		c->s[n++] = (char)ch;
		if ((ch & 0xc0) != 0x80)
			w++;
	}
	c->s[n] = '\0';
	c->width = w;
	return 0;
}

static bool numeric(const char *type)
{
	static const char *const num[] = { "UInt", "Int", "Float", "Decimal" };

	if (!strncmp(type, "Nullable(", 9))
		type += 9;
	for (size_t i = 0; i < sizeof(num) / sizeof(num[0]); i++)
		if (!strncmp(type, num[i], strlen(num[i])))
			return true;
	return false;
}

/* the lines of tsv split into fields: cells[row * cols + col] */
static int split(const char *tsv, struct cell **cells_out, size_t *rows_out, size_t *cols_out)
{
	size_t rows = 0, cols = 0, cap = 0, n = 0;
	struct cell *cells = NULL, *nc;
	const char *p = tsv;
	int rc = 0;

	while (*p && !rc) {
		const char *eol = strchr(p, '\n');
		size_t fields = 0;

		if (!eol)
			eol = p + strlen(p);
		for (const char *f = p; ; ) {
			const char *tab = memchr(f, '\t', (size_t)(eol - f));
			const char *fe = tab ? tab : eol;

			if (n == cap) {
				cap = cap ? cap * 2 : 64;
				nc = realloc(cells, cap * sizeof(*cells));
				if (!nc) {
					rc = -ENOMEM;
					break;
				}
				cells = nc;
			}
			rc = cell_of(f, (size_t)(fe - f), &cells[n]);
			if (rc)
				break;
			n++;
			fields++;
			if (!tab)
				break;
			f = tab + 1;
		}
		if (!rc && rows == 0)
			cols = fields;
		else if (!rc && fields != cols)
			rc = -EINVAL;
		rows++;
		p = *eol ? eol + 1 : eol;
	}
	if (!rc && rows < 2)
		rc = -EINVAL;
	if (rc) {
		for (size_t i = 0; i < n; i++)
			free(cells[i].s);
		free(cells);
		return rc;
	}
	*cells_out = cells;
	*rows_out = rows;
	*cols_out = cols;
	return 0;
}

static void pad(FILE *f, size_t n)
{
	while (n--)
		fputc(' ', f);
}

int query_table(const char *tsv, FILE *f)
{
	size_t rows, cols, *width;
	struct cell *cells;
	bool *right;
	int rc;

	rc = split(tsv, &cells, &rows, &cols);
	if (rc)
		return rc;
	width = calloc(cols, sizeof(*width));
	right = calloc(cols, sizeof(*right));
	if (!width || !right) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t c = 0; c < cols; c++) {
		right[c] = numeric(cells[cols + c].s);
		for (size_t r = 0; r < rows; r++)
			if (r != 1 && cells[r * cols + c].width > width[c])
				width[c] = cells[r * cols + c].width;
	}
	for (size_t r = 0; r < rows; r++) {
		if (r == 1) {	/* the types: a rule under the names instead */
			for (size_t c = 0; c < cols; c++) {
				fputs(c ? "  " : "", f);
				for (size_t i = 0; i < width[c]; i++)
					fputc('-', f);
			}
			fputc('\n', f);
			continue;
		}
		for (size_t c = 0; c < cols; c++) {
			const struct cell *x = &cells[r * cols + c];
			size_t gap = width[c] - x->width;

			fputs(c ? "  " : "", f);
			if (right[c])
				pad(f, gap);
			fputs(x->s, f);
			if (!right[c] && c + 1 < cols)
				pad(f, gap);
		}
		fputc('\n', f);
	}
	fprintf(f, "(%zu row%s)\n", rows - 2, rows == 3 ? "" : "s");
out:
	for (size_t i = 0; i < rows * cols; i++)
		free(cells[i].s);
	free(cells);
	free(width);
	free(right);
	return rc;
}

/* ---- the command ---- */

static void usage(FILE *f)
{
	fprintf(f,
"Usage: podsnoop-collector query NAME [OPTIONS]\n"
"       podsnoop-collector query --list\n"
"\n"
"Runs a shipped query (docs/clickhouse.md, Queries) against ClickHouse and prints\n"
"its answer as a table. The same SQL is installed as share/podsnoop/queries/NAME.sql\n"
"for clickhouse-client (the last hour there).\n"
"\n"
"      --since TIME          start of the window (default 1h): a duration ago\n"
"                            (90s, 15m, 2h, 7d), @UNIX seconds or\n"
"                            YYYY-MM-DDTHH:MM[:SS]Z\n"
"      --until TIME          end of the window (default now), the same forms\n"
"      --sql                 print the SQL with the window instead of running it\n"
"      --list                the query names, each with what it answers\n"
"      --clickhouse URL      (default http://127.0.0.1:8123)\n"
"      --clickhouse-database NAME  (default podsnoop)\n"
"      --clickhouse-user NAME, --clickhouse-password-file FILE,\n"
"      --clickhouse-ca FILE, --clickhouse-timeout-ms MS (default 10000)\n"
"\n"
"Exit status 2, with one line on stderr, when the query is unknown, an option\n"
"is wrong or ClickHouse cannot answer.\n");
}

static int fail(const char *fmt, const char *a, const char *b)
{
	char line[2048];

	snprintf(line, sizeof(line), fmt, a, b);
	for (char *p = line; *p; p++)	/* one line, whatever ClickHouse said */
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	for (size_t n = strlen(line); n && line[n - 1] == ' '; )
		line[--n] = '\0';
	fprintf(stderr, "podsnoop-collector: error: %s\n", line);
	return 2;
}

static char *read_password(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f)
		return NULL;
	n = getline(&line, &cap, f);
	fclose(f);
	if (n < 0) {
		free(line);
		line = strdup("");
		return line;
	}
	while (n && strchr("\r\n", line[n - 1]))
		line[--n] = '\0';
	return line;
}

/* the first comment line of a query, after "NAME: " */
static void print_list(void)
{
	for (const struct query_file *q = query_files; q->name; q++) {
		const char *s = q->sql, *eol = strchr(s, '\n'), *colon;

		if (!strncmp(s, "-- ", 3))
			s += 3;
		colon = strstr(s, ": ");
		if (colon && (!eol || colon < eol))
			s = colon + 2;
		printf("%-16s %.*s\n", q->name, (int)(eol ? eol - s : (long)strlen(s)), s);
	}
}

static char names[512];

static const char *all_names(void)
{
	size_t n = 0;

	for (const struct query_file *q = query_files; q->name && n < sizeof(names); q++)
		n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", n ? ", " : "",
				      q->name);
	return names;
}

int query_main(int argc, char **argv)
{
	enum { O_SINCE = 256, O_UNTIL, O_SQL, O_LIST, O_CH, O_CH_DB, O_CH_USER, O_CH_PASS,
	       O_CH_CA, O_CH_TIMEOUT };
	static const struct option lopts[] = {
		{ "since", required_argument, NULL, O_SINCE },
		{ "until", required_argument, NULL, O_UNTIL },
		{ "sql", no_argument, NULL, O_SQL },
		{ "list", no_argument, NULL, O_LIST },
		{ "clickhouse", required_argument, NULL, O_CH },
		{ "clickhouse-database", required_argument, NULL, O_CH_DB },
		{ "clickhouse-user", required_argument, NULL, O_CH_USER },
		{ "clickhouse-password-file", required_argument, NULL, O_CH_PASS },
		{ "clickhouse-ca", required_argument, NULL, O_CH_CA },
		{ "clickhouse-timeout-ms", required_argument, NULL, O_CH_TIMEOUT },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct ch_conf cc = {
		.url = "http://127.0.0.1:8123", .database = "podsnoop", .timeout_ms = 10000,
		.no_schema = true,
	};
	char since[64] = "", until[64] = "", err[1024], *sql = NULL, *full = NULL, *ans = NULL;
	const char *pass_file = NULL;
	const struct query_file *q;
	bool print_sql = false, list = false;
	int c, rc = 2;
	long st;
	char *e;

	while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (c) {
		case O_SINCE:
			if (query_time(optarg, since, sizeof(since)))
				return fail("--since '%s': not a duration (15m), @UNIX or "
					    "YYYY-MM-DDTHH:MM:SSZ%s", optarg, "");
			break;
		case O_UNTIL:
			if (query_time(optarg, until, sizeof(until)))
				return fail("--until '%s': not a duration (15m), @UNIX or "
					    "YYYY-MM-DDTHH:MM:SSZ%s", optarg, "");
			break;
		case O_SQL: print_sql = true; break;
		case O_LIST: list = true; break;
		case O_CH: cc.url = optarg; break;
		case O_CH_DB: cc.database = optarg; break;
		case O_CH_USER: cc.user = optarg; break;
		case O_CH_PASS: pass_file = optarg; break;
		case O_CH_CA: cc.ca = optarg; break;
		case O_CH_TIMEOUT:
			errno = 0;
			cc.timeout_ms = strtol(optarg, &e, 10);
			if (e == optarg || *e || errno || cc.timeout_ms < 100 ||
			    cc.timeout_ms > 3600000)
				return fail("--clickhouse-timeout-ms '%s': 100 to 3600000%s",
					    optarg, "");
			break;
		case 'h': usage(stdout); return 0;
		default:
			fprintf(stderr, "podsnoop-collector: error: see podsnoop-collector query "
				"--help\n");
			return 2;
		}
	}
	if (list) {
		print_list();
		return 0;
	}
	if (optind + 1 != argc)
		return fail("query: name one query (%s)%s", all_names(), "");
	q = query_find(argv[optind]);
	if (!q)
		return fail("query: no query '%s' (there are %s)", argv[optind], all_names());
	sql = query_window(q->sql, since[0] ? since : NULL, until[0] ? until : NULL);
	if (!sql)
		return fail("query %s: %s", q->name, strerror(errno));
	if (print_sql) {
		fputs(sql, stdout);
		free(sql);
		return 0;
	}
	if (pass_file) {
		cc.password = read_password(pass_file);
		if (!cc.password) {
			rc = fail("--clickhouse-password-file %s: %s", pass_file, strerror(errno));
			goto out;
		}
		if (!cc.user)
			cc.user = "default";
	}
	if (ch_init(&cc, err, sizeof(err))) {
		rc = fail("query %s: %s", q->name, err);
		goto out;
	}
	/* the file ends with its last clause; the format is ours */
	for (size_t n = strlen(sql); n && strchr(" \t\r\n;", sql[n - 1]); )
		sql[--n] = '\0';
	if (asprintf(&full, "%s\nFORMAT TabSeparatedWithNamesAndTypes", sql) < 0) {
		full = NULL;
		rc = fail("query %s: %s", q->name, strerror(ENOMEM));
		goto fini;
	}
	st = ch_query(full, &ans, err, sizeof(err));
	if (st / 100 != 2) {
		rc = fail("query %s: %s", q->name, err);
		goto fini;
	}
	if (query_table(ans, stdout)) {
		rc = fail("query %s: ClickHouse answered no table: %.200s", q->name, ans);
		goto fini;
	}
	rc = fflush(stdout) ? fail("query %s: stdout: %s", q->name, strerror(errno)) : 0;
fini:
	ch_fini();
out:
	free((char *)cc.password);
	free(ans);
	free(full);
	free(sql);
	return rc;
}
