/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The on-disk spool: batches the collector could not take yet, one file
 * each (<20-digit id>.batch holding the gzip body exactly as POSTed),
 * oldest first. Written as <id>.tmp, synced and renamed, so a killed agent
 * leaves only whole batches (stray .tmp files are removed at open). A lock
 * file keeps two agents out of one directory. Used by the shipper thread
 * only; returns -errno and does not log.
 */
#ifndef PS_SHIP_SPOOL_H
#define PS_SHIP_SPOOL_H

#include <stddef.h>
#include <stdint.h>

struct spool {
	int dirfd, lockfd;
	uint64_t max_bytes;
	uint64_t max_file;	/* a .batch file larger than this is none of ours */
	size_t ignored;		/* .batch entries spool_open left alone: not regular, too large */
	uint64_t bytes;		/* sum of the batch files' sizes, as listed or written */
	struct spool_ent {
		uint64_t id, size;
	} *ents;		/* ents[head..n): the batches, oldest first */
	size_t head, n, cap;
	uint64_t next_id;
};

/*
 * Create dir if missing (one level), lock it, list what an earlier run left:
 * regular files up to max_file bytes (symlinks are not followed); other
 * .batch entries stay where they are, counted in ignored, never sent.
 */
int spool_open(struct spool *sp, const char *dir, uint64_t max_bytes, uint64_t max_file);
void spool_close(struct spool *sp);
static inline size_t spool_count(const struct spool *sp)
{
	return sp->n - sp->head;
}
/*
 * Append a batch; its id in *id. -EDQUOT when it would exceed max_bytes;
 * -ENOSPC (a full filesystem) or another -errno when it cannot be written.
 */
int spool_put(struct spool *sp, const void *body, size_t len, uint64_t *id);
/*
 * The oldest batch, read into a malloc'd buffer. -ENOENT when empty;
 * -EBADMSG for an empty file (it is removed); -ELOOP for a symlink,
 * -ENOTSUP for another file that is not regular (a FIFO is never waited on),
 * -EFBIG beyond max_file, another -errno for a file that cannot be read:
 * those stay on disk. After an error the next call gives the next.
 */
int spool_head(struct spool *sp, uint8_t **body, size_t *len, uint64_t *id);
/* Remove the oldest batch, which must be id. */
int spool_remove_head(struct spool *sp, uint64_t id);

#endif
