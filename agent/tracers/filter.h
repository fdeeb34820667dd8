/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The in-kernel selection: the filter maps every tracer object shares
 * (bpf/common.bpf.h). Created once here, handed to each object before load
 * and updated at run time as selections change.
 */
#ifndef PS_FILTER_H
#define PS_FILTER_H

#include <stdbool.h>
#include <stdint.h>
#include <bpf/libbpf.h>

int filter_init(void);
void filter_free(void);
/* Make obj use the shared maps instead of creating its own (before load). */
int filter_reuse_maps(struct bpf_object *obj);

/* Select tasks under the cgroup with this id at this level (0 = root). */
int filter_add_cgroup(uint64_t id, int level);
int filter_del_cgroup(uint64_t id, int level);
int filter_add_mntns(uint64_t id);
int filter_del_mntns(uint64_t id);
int filter_exclude_host(uint64_t host_mntns);
/*
 * Turn the kind of selection on even while its set is empty: a selector that
 * matches nothing yet (no such pod) must select nothing, not everything.
 */
int filter_enable(uint32_t flags);

#endif
