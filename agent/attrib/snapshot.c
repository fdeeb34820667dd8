// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "agent/attrib/snapshot.h"

#define CHUNK_SIZE 16384

struct snap_chunk {
	struct snap_chunk *next;
	size_t used, cap;
	char data[];
};

const struct attr snap_host_attr = { .state = AS_HOST };

static _Atomic(struct snap *) current;
static _Atomic uint64_t reader_gen;	/* gen of the snapshot the reader holds */
static uint64_t next_gen = 1;
/* replaced snapshots, oldest first, waiting for the reader to move on */
static struct snap *retired[256];
static size_t n_retired;

struct snap *snap_new(void)
{
	struct snap *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	if (idmap_init(&s->cg, 64) || idmap_init(&s->mnt, 16)) {
		snap_free(s);
		return NULL;
	}
	return s;
}

void snap_free(struct snap *s)
{
	struct snap_chunk *c, *n;

	if (!s)
		return;
	for (c = s->chunks; c; c = n) {
		n = c->next;
		free(c);
	}
	idmap_free(&s->cg);
	idmap_free(&s->mnt);
	free(s);
}

static void *alloc(struct snap *s, size_t n)
{
	struct snap_chunk *c = s->chunks;

	n = (n + 7) & ~(size_t)7;
	if (!c || c->used + n > c->cap) {
		size_t cap = n > CHUNK_SIZE ? n : CHUNK_SIZE;

		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = s->chunks;
		s->chunks = c;
		s->bytes += sizeof(*c) + cap;
	}
	c->used += n;
	return c->data + c->used - n;
}

static const char *copy(struct snap *s, const char *str)
{
	size_t n;
	char *p;

	if (!str || !*str)
		return "";
	n = strlen(str) + 1;
	p = alloc(s, n);
	if (p)
		memcpy(p, str, n);
	return p;
}

struct attr *snap_attr(struct snap *s, enum attr_state st, const char *namespace_,
		       const char *pod, const char *pod_uid, const char *container,
		       const char *container_id, const char *runtime)
{
	struct attr *a = alloc(s, sizeof(*a));

	if (!a)
		return NULL;
	a->state = (uint8_t)st;
	a->ref.namespace_ = copy(s, namespace_);
	a->ref.pod = copy(s, pod);
	a->ref.pod_uid = copy(s, pod_uid);
	a->ref.container = copy(s, container);
	a->ref.container_id = copy(s, container_id);
	a->ref.runtime = copy(s, runtime);
	if (!a->ref.namespace_ || !a->ref.pod || !a->ref.pod_uid || !a->ref.container ||
	    !a->ref.container_id || !a->ref.runtime)
		return NULL;
	return a;
}

size_t snap_bytes(const struct snap *s)
{
	return sizeof(*s) + s->bytes + idmap_bytes(&s->cg) + idmap_bytes(&s->mnt);
}

void snap_reclaim(void)
{
	uint64_t held = atomic_load_explicit(&reader_gen, memory_order_acquire);
	size_t keep = 0;

	/* the reader never goes back: everything older than what it holds is free */
	for (size_t i = 0; i < n_retired; i++) {
		if (retired[i]->gen < held)
			snap_free(retired[i]);
		else
			retired[keep++] = retired[i];
	}
	n_retired = keep;
}

bool snap_publish(struct snap *s)
{
	struct snap *old;

	snap_reclaim();
	if (n_retired == sizeof(retired) / sizeof(retired[0])) {
		/* the reader has not moved for a while (not started yet): try later */
		snap_free(s);
		return false;
	}
	s->gen = next_gen++;
	old = atomic_exchange_explicit(&current, s, memory_order_acq_rel);
	if (old)
		retired[n_retired++] = old;
	return true;
}

const struct snap *snap_acquire(void)
{
	struct snap *s = atomic_load_explicit(&current, memory_order_acquire);

	if (s)
		atomic_store_explicit(&reader_gen, s->gen, memory_order_release);
	return s;
}

size_t snap_current_bytes(void)
{
	struct snap *s = atomic_load_explicit(&current, memory_order_acquire);

	return s ? snap_bytes(s) : 0;
}

void snap_shutdown(void)
{
	for (size_t i = 0; i < n_retired; i++)
		snap_free(retired[i]);
	n_retired = 0;
	snap_free(atomic_exchange(&current, NULL));
	atomic_store(&reader_gen, 0);
}
