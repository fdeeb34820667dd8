/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * cgroup birth and death, shared by bpf/cgwatch.bpf.c and agent/tracers/cgwatch.c:
 * the attribution cache learns a container's cgroup the moment runc makes it.
 */
#ifndef PS_CGWATCH_H
#define PS_CGWATCH_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define CGW_PATH_MAX	512	/* longer paths arrive cut (CGW_F_TRUNCATED) */

enum cgw_op { CGW_MKDIR = 1, CGW_RMDIR = 2 };

#define CGW_F_TRUNCATED	(1u << 0)

struct cgw_event {
	__u64 id;		/* kernfs id: the cgroup id in its hierarchy */
	__s32 root;		/* hierarchy id: 0 is the unified (v2) one */
	__s32 level;
	__u32 op;		/* enum cgw_op */
	__u32 flags;		/* CGW_F_* */
	char path[CGW_PATH_MAX]; /* relative to the hierarchy root, NUL-terminated */
};
_Static_assert(sizeof(struct cgw_event) == 24 + CGW_PATH_MAX, "cgw_event layout");

/* Counters in the per-CPU cgw_stats array. */
enum cgw_stat { CGW_STAT_SEEN, CGW_STAT_LOST, CGW_STAT_MAX };

#endif
