/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef PS_AGENT_CACHE_H
#define PS_AGENT_CACHE_H

#include <stdbool.h>
#include "agent/out/output.h"
#include "agent/tracers/tracer.h"
#include "bpf/cache.h"

extern const struct tracer cache_tracer;

/*
 * Fill v's counters from one interval's counts d (differences of the
 * kernel's totals), as bcc's cachestat does:
 *   accesses = accessed (fentry/kprobe: minus buffers dirtied, as bcc)
 *   misses   = max(0, added - dirtied)   pages read in, not written new
 *   hits     = max(0, accesses - misses)
 *   ratio    = hits / (hits + misses)
 * accesses_known false: the method had no access count (hits and ratio
 * unknown).
 */
void cache_compute(const struct cache_val *d, uint32_t method, bool accesses_known,
		   struct cache_view *v);

/* Buffers: and Cached: from a /proc/meminfo text, in KiB; -EINVAL if absent. */
int cache_parse_meminfo(const char *text, uint64_t *buffers_kb, uint64_t *cached_kb);

#endif
