// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Pod selection (meta_int.h): --namespace, --pod and --selector matched
 * against every pod the sources know, the matching pods' cgroup ids (their
 * pod-level cgroup, or each container's where there is none; mount
 * namespaces on cgroup v1 nodes) kept in the in-kernel filter maps as pods
 * come and go.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/attrib/meta_int.h"
#include "agent/attrib/selector.h"
#include "agent/log.h"
#include "agent/tracers/filter.h"
#include "bpf/common.h"

static struct {
	struct pod_selector sel;
	bool selecting;
	struct idmap installed;		/* filter ids -> level + 1 */
} sl;

static bool pod_matches(const struct mpod *p)
{
	const char *keys[512], *vals[512];
	size_t n = 0;

	/* the kubelet's labels are the pod's current ones; the CRI's fill in */
	for (size_t i = 0; i < p->n_kl_labels && n < 512; i++, n++) {
		keys[n] = p->kl_labels[i].k;
		vals[n] = p->kl_labels[i].v;
	}
	for (size_t i = 0; i < p->n_cri_labels && n < 512; i++) {
		bool dup = false;

		for (size_t j = 0; j < p->n_kl_labels && !dup; j++)
			dup = strcmp(p->kl_labels[j].k, p->cri_labels[i].k) == 0;
		if (!dup) {
			keys[n] = p->cri_labels[i].k;
			vals[n++] = p->cri_labels[i].v;
		}
	}
	return sel_match(&sl.sel, p->ns, p->name, keys, vals, n);
}

static void want(struct idmap *w, uint64_t key, int level)
{
	if (key && !idmap_get(w, key))
		idmap_put(w, key, (void *)(intptr_t)(level + 1));
}

void select_update(void)
{
	struct idmap w;
	struct cg_entry *e;
	struct mpod *p;
	uint64_t k;
	void *v;
	int err;

	if (!sl.selecting || idmap_init(&w, 64))
		return;
	for (size_t i = 0; idmap_next(&store.pods, &i, &k, &v);) {
		p = v;
		p->selected = pod_matches(p);
	}
	if (store.by_mntns) {
		for (size_t i = 0; idmap_next(&store.ctrs, &i, &k, &v);) {
			struct mctr *c = v;

			if (c->mntns && (p = store_pod(c->pod_uid)) && p->selected)
				want(&w, c->mntns, 0);
		}
	} else if (store.have_cache) {
		/* a pod's own cgroup covers its containers, present and future */
		for (size_t i = 0; (e = cg_cache_next(&store.cache, &i));)
			if (e->ident.kind == CG_KIND_POD && e->level == e->ident.depth &&
			    (p = store_pod(e->ident.pod_uid)) && p->selected && !e->removed_ns)
				want(&w, e->id, e->level);
		/* layouts without a pod cgroup: each container's own */
		for (size_t i = 0; (e = cg_cache_next(&store.cache, &i));) {
			struct cg_entry *pc;
			char parent[4096];
			char *slash;

			if (e->ident.kind != CG_KIND_CONTAINER || e->level != e->ident.depth ||
			    e->removed_ns)
				continue;
			p = e->ident.pod_uid[0] ? store_pod(e->ident.pod_uid) : NULL;
			if (!p) {
				struct mctr *c = store_ctr(e->ident.id);

				p = c ? store_pod(c->pod_uid) : NULL;
			}
			if (!p || !p->selected)
				continue;
			snprintf(parent, sizeof(parent), "%s", e->path);
			slash = strrchr(parent, '/');
			if (slash && slash != parent)
				*slash = '\0';
			pc = cg_cache_find(&store.cache, parent);
			if (!pc || !idmap_get(&w, pc->id))
				want(&w, e->id, e->level);
		}
	}
	/* remove what is no longer wanted, then add */
	for (size_t i = 0; idmap_next(&sl.installed, &i, &k, &v);) {
		if (idmap_get(&w, k))
			continue;
		err = store.by_mntns ? filter_del_mntns(k) : filter_del_cgroup(k, (int)(intptr_t)v - 1);
		if (err && err != -ENOENT)
			pr_warn("selection: cannot remove %llu: %s", (unsigned long long)k, strerror(-err));
		pr_debug("selection: removed %s %llu", store.by_mntns ? "mntns" : "cgroup",
			 (unsigned long long)k);
	}
	for (size_t i = 0; idmap_next(&w, &i, &k, &v);) {
		if (idmap_get(&sl.installed, k))
			continue;
		err = store.by_mntns ? filter_add_mntns(k) : filter_add_cgroup(k, (int)(intptr_t)v - 1);
		if (err)
			pr_warn("selection: cannot add %llu: %s", (unsigned long long)k, strerror(-err));
		else
			pr_debug("selection: added %s %llu", store.by_mntns ? "mntns" : "cgroup",
				 (unsigned long long)k);
	}
	idmap_free(&sl.installed);
	sl.installed = w;
}

int select_init(const struct ps_config *cfg)
{
	char why[200];

	if (idmap_init(&sl.installed, 16))
		return -ENOMEM;
	sl.sel.namespaces = cfg->namespaces;
	sl.sel.n_namespaces = (size_t)cfg->n_namespaces;
	sl.sel.pods = cfg->pods;
	sl.sel.n_pods = (size_t)cfg->n_pods;
	for (int i = 0; i < cfg->n_selectors; i++)
		if (sel_parse(&sl.sel, cfg->selectors[i], why, sizeof(why)))
			return -EINVAL; /* config_parse checked already */
	sl.selecting = sel_active(&sl.sel);
	if (!sl.selecting)
		return 0;
	if (!store.by_mntns && !store.have_cache) {
		pr_err("--namespace/--pod/--selector: cgroup2 is not mounted and attribution is "
		       "not by mount namespace");
		return -ENODEV;
	}
	/* an empty selection selects nothing, not everything */
	return filter_enable(store.by_mntns ? PS_F_MNTNS : PS_F_CGROUP);
}

void select_free(void)
{
	idmap_free(&sl.installed);
}
