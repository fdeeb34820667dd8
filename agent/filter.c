// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "filter.h"
#include "../bpf/common.h"

static int cfg_fd = -1, cgroup_fd = -1, mntns_fd = -1;
static struct ps_filter_cfg cur;
/* selected cgroups per level, so a level's bit clears with its last cgroup */
static unsigned int level_refs[PS_CGROUP_MAX_LEVEL];
static unsigned int n_cgroups; /* ids in the cgroup set */

static int push_cfg(void)
{
	__u32 zero = 0;

	return bpf_map_update_elem(cfg_fd, &zero, &cur, BPF_ANY) ? -errno : 0;
}

int filter_init(void)
{
	int err;

	/* names, types and sizes must equal the maps in common.bpf.h */
	cfg_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ps_filter_cfg", sizeof(__u32),
				sizeof(struct ps_filter_cfg), 1, NULL);
	if (cfg_fd < 0)
		goto err;
	cgroup_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "ps_cgroup_ids", sizeof(__u64),
				   sizeof(__u8), PS_FILTER_MAX_IDS, NULL);
	if (cgroup_fd < 0)
		goto err;
	mntns_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "ps_mntns_ids", sizeof(__u64),
				  sizeof(__u8), PS_FILTER_MAX_IDS, NULL);
	if (mntns_fd < 0)
		goto err;
	return push_cfg();
err:
	err = -errno;
	filter_free();
	return err;
}

void filter_free(void)
{
	if (cfg_fd >= 0)
		close(cfg_fd);
	if (cgroup_fd >= 0)
		close(cgroup_fd);
	if (mntns_fd >= 0)
		close(mntns_fd);
	cfg_fd = cgroup_fd = mntns_fd = -1;
}

int filter_reuse_maps(struct bpf_object *obj)
{
	static const char *const names[] = { "ps_filter_cfg", "ps_cgroup_ids", "ps_mntns_ids" };
	const int fds[] = { cfg_fd, cgroup_fd, mntns_fd };
	struct bpf_map *map;
	int err;

	for (int i = 0; i < 3; i++) {
		map = bpf_object__find_map_by_name(obj, names[i]);
		if (!map)
			return -ENOENT;
		err = bpf_map__reuse_fd(map, fds[i]);
		if (err)
			return err;
	}
	return 0;
}

/*
 * While the cgroup set is small, the BPF side compares its ids inline
 * (PS_FILTER_INLINE_IDS) instead of looking them up in the hash. The hash
 * always holds the whole set: it is updated first, so a task is never
 * missed for long while the configuration catches up.
 */
static void sync_inline(void)
{
	__u64 key, next, *prev = NULL;
	__u32 n = 0;

	cur.n_inline = 0;
	memset(cur.inline_ids, 0, sizeof(cur.inline_ids)); /* 0 is no cgroup's id */
	if (!n_cgroups || n_cgroups > PS_FILTER_INLINE_IDS)
		return;
	while (!bpf_map_get_next_key(cgroup_fd, prev, &next)) {
		if (n == PS_FILTER_INLINE_IDS)
			return; /* more than counted: stay with the hash */
		cur.inline_ids[n++] = next;
		key = next;
		prev = &key;
	}
	cur.n_inline = n;
}

int filter_add_cgroup(uint64_t id, int level)
{
	__u8 one = 1;

	if (level < 0 || level >= PS_CGROUP_MAX_LEVEL)
		return -ERANGE;
	if (bpf_map_update_elem(cgroup_fd, &id, &one, BPF_NOEXIST))
		return errno == EEXIST ? 0 : -errno;
	level_refs[level]++;
	n_cgroups++;
	cur.cgroup_levels |= 1u << level;
	cur.flags |= PS_F_CGROUP;
	sync_inline();
	return push_cfg();
}

int filter_del_cgroup(uint64_t id, int level)
{
	if (level < 0 || level >= PS_CGROUP_MAX_LEVEL)
		return -ERANGE;
	if (bpf_map_delete_elem(cgroup_fd, &id))
		return -errno;
	if (n_cgroups)
		n_cgroups--;
	if (level_refs[level] && --level_refs[level] == 0)
		cur.cgroup_levels &= ~(1u << level);
	sync_inline();
	return push_cfg();
}

int filter_add_mntns(uint64_t id)
{
	__u8 one = 1;

	if (bpf_map_update_elem(mntns_fd, &id, &one, BPF_ANY))
		return -errno;
	cur.flags |= PS_F_MNTNS;
	return push_cfg();
}

int filter_del_mntns(uint64_t id)
{
	return bpf_map_delete_elem(mntns_fd, &id) ? -errno : 0;
}

int filter_exclude_host(uint64_t host_mntns)
{
	cur.host_mntns = host_mntns;
	cur.flags |= PS_F_EXCLUDE_HOST;
	return push_cfg();
}

int filter_enable(uint32_t flags)
{
	cur.flags |= flags;
	return push_cfg();
}
