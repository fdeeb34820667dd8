/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Housekeeping for BPF hash maps of in-flight state. */
#ifndef PS_MAPSWEEP_H
#define PS_MAPSWEEP_H

#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

/*
 * Delete the entries of hash map fd whose timestamp is more than max_age_ns
 * before now_ns (CLOCK_BOOTTIME). val is a buffer of the map's value size
 * and ts points to the timestamp inside it; keys are at most 64 bytes.
 * Returns how many entries were deleted.
 */
uint64_t map_sweep_stale(int fd, size_t key_size, void *val, const __u64 *ts, uint64_t now_ns,
			 uint64_t max_age_ns);

#endif
