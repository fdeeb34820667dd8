// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "agent/ship/ship_spool.h"

#define ID_DIGITS 20

static void name_of(uint64_t id, const char *suffix, char *buf, size_t size)
{
	snprintf(buf, size, "%0*" PRIu64 ".%s", ID_DIGITS, id, suffix);
}

/* id from "<20 digits>.<suffix>", or 0 */
static uint64_t id_of(const char *name, const char *suffix)
{
	uint64_t id = 0;

	if (strlen(name) != ID_DIGITS + 1 + strlen(suffix) || name[ID_DIGITS] != '.' ||
	    strcmp(name + ID_DIGITS + 1, suffix))
		return 0;
	for (int i = 0; i < ID_DIGITS; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		id = id * 10 + (uint64_t)(name[i] - '0');
	}
	return id;
}

static int push_id(struct spool *sp, uint64_t id, uint64_t size)
{
	if (sp->head && sp->head * 2 >= sp->n) { /* reuse the space of removed ids */
		memmove(sp->ents, sp->ents + sp->head, (sp->n - sp->head) * sizeof(*sp->ents));
		sp->n -= sp->head;
		sp->head = 0;
	}
	if (sp->n == sp->cap) {
		size_t cap = sp->cap ? sp->cap * 2 : 64;
		struct spool_ent *e = realloc(sp->ents, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		sp->ents = e;
		sp->cap = cap;
	}
	sp->ents[sp->n].id = id;
	sp->ents[sp->n].size = size;
	sp->n++;
	return 0;
}

static int cmp_id(const void *a, const void *b)
{
	uint64_t x = ((const struct spool_ent *)a)->id, y = ((const struct spool_ent *)b)->id;

	return x < y ? -1 : x > y;
}

/* A directory entry fit to be a batch: a regular file (not followed), of a batch's size. */
static int check_entry(const struct spool *sp, const struct stat *st)
{
	if (!S_ISREG(st->st_mode))
		return -ENOTSUP;
	if ((uint64_t)st->st_size > sp->max_file)
		return -EFBIG;
	return 0;
}

int spool_open(struct spool *sp, const char *dir, uint64_t max_bytes, uint64_t max_file)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int err, fd;

	memset(sp, 0, sizeof(*sp));
	sp->dirfd = sp->lockfd = -1;
	sp->max_bytes = max_bytes;
	sp->max_file = max_file;
	sp->next_id = 1;
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -errno;
	sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->dirfd < 0)
		return -errno;
	sp->lockfd = openat(sp->dirfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (sp->lockfd < 0) {
		err = -errno;
		goto fail;
	}
	if (flock(sp->lockfd, LOCK_EX | LOCK_NB)) {
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto fail;
	}
	fd = dup(sp->dirfd);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		err = -errno;
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	while ((de = readdir(d))) {
		uint64_t id;

		if (id_of(de->d_name, "tmp")) { /* a write the last run did not finish */
			unlinkat(sp->dirfd, de->d_name, 0);
			continue;
		}
		id = id_of(de->d_name, "batch");
		if (!id || fstatat(sp->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		err = check_entry(sp, &st);
		if (err) { /* not ours to send: left where it is, said by the caller */
			sp->ignored++;
			if (id >= sp->next_id)
				sp->next_id = id + 1; /* and never overwritten */
			continue;
		}
		err = push_id(sp, id, (uint64_t)st.st_size);
		if (err) {
			closedir(d);
			goto fail;
		}
		sp->bytes += (uint64_t)st.st_size;
		if (id >= sp->next_id)
			sp->next_id = id + 1;
	}
	closedir(d);
	if (sp->n)
		qsort(sp->ents, sp->n, sizeof(*sp->ents), cmp_id);
	return 0;
fail:
	spool_close(sp);
	return err;
}

void spool_close(struct spool *sp)
{
	if (sp->lockfd >= 0)
		close(sp->lockfd); /* releases the lock */
	if (sp->dirfd >= 0)
		close(sp->dirfd);
	free(sp->ents);
	memset(sp, 0, sizeof(*sp));
	sp->dirfd = sp->lockfd = -1;
}

int spool_put(struct spool *sp, const void *body, size_t len, uint64_t *id_out)
{
	char tmp[ID_DIGITS + 8], final[ID_DIGITS + 8];
	const uint8_t *p = body;
	uint64_t id = sp->next_id;
	size_t left = len;
	int fd, err = 0;

	if (sp->bytes + len > sp->max_bytes)
		return -EDQUOT; /* --spool-max-bytes; a full filesystem says -ENOSPC */
	name_of(id, "tmp", tmp, sizeof(tmp));
	name_of(id, "batch", final, sizeof(final));
	fd = openat(sp->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	while (left) {
		ssize_t w = write(fd, p, left);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		p += w;
		left -= (size_t)w;
	}
	/* durable before it is visible: a crash leaves the old state or the whole batch */
	if (!err && fdatasync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (!err && renameat(sp->dirfd, tmp, sp->dirfd, final))
		err = -errno;
	if (!err)
		err = push_id(sp, id, len);
	if (err) {
		unlinkat(sp->dirfd, tmp, 0);
		unlinkat(sp->dirfd, final, 0);
		return err;
	}
	sp->next_id++;
	sp->bytes += len;
	*id_out = id;
	return 0;
}

/* The head batch leaves the count: removed, or left on disk as not ours. */
static void drop_head(struct spool *sp)
{
	uint64_t size = sp->ents[sp->head].size;

	sp->bytes -= size < sp->bytes ? size : sp->bytes;
	sp->head++;
}

int spool_head(struct spool *sp, uint8_t **body, size_t *len, uint64_t *id_out)
{
	char name[ID_DIGITS + 8];
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	int fd, err;

	while (sp->head < sp->n) {
		uint64_t id = sp->ents[sp->head].id;

		name_of(id, "batch", name, sizeof(name));
		/*
		 * whoever can write the directory chooses what is there: never follow
		 * a symlink, never block on a FIFO or device, never read what no
		 * batch can be
		 */
		fd = openat(sp->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK |
			    O_NOCTTY);
		if (fd < 0 && errno == ENOENT) { /* removed behind our back */
			drop_head(sp);
			continue;
		}
		if (fd < 0) {
			err = -errno;
			drop_head(sp); /* unreadable: leave it on disk, go on with the next */
			return err;
		}
		err = fstat(fd, &st) ? -errno : check_entry(sp, &st);
		if (err) {
			close(fd);
			drop_head(sp);
			return err;
		}
		if (st.st_size <= 0) {
			close(fd);
			spool_remove_head(sp, id);
			return -EBADMSG;
		}
		buf = malloc((size_t)st.st_size);
		if (!buf) {
			close(fd);
			return -ENOMEM;
		}
		while (got < (size_t)st.st_size) {
			ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				/* unreadable (or cut while we read): leave it, go on with the next */
				err = r < 0 ? -errno : -EIO;
				free(buf);
				close(fd);
				drop_head(sp);
				return err;
			}
			got += (size_t)r;
		}
		close(fd);
		*body = buf;
		*len = got;
		*id_out = id;
		return 0;
	}
	return -ENOENT;
}

int spool_remove_head(struct spool *sp, uint64_t id)
{
	char name[ID_DIGITS + 8];

	if (sp->head >= sp->n || sp->ents[sp->head].id != id)
		return -EINVAL;
	name_of(id, "batch", name, sizeof(name));
	drop_head(sp);
	if (unlinkat(sp->dirfd, name, 0) && errno != ENOENT)
		return -errno;
	return 0;
}
