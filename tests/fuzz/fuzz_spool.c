// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Spool files read at start (agent/ship_spool.c, agent/ship_batch.c): a
 * .batch file an earlier run left, or anyone with access to the node's
 * spool directory put there, listed and read back as the shipper does, then
 * decoded (gunzip, Batch) as it is when the collector refuses it or the
 * agent stops with it unsent.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "fuzz.h"
#include "lib/batch.h"
#include "agent/ship/ship_spool.h"

#define NAME "00000000000000000001.batch"

static char dir[] = "/tmp/podsnoop-fuzz-spool-XXXXXX";
static char path[sizeof(dir) + sizeof(NAME) + 1];

static void cleanup(void)
{
	char lock[sizeof(dir) + 8];

	unlink(path);
	snprintf(lock, sizeof(lock), "%s/.lock", dir);
	unlink(lock);
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spool sp;
	struct batch *b;
	uint8_t *body;
	size_t len;
	uint64_t id;
	int fd, err;

	if (!path[0]) {
		if (!mkdtemp(dir))
			abort();
		snprintf(path, sizeof(path), "%s/%s", dir, NAME);
		atexit(cleanup);
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert(fd >= 0);
	assert(write(fd, data, size) == (ssize_t)size);
	close(fd);

	assert(spool_open(&sp, dir, 1ull << 30, 1u << 20) == 0);
	assert(spool_count(&sp) == 1 && sp.bytes == size);
	err = spool_head(&sp, &body, &len, &id);
	if (err) {
		assert(err == -EBADMSG && size == 0);
	} else {
		assert(len == size && id == 1 && memcmp(body, data, size) == 0);
		b = batch_from_body(body, len, id);
		assert(b);
		if (batch_load_meta(b, batch_max_raw(512 * 1024)) == 0)
			assert(b->have_meta && b->n_losses <= LOSS_KEYS_MAX);
		batch_free(b);
		assert(spool_remove_head(&sp, id) == 0);
	}
	assert(spool_count(&sp) == 0 && sp.bytes == 0);
	spool_close(&sp);
	return 0;
}
