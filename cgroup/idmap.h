/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A hash map from a nonzero 64-bit id (cgroup id, mount namespace inode) to a
 * pointer: open addressing, linear probing, deletion by backward shift.
 * Lookups touch no memory but the table and never allocate, so a map that is
 * no longer modified can be read from any thread.
 */
#ifndef PS_IDMAP_H
#define PS_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap {
	uint64_t *keys;		/* 0: empty slot */
	void **vals;
	size_t cap;		/* a power of two, or 0 */
	size_t n;
};

/* Empty map with room for at least n entries before it grows. */
int idmap_init(struct idmap *m, size_t n);
void idmap_free(struct idmap *m);
/* Insert or replace; -EINVAL for key 0, -ENOMEM. */
int idmap_put(struct idmap *m, uint64_t key, void *val);
void *idmap_get(const struct idmap *m, uint64_t key);
/* Remove; returns the value that was there (NULL if none). */
void *idmap_del(struct idmap *m, uint64_t key);
/* Bytes the table itself uses. */
size_t idmap_bytes(const struct idmap *m);

/* Iterate: for (size_t i = 0; idmap_next(m, &i, &k, &v); ) -- no changes meanwhile. */
int idmap_next(const struct idmap *m, size_t *pos, uint64_t *key, void **val);

uint64_t idmap_hash_str(const char *s);

#endif
