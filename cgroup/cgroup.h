/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * cgroup/: cgroup mounts, ids and paths. A library: no logging, no knowledge
 * of the agent; every function returns 0 or a negative errno.
 */
#ifndef PS_CGROUP_H
#define PS_CGROUP_H

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

enum cg_mode {
	CG_MODE_NONE,	/* no cgroup filesystem mounted */
	CG_MODE_V1,	/* only v1 hierarchies: every task shares one v2 cgroup */
	CG_MODE_HYBRID,	/* v1 controllers plus a cgroup2 mount (e.g. .../unified) */
	CG_MODE_V2,	/* unified hierarchy only */
};

struct cg_layout {
	enum cg_mode mode;
	char v2_mount[PATH_MAX]; /* where cgroup2 is mounted, "" if nowhere */
};

const char *cg_mode_name(enum cg_mode mode);

/* Parse a /proc/<pid>/mountinfo stream. */
int cg_layout_parse(FILE *mountinfo, struct cg_layout *out);
/* Same, for this process's mount namespace. */
int cg_layout_detect(struct cg_layout *out);

/*
 * The cgroup v2 id of a directory: what bpf_get_current_cgroup_id() returns
 * for tasks in it (the kernfs node id, via name_to_handle_at()).
 */
int cg_id_from_path(const char *path, uint64_t *id);

/*
 * Resolve a user-given cgroup: either a path in the filesystem under the
 * cgroup2 mount ("/sys/fs/cgroup/unified/kubepods") or a path relative to the
 * cgroup2 root ("/kubepods" or "kubepods"). Writes the absolute directory and
 * its path relative to the root (starting with '/'; "/" for the root).
 * -ENOENT when no such cgroup directory exists, -ENOTDIR when not a
 * directory, -ENODEV when cgroup2 is not mounted.
 */
int cg_resolve(const struct cg_layout *layout, const char *arg, char *abs, size_t abs_len,
	       char *rel, size_t rel_len);

/* Depth of a root-relative cgroup path: "/" is 0, "/a" is 1, "/a/b" is 2. */
int cg_level(const char *rel);

/*
 * Parse a /proc/<pid>/cgroup stream: the path in the unified hierarchy (the
 * "0::" line) when hierarchy is NULL, else the path of the v1 hierarchy with
 * that controller ("memory", "pids", "name=systemd"). -ENOENT if absent.
 */
int cg_proc_path_parse(FILE *proc_cgroup, const char *hierarchy, char *buf, size_t len);
int cg_pid_path(int pid, const char *hierarchy, char *buf, size_t len);

/*
 * The mount namespace of a process (the inode of /proc/<pid>/ns/mnt): on
 * cgroup v1-only nodes every task shares one v2 cgroup, and the mount
 * namespace is what tells containers apart.
 */
int cg_pid_mntns(int pid, uint64_t *ino);

#endif /* PS_CGROUP_H */
