// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>

#include "cgroup/idmap.h"

static inline uint64_t mix(uint64_t x)
{
	/* splitmix64's finalizer: ids are sequential, the slots must not be */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

uint64_t idmap_hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 0x100000001b3ull;
	}
	return h ? h : 1;
}

static int resize(struct idmap *m, size_t cap)
{
	struct idmap new = { 0 };

	new.keys = calloc(cap, sizeof(*new.keys));
	new.vals = calloc(cap, sizeof(*new.vals));
	if (!new.keys || !new.vals) {
		free(new.keys);
		free(new.vals);
		return -ENOMEM;
	}
	new.cap = cap;
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i])
			idmap_put(&new, m->keys[i], m->vals[i]);
	free(m->keys);
	free(m->vals);
	*m = new;
	return 0;
}

int idmap_init(struct idmap *m, size_t n)
{
	size_t cap = 16;

	while (cap < n + n / 2)
		cap <<= 1;
	*m = (struct idmap){ 0 };
	return resize(m, cap);
}

void idmap_free(struct idmap *m)
{
	free(m->keys);
	free(m->vals);
	*m = (struct idmap){ 0 };
}

int idmap_put(struct idmap *m, uint64_t key, void *val)
{
	size_t i;
	int err;

	if (!key)
		return -EINVAL;
	/* keep the load under 2/3 so probe chains stay short */
	if (!m->cap || (m->n + 1) * 3 > m->cap * 2) {
		err = resize(m, m->cap ? m->cap * 2 : 16);
		if (err)
			return err;
	}
	for (i = mix(key) & (m->cap - 1); m->keys[i]; i = (i + 1) & (m->cap - 1)) {
		if (m->keys[i] == key) {
			m->vals[i] = val;
			return 0;
		}
	}
	m->keys[i] = key;
	m->vals[i] = val;
	m->n++;
	return 0;
}

void *idmap_get(const struct idmap *m, uint64_t key)
{
	if (!m->cap || !key)
		return NULL;
	for (size_t i = mix(key) & (m->cap - 1); m->keys[i]; i = (i + 1) & (m->cap - 1))
		if (m->keys[i] == key)
			return m->vals[i];
	return NULL;
}

void *idmap_del(struct idmap *m, uint64_t key)
{
	size_t mask = m->cap - 1, i, j, home;
	void *old;

	if (!m->cap || !key)
		return NULL;
	for (i = mix(key) & mask; m->keys[i] != key; i = (i + 1) & mask)
		if (!m->keys[i])
			return NULL;
	old = m->vals[i];
	/* backward shift: move later members of the chain into the hole */
	for (j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
		home = mix(m->keys[j]) & mask;
		/* j's entry may move to i only if its home is not in (i, j] */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			i = j;
		}
	}
	m->keys[i] = 0;
	m->vals[i] = NULL;
	m->n--;
	return old;
}

size_t idmap_bytes(const struct idmap *m)
{
	return m->cap * (sizeof(*m->keys) + sizeof(*m->vals));
}

int idmap_next(const struct idmap *m, size_t *pos, uint64_t *key, void **val)
{
	for (; *pos < m->cap; (*pos)++) {
		if (m->keys[*pos]) {
			*key = m->keys[*pos];
			*val = m->vals[*pos];
			(*pos)++;
			return 1;
		}
	}
	return 0;
}
