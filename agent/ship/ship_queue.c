// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include <time.h>

#include "agent/ship/ship_queue.h"

int shipq_init(struct ship_queue *q, uint64_t max_bytes)
{
	pthread_condattr_t ca;
	int err;

	memset(q, 0, sizeof(*q));
	q->max_bytes = max_bytes;
	err = pthread_mutex_init(&q->mu, NULL);
	if (err)
		return -err;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	err = pthread_cond_init(&q->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (err) {
		pthread_mutex_destroy(&q->mu);
		return -err;
	}
	return 0;
}

void shipq_destroy(struct ship_queue *q)
{
	struct batch *b;

	while ((b = shipq_pop(q)))
		batch_free(b);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->mu);
}

int shipq_push(struct ship_queue *q, struct batch *b)
{
	int err = 0;

	pthread_mutex_lock(&q->mu);
	if (q->n && q->bytes + b->len > q->max_bytes) {
		err = -ENOSPC;
	} else {
		b->next = NULL;
		if (q->tail)
			q->tail->next = b;
		else
			q->head = b;
		q->tail = b;
		q->n++;
		q->bytes += b->len;
		q->pushes++;
		pthread_cond_signal(&q->cond);
	}
	pthread_mutex_unlock(&q->mu);
	return err;
}

struct batch *shipq_pop(struct ship_queue *q)
{
	struct batch *b;

	pthread_mutex_lock(&q->mu);
	b = q->head;
	if (b) {
		q->head = b->next;
		if (!q->head)
			q->tail = NULL;
		q->n--;
		q->bytes -= b->len;
		b->next = NULL;
	}
	pthread_mutex_unlock(&q->mu);
	return b;
}

void shipq_unpop(struct ship_queue *q, struct batch *b)
{
	pthread_mutex_lock(&q->mu);
	b->next = q->head;
	q->head = b;
	if (!q->tail)
		q->tail = b;
	q->n++;
	q->bytes += b->len;
	pthread_mutex_unlock(&q->mu);
}

uint64_t shipq_bytes(struct ship_queue *q)
{
	uint64_t v;

	pthread_mutex_lock(&q->mu);
	v = q->bytes;
	pthread_mutex_unlock(&q->mu);
	return v;
}

void shipq_wait_item(struct ship_queue *q)
{
	pthread_mutex_lock(&q->mu);
	while (!q->head && !q->stopping)
		pthread_cond_wait(&q->cond, &q->mu);
	pthread_mutex_unlock(&q->mu);
}

void shipq_wait_change(struct ship_queue *q, uint64_t until_ns, uint64_t *seen)
{
	struct timespec ts = { (time_t)(until_ns / 1000000000ull), (long)(until_ns % 1000000000ull) };
	bool was_stopping;

	pthread_mutex_lock(&q->mu);
	was_stopping = q->stopping;
	while (q->pushes == *seen && q->stopping == was_stopping)
		if (pthread_cond_timedwait(&q->cond, &q->mu, &ts) == ETIMEDOUT)
			break;
	*seen = q->pushes;
	pthread_mutex_unlock(&q->mu);
}

void shipq_stop(struct ship_queue *q, uint64_t deadline_ns)
{
	pthread_mutex_lock(&q->mu);
	q->stopping = true;
	q->deadline_ns = deadline_ns;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->mu);
}

bool shipq_stopping(struct ship_queue *q, uint64_t *deadline_ns)
{
	bool s;

	pthread_mutex_lock(&q->mu);
	s = q->stopping;
	if (deadline_ns)
		*deadline_ns = q->deadline_ns;
	pthread_mutex_unlock(&q->mu);
	return s;
}
