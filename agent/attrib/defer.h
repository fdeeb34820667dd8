/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Records waiting for their pod's metadata: raw ring buffer records copied
 * into one preallocated FIFO (no allocation per record), each handed back to
 * its tracer's callback once its pod is known or its deadline has passed.
 * Event loop thread only.
 */
#ifndef PS_DEFER_H
#define PS_DEFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/loop.h"

int defer_init(size_t bytes);
void defer_free(void);

/* Copy the record aside; false when there is no room (the caller emits it now). */
bool defer_push(const struct loop_sample *s, uint64_t deadline_ns, uint64_t cgroup_id,
		uint64_t mntns_id);

/* ready(): may the record go out now? Called in FIFO order for each waiting record. */
typedef bool (*defer_ready_fn)(uint64_t cgroup_id, uint64_t mntns_id, uint64_t deadline_ns,
			       void *ctx);
/* Hand back the records ready() approves (their callbacks run here). Returns how many. */
size_t defer_pump(defer_ready_fn ready, void *ctx);
size_t defer_pending(void);

#endif
