/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * cgroup v2 id <-> path, both ways, with what each path says about its
 * container and pod. Filled by one walk of the tree, then kept current by
 * whoever learns of new cgroups (the cgroup_mkdir/rmdir tracepoints, in the
 * agent) with cg_cache_add()/cg_cache_remove(); an id nobody announced is
 * resolved alone through its file handle (cg_cache_resolve), never by walking
 * the tree again. Not thread-safe: one owner.
 */
#ifndef PS_CGCACHE_H
#define PS_CGCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "cgroup/cgpath.h"
#include "cgroup/idmap.h"

struct cg_entry {
	uint64_t id;
	char *path;		/* relative to the cgroup2 root: "/kubepods/..." */
	int level;		/* cg_level(path) */
	struct cg_ident ident;	/* parsed from path */
	uint64_t removed_ns;	/* when rmdir was seen (caller's clock); 0: alive */
	uint32_t user;		/* free for the owner */
};

struct cg_cache {
	char mount[4096];	/* the cgroup2 mount point */
	int mount_fd;		/* for open_by_handle_at */
	struct idmap by_id;	/* id -> entry */
	struct idmap by_path;	/* idmap_hash_str(path) -> entry */
	size_t bytes;		/* entries and paths */
};

int cg_cache_init(struct cg_cache *c, const char *v2_mount);
void cg_cache_free(struct cg_cache *c);

/* Add or update id -> rel; *out (optional) gets the entry. */
int cg_cache_add(struct cg_cache *c, uint64_t id, const char *rel, struct cg_entry **out);
struct cg_entry *cg_cache_get(const struct cg_cache *c, uint64_t id);
struct cg_entry *cg_cache_find(const struct cg_cache *c, const char *rel);
/* Forget it; 0 or -ENOENT. */
int cg_cache_remove(struct cg_cache *c, uint64_t id);

/* Walk the tree below rel_root ("/" for all) and add every cgroup. */
int cg_cache_scan(struct cg_cache *c, const char *rel_root);

/*
 * Find the path of an id this cache does not know, from the id alone:
 * open_by_handle_at() on the cgroup2 mount (the id is the kernfs file handle)
 * and readlink of the result. -ESTALE or -ENOENT when the cgroup is gone.
 */
int cg_cache_resolve(struct cg_cache *c, uint64_t id, struct cg_entry **out);

/* Memory the cache holds, tables included. */
size_t cg_cache_bytes(const struct cg_cache *c);

/* Iterate over entries: for (size_t i = 0; (e = cg_cache_next(c, &i)); ) */
struct cg_entry *cg_cache_next(const struct cg_cache *c, size_t *pos);

#endif
