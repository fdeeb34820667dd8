// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include "agent/out/output.h"

#define MAX_SINKS 8

static struct {
	const struct sink_ops *ops;
	void *priv;
} sinks[MAX_SINKS];
static int n_sinks;
static attrib_fn attrib;
static defer_fn defer;

void out_set_attrib(attrib_fn fn)
{
	attrib = fn;
}

void out_set_defer(defer_fn fn)
{
	defer = fn;
}

bool out_attribute(uint64_t cgroup_id, uint64_t mntns_id, const struct pod_ref **pod)
{
	if (defer && defer(cgroup_id, mntns_id))
		return false;
	*pod = attrib ? attrib(cgroup_id, mntns_id) : NULL;
	return true;
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
	if (!out_attribute(v->e->cgroup_id, v->e->mntns_id, &v->pod))
		return;
	for (int i = 0; i < n_sinks; i++)
		if (sinks[i].ops->exec)
			sinks[i].ops->exec(sinks[i].priv, v);
}

void out_open(struct open_view *v)
{
	if (!out_attribute(v->e->cgroup_id, v->e->mntns_id, &v->pod))
		return;
	for (int i = 0; i < n_sinks; i++)
		if (sinks[i].ops->open)
			sinks[i].ops->open(sinks[i].priv, v);
}

void out_bio(struct bio_view *v)
{
	if (!out_attribute(v->e->cgroup_id, v->e->mntns_id, &v->pod))
		return;
	for (int i = 0; i < n_sinks; i++)
		if (sinks[i].ops->bio)
			sinks[i].ops->bio(sinks[i].priv, v);
}

void out_bio_hist(struct bio_hist_view *v)
{
	/* made on a timer, not from a ring buffer record: never waits */
	if (!out_attribute(v->cgroup_id, 0, &v->pod))
		return;
	for (int i = 0; i < n_sinks; i++)
		if (sinks[i].ops->bio_hist)
			sinks[i].ops->bio_hist(sinks[i].priv, v);
}

void out_fs(struct fs_view *v)
{
	if (!out_attribute(v->e->cgroup_id, v->e->mntns_id, &v->pod))
		return;
	for (int i = 0; i < n_sinks; i++)
		if (sinks[i].ops->fs)
			sinks[i].ops->fs(sinks[i].priv, v);
}

void out_cache(struct cache_view *v)
{
	/* made on a timer, not from a ring buffer record: never waits */
	if (!out_attribute(v->cgroup_id, v->mntns_id, &v->pod))
		return;
	for (int i = 0; i < n_sinks; i++)
		if (sinks[i].ops->cache)
			sinks[i].ops->cache(sinks[i].priv, v);
}

void out_loss(const struct loss_rec *rec)
{
	struct loss_rec l = *rec;

	/* never waits for the pod: a loss is said now, with the pod when it is known */
	if (l.has_cgroup && attrib)
		l.pod = attrib(l.cgroup_id, 0);
	for (int i = 0; i < n_sinks; i++)
		if (sinks[i].ops->loss)
			sinks[i].ops->loss(sinks[i].priv, &l);
}

void out_flush(void)
{
	for (int i = 0; i < n_sinks; i++)
		if (sinks[i].ops->flush)
			sinks[i].ops->flush(sinks[i].priv);
}
