/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Housekeeping for BPF hash maps of in-flight state. */
#ifndef PS_MAPSWEEP_H
#define PS_MAPSWEEP_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

/*
 * Delete the entries of hash map fd whose __u64 timestamp, at byte ts_off of
 * the value, is more than max_age_ns before now_ns (in the timestamp's own
 * clock). A timestamp of 0 is an entry still being written, never stale. The
 * key and value sizes come from the map itself, so a value struct that grows
 * is still swept. *deleted gets how many entries were deleted. Returns 0 or
 * -errno (ts_off outside the value: -EINVAL).
 */
int map_sweep_stale(int fd, size_t ts_off, uint64_t now_ns, uint64_t max_age_ns,
		    uint64_t *deleted);

/*
 * map_sweep_stale() as a tracer's tick runs it: the entries deleted are added
 * to the tracer's counter *orphaned (counter_add()); a map that cannot be swept
 * is said once per agent, naming it, and its entries wait for the next sweep.
 */
struct bpf_map;
void map_sweep_orphans(const struct bpf_map *map, size_t ts_off, uint64_t now_ns,
		       uint64_t max_age_ns, uint64_t *orphaned);

/* ts_off of a __u64 timestamp field, checked to be one */
#define MAP_SWEEP_TS(type, field)                                                          \
	(offsetof(type, field) +                                                           \
	 0 * sizeof(char[sizeof(((type *)0)->field) == sizeof(__u64) ? 1 : -1]))

#endif
