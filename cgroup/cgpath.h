/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Container and pod identity from a cgroup path, for the layouts real nodes
 * have: kubelet's cgroupfs and systemd drivers with containerd, CRI-O and
 * Docker, the ":runtime:id" forms, podman and runtimes without a prefix.
 * Pure string work: no filesystem access, no allocation.
 */
#ifndef PS_CGPATH_H
#define PS_CGPATH_H

#include <stddef.h>

#define CG_ID_LEN	64	/* container ids: 64 lowercase hex digits */
#define CG_UID_LEN	36	/* pod uid: 8-4-4-4-12, or 32 hex for static pods */

enum cg_kind {
	CG_KIND_HOST,		/* neither a pod nor a container: the node's own */
	CG_KIND_POD,		/* a pod's cgroup, or something in it not a container */
	CG_KIND_CONTAINER,	/* a container's cgroup or one of its descendants */
};

enum cg_qos { CG_QOS_NONE, CG_QOS_GUARANTEED, CG_QOS_BURSTABLE, CG_QOS_BESTEFFORT };

struct cg_ident {
	enum cg_kind kind;
	enum cg_qos qos;		/* for pods and their containers */
	char pod_uid[CG_UID_LEN + 1];	/* "" when not under a pod */
	char id[CG_ID_LEN + 1];		/* container id, "" unless CG_KIND_CONTAINER */
	const char *runtime;		/* "containerd", "cri-o", "docker", "podman"; "" unknown */
	int depth;			/* components up to and including the container's
					   (or the pod's) own: its cgroup level */
};

/*
 * Parse a cgroup path relative to its hierarchy root ("/kubepods/...", as in
 * /proc/PID/cgroup). Never fails on odd input: whatever is not recognised
 * is CG_KIND_HOST. -EINVAL only for NULL or a path not starting with '/'.
 */
int cg_parse_ident(const char *path, struct cg_ident *out);

const char *cg_kind_name(enum cg_kind kind);
const char *cg_qos_name(enum cg_qos qos);

/*
 * A container id as runtimes report it elsewhere: "containerd://<id>"
 * (kubelet's containerID), "cri-o://<id>", "docker://<id>" or a bare id.
 * Writes the id and the runtime name (NULL when there is no prefix);
 * -EINVAL when it is not a valid id.
 */
int cg_parse_runtime_id(const char *s, char id[CG_ID_LEN + 1], const char **runtime);

#endif
