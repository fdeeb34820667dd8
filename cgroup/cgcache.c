// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "cgroup/cgcache.h"
#include "cgroup/cgroup.h"

/* The kernfs file handle type (include/linux/exportfs.h: FILEID_KERNFS). */
#define PS_FILEID_KERNFS 0xfe

int cg_cache_init(struct cg_cache *c, const char *v2_mount)
{
	int err;

	memset(c, 0, sizeof(*c));
	c->mount_fd = -1;
	if (!v2_mount || !*v2_mount || strlen(v2_mount) >= sizeof(c->mount))
		return -EINVAL;
	strcpy(c->mount, v2_mount);
	/* "/" as mount point: relative paths are appended to "" */
	if (strcmp(c->mount, "/") == 0)
		c->mount[0] = '\0';
	err = idmap_init(&c->by_id, 256);
	if (!err)
		err = idmap_init(&c->by_path, 256);
	if (!err) {
		c->mount_fd = open(v2_mount, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (c->mount_fd < 0)
			err = -errno;
	}
	if (err)
		cg_cache_free(c);
	return err;
}

static void entry_free(struct cg_cache *c, struct cg_entry *e)
{
	c->bytes -= sizeof(*e) + strlen(e->path) + 1;
	free(e->path);
	free(e);
}

void cg_cache_free(struct cg_cache *c)
{
	struct cg_entry *e;
	uint64_t k;
	void *v;

	for (size_t i = 0; idmap_next(&c->by_id, &i, &k, &v);) {
		e = v;
		entry_free(c, e);
	}
	idmap_free(&c->by_id);
	idmap_free(&c->by_path);
	if (c->mount_fd >= 0)
		close(c->mount_fd);
	c->mount_fd = -1;
}

struct cg_entry *cg_cache_get(const struct cg_cache *c, uint64_t id)
{
	return idmap_get(&c->by_id, id);
}

struct cg_entry *cg_cache_find(const struct cg_cache *c, const char *rel)
{
	struct cg_entry *e = idmap_get(&c->by_path, idmap_hash_str(rel));
	uint64_t k;
	void *v;

	if (e && strcmp(e->path, rel) == 0)
		return e;
	if (!e)
		return NULL;
	/* a hash collision (never seen in practice): look everywhere */
	for (size_t i = 0; idmap_next(&c->by_id, &i, &k, &v);)
		if (strcmp(((struct cg_entry *)v)->path, rel) == 0)
			return v;
	return NULL;
}

static void unindex_path(struct cg_cache *c, struct cg_entry *e)
{
	uint64_t h = idmap_hash_str(e->path);

	if (idmap_get(&c->by_path, h) == e)
		idmap_del(&c->by_path, h);
}

int cg_cache_add(struct cg_cache *c, uint64_t id, const char *rel, struct cg_entry **out)
{
	struct cg_entry *e = idmap_get(&c->by_id, id);
	char *path;
	int err;

	if (!id || !rel || rel[0] != '/')
		return -EINVAL;
	if (e && strcmp(e->path, rel) == 0) {
		e->removed_ns = 0;
		goto done;
	}
	path = strdup(rel);
	if (!path)
		return -ENOMEM;
	if (e) { /* renamed (cgroup2 allows rename within a parent) */
		unindex_path(c, e);
		c->bytes -= strlen(e->path) + 1;
		free(e->path);
	} else {
		e = calloc(1, sizeof(*e));
		if (!e) {
			free(path);
			return -ENOMEM;
		}
		e->id = id;
		err = idmap_put(&c->by_id, id, e);
		if (err) {
			free(e);
			free(path);
			return err;
		}
		c->bytes += sizeof(*e);
	}
	e->path = path;
	c->bytes += strlen(path) + 1;
	e->level = cg_level(path);
	e->removed_ns = 0;
	cg_parse_ident(path, &e->ident);
	/* a collision leaves the older entry indexed; cg_cache_find copes */
	if (!idmap_get(&c->by_path, idmap_hash_str(path)))
		idmap_put(&c->by_path, idmap_hash_str(path), e);
done:
	if (out)
		*out = e;
	return 0;
}

int cg_cache_remove(struct cg_cache *c, uint64_t id)
{
	struct cg_entry *e = idmap_del(&c->by_id, id);

	if (!e)
		return -ENOENT;
	unindex_path(c, e);
	entry_free(c, e);
	return 0;
}

/* nftw has no user pointer: the walk in progress, one per thread */
static __thread struct cg_cache *walk_cache;
static __thread size_t walk_skip;
static __thread int walk_err;

static int walk_fn(const char *fpath, const struct stat *st, int type, struct FTW *ftw)
{
	const char *rel = fpath + walk_skip;
	int err;

	(void)ftw;
	if (type != FTW_D)
		return 0;
	/* cgroup2 inode numbers are the cgroup ids on 64-bit kernels */
	err = cg_cache_add(walk_cache, st->st_ino, *rel ? rel : "/", NULL);
	if (err && err != -EINVAL) {
		walk_err = err;
		return 1;
	}
	return 0;
}

int cg_cache_scan(struct cg_cache *c, const char *rel_root)
{
	char root[8192];
	int ret;

	if (snprintf(root, sizeof(root), "%s%s", c->mount,
		     strcmp(rel_root, "/") == 0 && c->mount[0] ? "" : rel_root) >= (int)sizeof(root))
		return -ENAMETOOLONG;
	walk_cache = c;
	walk_skip = strlen(c->mount);
	walk_err = 0;
	/* FTW_MOUNT: a cgroup2 mount never spans filesystems; FTW_PHYS: no links */
	ret = nftw(root[0] ? root : "/", walk_fn, 16, FTW_PHYS | FTW_MOUNT);
	walk_cache = NULL;
	if (ret < 0)
		return -errno;
	return walk_err;
}

int cg_cache_resolve(struct cg_cache *c, uint64_t id, struct cg_entry **out)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = { .fh.handle_bytes = sizeof(uint64_t), .fh.handle_type = PS_FILEID_KERNFS, .id = id };
	char link[64], target[8192];
	size_t mlen = strlen(c->mount);
	ssize_t n;
	int fd, err;

	fd = open_by_handle_at(c->mount_fd, &h.fh, O_RDONLY | O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	err = n < 0 ? -errno : 0;
	close(fd);
	if (err)
		return err;
	target[n] = '\0';
	if (strncmp(target, c->mount, mlen) != 0 || (target[mlen] && target[mlen] != '/'))
		return -EXDEV; /* not under our mount (another namespace's view) */
	return cg_cache_add(c, id, target[mlen] ? target + mlen : "/", out);
}

size_t cg_cache_bytes(const struct cg_cache *c)
{
	return c->bytes + idmap_bytes(&c->by_id) + idmap_bytes(&c->by_path);
}

struct cg_entry *cg_cache_next(const struct cg_cache *c, size_t *pos)
{
	uint64_t k;
	void *v;

	return idmap_next(&c->by_id, pos, &k, &v) ? v : NULL;
}
