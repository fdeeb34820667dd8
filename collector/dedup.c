// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector/dedup.h"

/* tree keys are ids: an agent starts with its id */
static int cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

void dedup_init(struct dedup *d, size_t max_agents)
{
	memset(d, 0, sizeof(*d));
	d->max_agents = max_agents ? max_agents : 1;
}

void dedup_free(struct dedup *d)
{
	tdestroy(d->root, free);
	d->root = NULL;
	d->newest = d->oldest = NULL;
	d->n_agents = 0;
}

static void unlink_agent(struct dedup *d, struct dedup_agent *a)
{
	*(a->newer ? &a->newer->older : &d->newest) = a->older;
	*(a->older ? &a->older->newer : &d->oldest) = a->newer;
	a->newer = a->older = NULL;
}

static void link_newest(struct dedup *d, struct dedup_agent *a)
{
	a->older = d->newest;
	*(d->newest ? &d->newest->newer : &d->oldest) = a;
	d->newest = a;
}

static struct dedup_agent *find(struct dedup *d, const char *id)
{
	void *node = tfind(id, &d->root, cmp);
	struct dedup_agent *a = node ? *(struct dedup_agent **)node : NULL;

	if (a && a != d->newest) {
		unlink_agent(d, a);
		link_newest(d, a);
	}
	return a;
}

static struct dedup_agent *add(struct dedup *d, const char *id)
{
	struct dedup_agent *a = calloc(1, sizeof(*a));
	void *node;

	if (!a)
		return NULL;
	snprintf(a->id, sizeof(a->id), "%s", id);
	if (d->n_agents >= d->max_agents) { /* forget the agent least recently seen */
		struct dedup_agent *old = d->oldest;

		unlink_agent(d, old);
		tdelete(old, &d->root, cmp);
		free(old);
		d->n_agents--;
		d->forgotten_agents++;
	}
	node = tsearch(a, &d->root, cmp);
	if (!node) {
		free(a);
		return NULL;
	}
	link_newest(d, a);
	d->n_agents++;
	return a;
}

/* index of the first range with hi >= seq */
static unsigned range_at(const struct dedup_agent *a, uint64_t seq)
{
	unsigned lo = 0, hi = a->n;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (a->r[mid].hi < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

bool dedup_seen(struct dedup *d, const char *agent_id, uint64_t seq)
{
	struct dedup_agent *a = find(d, agent_id);
	unsigned i;

	if (!a)
		return false;
	i = range_at(a, seq);
	return i < a->n && a->r[i].lo <= seq;
}

/* A range was used: it is kept longest. */
static void touch(struct dedup_agent *a, unsigned i)
{
	a->r[i].used = ++a->uses;
}

int dedup_mark(struct dedup *d, const char *agent_id, uint64_t seq)
{
	struct dedup_agent *a = find(d, agent_id);
	unsigned i, old;

	if (!a && !(a = add(d, agent_id)))
		return -ENOMEM;
	i = range_at(a, seq);
	if (i < a->n && a->r[i].lo <= seq) { /* seen */
		touch(a, i);
		return 0;
	}
	if (i > 0 && a->r[i - 1].hi + 1 == seq) { /* extends the range below */
		a->r[i - 1].hi = seq;
		if (i < a->n && a->r[i].lo == seq + 1) { /* and closes the gap above */
			a->r[i - 1].hi = a->r[i].hi;
			memmove(&a->r[i], &a->r[i + 1], (a->n - i - 1) * sizeof(a->r[0]));
			a->n--;
		}
		touch(a, i - 1);
		return 0;
	}
	if (i < a->n && a->r[i].lo == seq + 1) { /* extends the range above */
		a->r[i].lo = seq;
		touch(a, i);
		return 0;
	}
	if (a->n == DEDUP_RANGES) { /* forget the range least recently used */
		old = 0;
		for (unsigned k = 1; k < a->n; k++)
			if (a->r[k].used < a->r[old].used)
				old = k;
		memmove(&a->r[old], &a->r[old + 1], (a->n - old - 1) * sizeof(a->r[0]));
		a->n--;
		if (old < i)
			i--;
		d->forgotten_ranges++;
	}
	memmove(&a->r[i + 1], &a->r[i], (a->n - i) * sizeof(a->r[0]));
	a->r[i].lo = a->r[i].hi = seq;
	a->n++;
	touch(a, i);
	return 0;
}
