// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/tracers/mapsweep.h"
#include "agent/tracers/tracer.h"
#include "agent/log.h"

int map_sweep_stale(int fd, size_t ts_off, uint64_t now_ns, uint64_t max_age_ns,
		    uint64_t *deleted)
{
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info);
	unsigned char *key, *next, *val;
	void *prev = NULL;
	__u64 ts;
	int err;

	*deleted = 0;
	err = bpf_obj_get_info_by_fd(fd, &info, &info_len);
	if (err)
		return err;
	if (!info.key_size || ts_off + sizeof(ts) > info.value_size)
		return -EINVAL;
	key = malloc(2 * (size_t)info.key_size + info.value_size);
	if (!key)
		return -ENOMEM;
	next = key + info.key_size;
	val = next + info.key_size;
	while (bpf_map_get_next_key(fd, prev, next) == 0) {
		memcpy(key, next, info.key_size);
		prev = key;
		if (bpf_map_lookup_elem(fd, key, val))
			continue;
		memcpy(&ts, val + ts_off, sizeof(ts));
		if (ts && now_ns > ts && now_ns - ts > max_age_ns &&
		    bpf_map_delete_elem(fd, key) == 0) {
			(*deleted)++;
			prev = NULL; /* the walk restarts after a delete */
		}
	}
	free(key);
	return 0;
}

void map_sweep_orphans(const struct bpf_map *map, size_t ts_off, uint64_t now_ns,
		       uint64_t max_age_ns, uint64_t *orphaned)
{
	static bool warned;
	uint64_t n;
	int err;

	err = map_sweep_stale(bpf_map__fd(map), ts_off, now_ns, max_age_ns, &n);
	if (err && !warned) {
		warned = true;
		pr_warn("cannot sweep %s: %s", bpf_map__name(map), strerror(-err));
	}
	counter_add(orphaned, n);
}
