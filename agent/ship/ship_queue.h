/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The hand-off from the event loop to the shipper thread: closed batches,
 * bounded by their bytes. The event loop only ever try-pushes (the lock is
 * held for a few pointer updates, never across I/O); the shipper waits.
 */
#ifndef PS_SHIP_QUEUE_H
#define PS_SHIP_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/batch.h"

struct ship_queue {
	pthread_mutex_t mu;
	pthread_cond_t cond;		/* a push, or stop */
	struct batch *head, *tail;
	size_t n;
	uint64_t bytes, max_bytes;
	uint64_t pushes;		/* changes when a batch arrives */
	bool stopping;
	uint64_t deadline_ns;		/* CLOCK_MONOTONIC, once stopping */
};

int shipq_init(struct ship_queue *q, uint64_t max_bytes);
void shipq_destroy(struct ship_queue *q); /* frees what is left */
/*
 * Queue b (the queue owns it on success). -ENOSPC when it would take the
 * queue beyond max_bytes; a batch larger than that still fits an empty queue.
 */
int shipq_push(struct ship_queue *q, struct batch *b);
struct batch *shipq_pop(struct ship_queue *q);	/* NULL when empty */
/* Put a popped batch back in front (it could not be moved on). */
void shipq_unpop(struct ship_queue *q, struct batch *b);
uint64_t shipq_bytes(struct ship_queue *q);
/* Wait while the queue is empty and not stopping. */
void shipq_wait_item(struct ship_queue *q);
/*
 * Wait until a push after the one *seen counts, stop, or until_ns
 * (CLOCK_MONOTONIC); updates *seen.
 */
void shipq_wait_change(struct ship_queue *q, uint64_t until_ns, uint64_t *seen);
/* Start stopping: the shipper flushes until deadline_ns. */
void shipq_stop(struct ship_queue *q, uint64_t deadline_ns);
bool shipq_stopping(struct ship_queue *q, uint64_t *deadline_ns);

#endif
