/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef PS_AGENT_FS_H
#define PS_AGENT_FS_H

#include <stddef.h>
#include "agent/out/output.h"
#include "agent/tracers/tracer.h"

extern const struct tracer fs_tracer;

/* enum fs_type for "ext4", "xfs", "btrfs"; -1 for anything else. */
int fs_type_from_name(const char *name);

/* Room fs_decode() needs to join a path: every byte of buf plus a leading '/'. */
#define FS_JOINED_MAX (FS_PATH_MAX + FS_NAME_MAX + 1)

/*
 * Check a raw ring buffer record and build a view into it; -EINVAL when the
 * lengths or enums do not fit. The path is joined (root first) into out,
 * which must hold FS_JOINED_MAX bytes; v->path and v->name point into it.
 */
int fs_decode(const void *data, size_t size, char *out, struct fs_view *v);

#endif
