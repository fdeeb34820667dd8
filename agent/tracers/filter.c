// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "agent/tracers/filter.h"
#include "bpf/common.h"

static int cfg_fd = -1, cgroup_fd = -1, mntns_fd = -1;
static struct ps_filter_cfg cur;
/* selected cgroups per level, so a level's bit clears with its last cgroup */
static unsigned int level_refs[PS_CGROUP_MAX_LEVEL];

static int push_cfg(void)
{
	__u32 zero = 0;

	return bpf_map_update_elem(cfg_fd, &zero, &cur, BPF_ANY) ? -errno : 0;
}

int filter_init(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, ids_opts, .map_flags = BPF_F_NO_PREALLOC);
	int err;

	/* a fresh selection: nothing of an earlier init/free cycle carries over */
	memset(&cur, 0, sizeof(cur));
	memset(level_refs, 0, sizeof(level_refs));
	/* names, types and sizes must equal the maps in common.bpf.h */
	cfg_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "ps_filter_cfg", sizeof(__u32),
				sizeof(struct ps_filter_cfg), 1, NULL);
	if (cfg_fd < 0)
		goto err;
	/* the id sets are allocated as they fill: most nodes select a few ids of 16384 */
	cgroup_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "ps_cgroup_ids", sizeof(__u64),
				   sizeof(__u8), PS_FILTER_MAX_IDS, &ids_opts);
	if (cgroup_fd < 0)
		goto err;
	mntns_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "ps_mntns_ids", sizeof(__u64),
				  sizeof(__u8), PS_FILTER_MAX_IDS, &ids_opts);
	if (mntns_fd < 0)
		goto err;
	err = push_cfg();
	if (err)
		filter_free();
	return err;
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
 *
 * Programs read the configuration while push_cfg() copies a new one over it,
 * without a lock: an id keeps its slot for as long as it is selected, so a
 * torn read sees every unchanged id where it was (a pod added by a selector
 * must not hide the pods already selected, even for an instant). Emptied
 * slots hold 0, no cgroup's id. Going from the hash to the slots takes two
 * copies: the ids first, then the flag that makes programs use them.
 */
static bool inline_has(__u64 id)
{
	for (int i = 0; i < PS_FILTER_INLINE_IDS; i++)
		if (cur.inline_ids[i] == id)
			return true;
	return false;
}

static bool inline_put(__u64 id)
{
	for (int i = 0; i < PS_FILTER_INLINE_IDS; i++)
		if (!cur.inline_ids[i]) {
			cur.inline_ids[i] = id;
			return true;
		}
	return false;
}

/* ids in the cgroup set: each is counted at its level */
static unsigned int selected_cgroups(void)
{
	unsigned int n = 0;

	for (int i = 0; i < PS_CGROUP_MAX_LEVEL; i++)
		n += level_refs[i];
	return n;
}

static int sync_inline(void)
{
	unsigned int n_cgroups = selected_cgroups();
	__u64 key, next, *prev = NULL;
	__u8 one;
	int err;

	/* ids no longer selected leave their slots */
	for (int i = 0; i < PS_FILTER_INLINE_IDS; i++)
		if (cur.inline_ids[i] && bpf_map_lookup_elem(cgroup_fd, &cur.inline_ids[i], &one))
			cur.inline_ids[i] = 0;
	if (!n_cgroups || n_cgroups > PS_FILTER_INLINE_IDS) {
		cur.n_inline = 0; /* the hash serves; the slots are ignored */
		return push_cfg();
	}
	while (!bpf_map_get_next_key(cgroup_fd, prev, &next)) {
		if (!inline_has(next) && !inline_put(next)) {
			cur.n_inline = 0; /* more than counted: stay with the hash */
			return push_cfg();
		}
		key = next;
		prev = &key;
	}
	if (!cur.n_inline) {
		err = push_cfg(); /* the ids in place before programs look at them */
		if (err)
			return err;
	}
	cur.n_inline = n_cgroups;
	return push_cfg();
}

int filter_add_cgroup(uint64_t id, int level)
{
	__u8 one = 1;

	if (level < 0 || level >= PS_CGROUP_MAX_LEVEL)
		return -ERANGE;
	if (bpf_map_update_elem(cgroup_fd, &id, &one, BPF_NOEXIST))
		return errno == EEXIST ? 0 : -errno;
	level_refs[level]++;
	cur.cgroup_levels |= 1u << level;
	cur.flags |= PS_F_CGROUP;
	return sync_inline();
}

int filter_del_cgroup(uint64_t id, int level)
{
	if (level < 0 || level >= PS_CGROUP_MAX_LEVEL)
		return -ERANGE;
	if (bpf_map_delete_elem(cgroup_fd, &id))
		return -errno;
	if (level_refs[level] && --level_refs[level] == 0)
		cur.cgroup_levels &= ~(1u << level);
	return sync_inline();
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
