// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/attrib/selector.h"

static bool key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '/';
}

static bool value_char(char c)
{
	return key_char(c) && c != '/';
}

static bool all(const char *s, size_t n, bool (*ok)(char))
{
	for (size_t i = 0; i < n; i++)
		if (!ok(s[i]))
			return false;
	return true;
}

static int parse_one(struct pod_selector *s, const char *r, size_t n, char *err, size_t errlen)
{
	struct sel_req q = { 0 };
	const char *op;
	size_t klen, vlen, oplen = 1;

	while (n && *r == ' ') {
		r++;
		n--;
	}
	while (n && r[n - 1] == ' ')
		n--;
	if (!n) {
		snprintf(err, errlen, "empty requirement");
		return -EINVAL;
	}
	if (s->n_reqs >= SEL_MAX_REQS) {
		snprintf(err, errlen, "more than %d requirements", SEL_MAX_REQS);
		return -EINVAL;
	}
	if ((op = memchr(r, '!', n)) && op + 1 < r + n && op[1] == '=') {
		q.op = SEL_NE;
		oplen = 2;
	} else if ((op = memchr(r, '=', n))) {
		q.op = SEL_EQ;
		if (op + 1 < r + n && op[1] == '=')
			oplen = 2;
	} else if (r[0] == '!') {
		q.op = SEL_NOT_EXISTS;
		op = NULL;
		r++;
		n--;
	} else {
		q.op = SEL_EXISTS;
		op = NULL;
	}
	klen = op ? (size_t)(op - r) : n;
	while (klen && r[klen - 1] == ' ')
		klen--;
	if (!klen || klen >= sizeof(q.key) || !all(r, klen, key_char)) {
		if (memmem(r, n, " in ", 4) || memmem(r, n, " notin ", 7) || memchr(r, '(', n))
			snprintf(err, errlen, "set-based requirements ('in', 'notin') are not "
				 "supported: '%.*s'", (int)n, r);
		else
			snprintf(err, errlen, "bad label key in '%.*s'", (int)n, r);
		return -EINVAL;
	}
	memcpy(q.key, r, klen);
	if (op) {
		const char *v = op + oplen;

		vlen = (size_t)(r + n - v);
		while (vlen && *v == ' ') {
			v++;
			vlen--;
		}
		if (vlen >= sizeof(q.value) || !all(v, vlen, value_char)) {
			snprintf(err, errlen, "bad label value in '%.*s'", (int)n, r);
			return -EINVAL;
		}
		memcpy(q.value, v, vlen);
	}
	s->reqs[s->n_reqs++] = q;
	return 0;
}

int sel_parse(struct pod_selector *s, const char *arg, char *err, size_t errlen)
{
	const char *p = arg, *comma;
	int rc;

	if (!arg || !*arg) {
		snprintf(err, errlen, "empty selector");
		return -EINVAL;
	}
	for (;;) {
		comma = strchr(p, ',');
		rc = parse_one(s, p, comma ? (size_t)(comma - p) : strlen(p), err, errlen);
		if (rc)
			return rc;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

bool sel_active(const struct pod_selector *s)
{
	return s->n_namespaces || s->n_pods || s->n_reqs;
}

static bool any(const char *const *list, size_t n, const char *v)
{
	for (size_t i = 0; i < n; i++)
		if (v && strcmp(list[i], v) == 0)
			return true;
	return false;
}

bool sel_match(const struct pod_selector *s, const char *namespace_, const char *name,
	       const char *const *keys, const char *const *values, size_t n_labels)
{
	if (s->n_namespaces && !any(s->namespaces, s->n_namespaces, namespace_))
		return false;
	if (s->n_pods && !any(s->pods, s->n_pods, name))
		return false;
	for (size_t i = 0; i < s->n_reqs; i++) {
		const struct sel_req *q = &s->reqs[i];
		const char *v = NULL;

		for (size_t j = 0; j < n_labels && !v; j++)
			if (strcmp(keys[j], q->key) == 0)
				v = values[j] ? values[j] : "";
		switch (q->op) {
		case SEL_EQ:
			if (!v || strcmp(v, q->value) != 0)
				return false;
			break;
		case SEL_NE: /* as Kubernetes: a missing label is "not equal" */
			if (v && strcmp(v, q->value) == 0)
				return false;
			break;
		case SEL_EXISTS:
			if (!v)
				return false;
			break;
		case SEL_NOT_EXISTS:
			if (v)
				return false;
			break;
		}
	}
	return true;
}
