// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/attrib/defer.h"

/* A waiting record in the byte FIFO; the data follows, 8-byte aligned. */
struct rec {
	uint64_t deadline_ns, cgroup_id, mntns_id;
	ring_buffer_sample_fn fn;
	void *ctx;
	uint32_t size;		/* data bytes; WRAP: skip to the buffer start */
	uint32_t done;
};

#define WRAP UINT32_MAX

static char *buf;
static size_t cap, head, tail, used; /* used: bytes between head and tail, wasted tails included */
static size_t n_waiting;

static size_t rec_len(uint32_t size)
{
	return (sizeof(struct rec) + size + 7) & ~(size_t)7;
}

int defer_init(size_t bytes)
{
	cap = (bytes + 7) & ~(size_t)7;
	buf = malloc(cap);
	head = tail = used = n_waiting = 0;
	return buf ? 0 : -ENOMEM;
}

void defer_free(void)
{
	free(buf);
	buf = NULL;
	cap = head = tail = used = n_waiting = 0;
}

bool defer_push(const struct loop_sample *s, uint64_t deadline_ns, uint64_t cgroup_id,
		uint64_t mntns_id)
{
	size_t len = rec_len((uint32_t)s->size), waste = 0;
	struct rec *r;

	if (!buf || s->size > UINT32_MAX / 2 || len > cap)
		return false;
	if (tail + len > cap) {
		/* no room before the end: wrap, wasting the tail */
		waste = cap - tail;
		if (used + waste + len > cap)
			return false;
		if (waste >= sizeof(struct rec))
			((struct rec *)(buf + tail))->size = WRAP;
		used += waste;
		tail = 0;
	}
	if (used + len > cap)
		return false;
	r = (struct rec *)(buf + tail);
	r->deadline_ns = deadline_ns;
	r->cgroup_id = cgroup_id;
	r->mntns_id = mntns_id;
	r->fn = s->fn;
	r->ctx = s->ctx;
	r->size = (uint32_t)s->size;
	r->done = 0;
	memcpy(r + 1, s->data, s->size);
	tail = (tail + len) % cap;
	used += len;
	n_waiting++;
	return true;
}

size_t defer_pump(defer_ready_fn ready, void *ctx)
{
	size_t pos = head, left = used, n = 0;

	/* walk everything queued; free the done prefix as we go */
	while (left) {
		struct rec *r;
		size_t len;

		if (cap - pos < sizeof(struct rec) || ((struct rec *)(buf + pos))->size == WRAP) {
			left -= cap - pos;
			if (pos == head) {
				used -= cap - pos;
				head = 0;
			}
			pos = 0;
			continue;
		}
		r = (struct rec *)(buf + pos);
		len = rec_len(r->size);
		if (!r->done && ready(r->cgroup_id, r->mntns_id, r->deadline_ns, ctx)) {
			r->done = 1;
			n_waiting--;
			n++;
			r->fn(r->ctx, r + 1, r->size);
		}
		if (r->done && pos == head) {
			head = (head + len) % cap;
			used -= len;
		}
		pos = (pos + len) % cap;
		left -= len;
	}
	if (!used)
		head = tail = 0;
	return n;
}

size_t defer_pending(void)
{
	return n_waiting;
}
