/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the event path reads to attribute a record: an immutable snapshot of
 * cgroup id -> pod and mount namespace -> pod, built by the metadata thread
 * and swapped in whole. The one reader (the event loop) takes the newest
 * snapshot at a quiescent point (between drains); the writer frees an old
 * snapshot only once the reader has moved past it. Lookups never lock,
 * block or allocate.
 */
#ifndef PS_SNAPSHOT_H
#define PS_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/out/output.h"
#include "cgroup/idmap.h"

enum attr_state {
	AS_HOST,	/* known, not in a pod: never attributed, never waited for */
	AS_FULL,	/* pod and container known */
	AS_PENDING,	/* a container or pod whose metadata is being fetched */
	AS_PARTIAL,	/* a container nobody could name: what its cgroup path says */
};

struct attr {
	struct pod_ref ref;	/* strings in the snapshot; "" when unknown */
	uint8_t state;		/* enum attr_state */
};

struct snap_chunk;

struct snap {
	uint64_t gen;
	bool by_mntns;		/* cgroup ids tell nothing (v1 node): use mntns */
	uint64_t host_mntns;
	struct idmap cg;	/* cgroup id -> const struct attr * */
	struct idmap mnt;	/* mntns inode -> const struct attr * */
	struct snap_chunk *chunks;
	size_t bytes;
};

extern const struct attr snap_host_attr;

struct snap *snap_new(void);
void snap_free(struct snap *s);
/* A new attr with copies of the strings (NULL -> ""). NULL when out of memory. */
struct attr *snap_attr(struct snap *s, enum attr_state st, const char *namespace_,
		       const char *pod, const char *pod_uid, const char *container,
		       const char *container_id, const char *runtime);
size_t snap_bytes(const struct snap *s);

/* Writer (metadata thread). */
/* Swap s in (gen is set here); false (s freed) when the reader lags: retry later. */
bool snap_publish(struct snap *s);
void snap_reclaim(void);		/* free what the reader has left behind */
void snap_shutdown(void);		/* after the reader stopped: free everything */
size_t snap_current_bytes(void);

/* Reader (event loop): the newest snapshot; the previous one is released. */
const struct snap *snap_acquire(void);

#endif
