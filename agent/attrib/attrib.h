/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Pod attribution: cgroup id (and mount namespace, on cgroup v1 nodes) to
 * namespace/pod/container, for every record of every tracer.
 *
 * A metadata thread (meta.h) keeps a cache of cgroups (learned from the
 * cgroup_mkdir/rmdir tracepoints), containers and pods (from the CRI and the
 * kubelet), publishes it as immutable snapshots, and turns --namespace/
 * --pod/--selector into ids in the in-kernel filter maps. The event loop
 * (attrib.c) only reads snapshots: a record from a container whose metadata
 * is still on its way waits (copied aside, bounded in time and space) or
 * goes out with what is known; nothing is dropped and everything is counted.
 */
#ifndef PS_ATTRIB_H
#define PS_ATTRIB_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/config.h"

/*
 * Start the metadata thread and wait (bounded) for its first full sync, so
 * pods running at start are attributed and selected from the first event.
 * Registers the attribution with the outputs. 0 or -errno.
 */
int attrib_start(const struct ps_config *cfg);
/* Event loop, after each drain: take the newest snapshot, release waiting records. */
void attrib_pump(void);
/* At stop, after the last drain: let waiting records out (bounded wait), stop the thread. */
void attrib_finish(void);
/* Stop the thread, free everything. Safe when attrib_start failed or never ran. */
void attrib_stop(void);
/* Counters, CRI latencies and memory, on stderr. */
void attrib_summary(void);

struct attrib_stats {
	uint64_t attributed;	/* full pod identity */
	uint64_t partial;	/* a container, identified only by its cgroup path */
	uint64_t unattributed;	/* host tasks, unknown cgroups */
	uint64_t deferred;	/* records that waited for metadata */
	uint64_t wait_expired;	/* ... and went out when their wait ran out */
	uint64_t defer_full;	/* could not wait (no room): went out at once */
	uint64_t max_wait_ns;	/* longest wait of a record */
};
void attrib_get_stats(struct attrib_stats *s);

#endif
