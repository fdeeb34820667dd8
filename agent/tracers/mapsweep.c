// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <string.h>
#include <bpf/bpf.h>

#include "agent/tracers/mapsweep.h"

uint64_t map_sweep_stale(int fd, size_t key_size, void *val, const __u64 *ts, uint64_t now_ns,
			 uint64_t max_age_ns)
{
	unsigned char key[64], next[64];
	void *prev = NULL;
	uint64_t n = 0;

	if (key_size > sizeof(key))
		return 0;
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, key_size);
		prev = key;
		if (bpf_map_lookup_elem(fd, key, val) == 0 && now_ns > *ts &&
		    now_ns - *ts > max_age_ns && bpf_map_delete_elem(fd, key) == 0) {
			n++;
			prev = NULL; /* the walk restarts after a delete */
		}
	}
	return n;
}
