/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Which (agent_id, seq) the collector has written, in bounded memory.
 * Per agent: the seqs seen as a few disjoint ranges (batches arrive in
 * order, with a gap where one was refused, so an agent needs one range per
 * gap). Each batch marks only its own seq: nothing marks a range it did not
 * send, so batches spoofed for an agent's id can cost it duplicates, never
 * make one of its batches look seen before it was. Past DEDUP_RANGES an
 * agent's range least recently used, and past max_agents the agent least
 * recently seen, are forgotten: a retry of what was forgotten is written
 * again (a duplicate, not a loss). Not thread-safe.
 */
#ifndef PS_COLLECTOR_DEDUP_H
#define PS_COLLECTOR_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEDUP_ID_MAX 64
#define DEDUP_RANGES 16
#define DEDUP_AGENTS_DEF 16384

struct dedup_range {
	uint64_t lo, hi;	/* inclusive */
	uint64_t used;		/* when it was last marked or seen (the agent's uses) */
};

struct dedup_agent {
	char id[DEDUP_ID_MAX + 1];	/* first: the tree's key */
	unsigned n;
	uint64_t uses;
	struct dedup_range r[DEDUP_RANGES];	/* ascending, disjoint, not adjacent */
	struct dedup_agent *newer, *older;	/* by last use */
};

struct dedup {
	void *root;			/* tsearch(3) tree of agents, by id */
	struct dedup_agent *newest, *oldest;
	size_t n_agents, max_agents;
	uint64_t forgotten_agents, forgotten_ranges;
};

void dedup_init(struct dedup *d, size_t max_agents);
void dedup_free(struct dedup *d);
bool dedup_seen(struct dedup *d, const char *agent_id, uint64_t seq);
/* 0, or -ENOMEM */
int dedup_mark(struct dedup *d, const char *agent_id, uint64_t seq);

#endif
