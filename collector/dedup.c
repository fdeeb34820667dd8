// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/dedup.h"

void dedup_init(struct dedup *d)
{
	d->agents = NULL;
}

void dedup_free(struct dedup *d)
{
	struct dedup_agent *a = d->agents, *next;

	for (; a; a = next) {
		next = a->next;
		free(a->above);
		free(a);
	}
	d->agents = NULL;
}

static struct dedup_agent *find(struct dedup *d, const char *id, bool create)
{
	struct dedup_agent **pp, *a;

	for (pp = &d->agents; (a = *pp); pp = &a->next) {
		if (!strcmp(a->id, id)) {
			*pp = a->next; /* to the front: the next batch is likely the same agent's */
			a->next = d->agents;
			d->agents = a;
			return a;
		}
	}
	if (!create)
		return NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	snprintf(a->id, sizeof(a->id), "%s", id);
	a->next = d->agents;
	d->agents = a;
	return a;
}

/* index of the first element >= seq */
static size_t lower_bound(const struct dedup_agent *a, uint64_t seq)
{
	size_t lo = 0, hi = a->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a->above[mid] < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool dedup_seen(struct dedup *d, const char *agent_id, uint64_t seq)
{
	struct dedup_agent *a = find(d, agent_id, false);
	size_t i;

	if (!a)
		return false;
	if (seq <= a->contig)
		return true;
	i = lower_bound(a, seq);
	return i < a->n && a->above[i] == seq;
}

static void advance(struct dedup_agent *a)
{
	size_t k = 0;

	while (k < a->n && a->above[k] == a->contig + 1) {
		a->contig++;
		k++;
	}
	if (k) {
		memmove(a->above, a->above + k, (a->n - k) * sizeof(*a->above));
		a->n -= k;
	}
}

int dedup_mark(struct dedup *d, const char *agent_id, uint64_t seq)
{
	struct dedup_agent *a = find(d, agent_id, true);
	size_t i;

	if (!a)
		return -ENOMEM;
	if (seq <= a->contig)
		return 0;
	if (seq == a->contig + 1) {
		a->contig = seq;
		advance(a);
		return 0;
	}
	i = lower_bound(a, seq);
	if (i < a->n && a->above[i] == seq)
		return 0;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		uint64_t *nb = realloc(a->above, cap * sizeof(*nb));

		if (!nb)
			return -ENOMEM;
		a->above = nb;
		a->cap = cap;
	}
	memmove(a->above + i + 1, a->above + i, (a->n - i) * sizeof(*a->above));
	a->above[i] = seq;
	a->n++;
	if (a->n > DEDUP_ABOVE_MAX) { /* a gap that will never fill: give it up */
		a->contig = a->above[0];
		memmove(a->above, a->above + 1, (a->n - 1) * sizeof(*a->above));
		a->n--;
		advance(a);
	}
	return 0;
}
