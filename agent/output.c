// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include "output.h"

#define MAX_SINKS 4

static struct {
	const struct sink_ops *ops;
	void *priv;
} sinks[MAX_SINKS];
static int n_sinks;
static attrib_fn attrib;

void out_set_attrib(attrib_fn fn)
{
	attrib = fn;
}

int out_add_sink(const struct sink_ops *ops, void *priv)
{
	if (n_sinks >= MAX_SINKS)
		return -ENOSPC;
	sinks[n_sinks].ops = ops;
	sinks[n_sinks].priv = priv;
	n_sinks++;
	return 0;
}

void out_exec(struct exec_view *v)
{
	v->pod = attrib ? attrib(v->e->cgroup_id, v->e->mntns_id) : NULL;
	for (int i = 0; i < n_sinks; i++)
		sinks[i].ops->exec(sinks[i].priv, v);
}

void out_fs(struct fs_view *v)
{
	v->pod = attrib ? attrib(v->e->cgroup_id, v->e->mntns_id) : NULL;
	for (int i = 0; i < n_sinks; i++)
		if (sinks[i].ops->fs)
			sinks[i].ops->fs(sinks[i].priv, v);
}

void out_cache(struct cache_view *v)
{
	v->pod = attrib ? attrib(v->cgroup_id, v->mntns_id) : NULL;
	for (int i = 0; i < n_sinks; i++)
		if (sinks[i].ops->cache)
			sinks[i].ops->cache(sinks[i].priv, v);
}

void out_loss(const struct loss_rec *l)
{
	for (int i = 0; i < n_sinks; i++)
		sinks[i].ops->loss(sinks[i].priv, l);
}

void out_flush(void)
{
	for (int i = 0; i < n_sinks; i++)
		sinks[i].ops->flush(sinks[i].priv);
}

const char *exec_method_name(uint32_t method)
{
	switch (method) {
	case EXEC_M_SYSCALLS: return "syscalls";
	case EXEC_M_SCHED_BTF: return "sched_btf";
	case EXEC_M_SCHED_RAW: return "sched_raw";
	default: return "unknown";
	}
}
