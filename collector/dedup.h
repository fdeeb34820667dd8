/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Which (agent_id, seq) the collector has written. Per agent: every seq up
 * to `contig` is seen, plus a sorted set of the ones above it (batches
 * arrive mostly in order, so the set stays small). Not thread-safe.
 */
#ifndef PS_COLLECTOR_DEDUP_H
#define PS_COLLECTOR_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DEDUP_ID_MAX 64
/* above this many out-of-order seqs, the oldest gap is given up as lost */
#define DEDUP_ABOVE_MAX 65536

struct dedup_agent {
	char id[DEDUP_ID_MAX + 1];
	uint64_t contig;
	uint64_t *above;
	size_t n, cap;
	struct dedup_agent *next;
};

struct dedup {
	struct dedup_agent *agents;
};

void dedup_init(struct dedup *d);
void dedup_free(struct dedup *d);
bool dedup_seen(struct dedup *d, const char *agent_id, uint64_t seq);
/* 0, or -ENOMEM */
int dedup_mark(struct dedup *d, const char *agent_id, uint64_t seq);

#endif
