/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The metadata thread: what cgroups, containers and pods exist on this node,
 * from the cgroup tree and the cgroup_mkdir/rmdir tracepoints, the CRI and
 * the kubelet. Publishes snapshots for the event path (snapshot.h) and keeps
 * the in-kernel filter maps equal to the Kubernetes selection. attrib.c
 * drives it; how it is built: meta_int.h.
 */
#ifndef PS_META_H
#define PS_META_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/config.h"

/*
 * Start the thread and wait up to wait_ms for its first full sync; 0 or
 * -errno (nothing left running).
 */
int meta_start(const struct ps_config *cfg, int wait_ms);
void meta_halt(void);	/* join the thread; tables stay for the summary */
void meta_stop(void);	/* free everything; safe when meta_start failed or never ran */
/* Counters, memory, CRI and kubelet latencies, on stderr (after meta_halt()). */
void meta_summary(void);
/*
 * From the event loop (any thread): an id the snapshot does not know, a
 * cgroup id or (mntns) a mount namespace; meta_kick() wakes the thread for
 * the requests queued since. Never blocks: a full queue counts a drop.
 */
void meta_request(uint64_t key, bool mntns);
void meta_kick(void);
/* Set the /readyz "metadata" component again (after the endpoints reset it). */
void meta_health_reapply(void);
/* Attribution is by mount namespace (cgroup v1 nodes), not cgroup id. */
bool meta_by_mntns(void);

#endif
