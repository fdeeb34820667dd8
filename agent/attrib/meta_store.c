// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * What the metadata thread knows (meta_int.h): cgroups (from the cgroup tree
 * and the cgroup_mkdir/rmdir tracepoints), containers and pods (from the
 * sources), the ids still being looked up; and the snapshots built from it
 * for the event path (snapshot.h).
 *
 * Why the tracepoints rather than inotify: one BPF program sees every
 * cgroup of every hierarchy at once with its id and path, in order with its
 * removal, while inotify would need a watch on every directory of the tree,
 * added racily as directories appear. Without the tracepoints (or when the
 * kernel lost some of their events) an unknown id is resolved alone through
 * its file handle, and lost events trigger one rescan.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/attrib/meta_int.h"
#include "agent/attrib/snapshot.h"
#include "agent/log.h"
#include "agent/privs.h"

struct meta_store store;

/* -------------------------------------------------------------- string maps */

static void *smap_get(struct idmap *m, const char *key, size_t key_off)
{
	char *v = idmap_get(m, idmap_hash_str(key));

	/* a 64-bit hash collision leaves the second one unknown: harmless */
	return v && strcmp(v + key_off, key) == 0 ? v : NULL;
}

struct mpod *store_pod(const char *uid)
{
	return smap_get(&store.pods, uid, offsetof(struct mpod, uid));
}

struct mctr *store_ctr(const char *id)
{
	return smap_get(&store.ctrs, id, offsetof(struct mctr, id));
}

struct pend *store_pend(const char *key)
{
	return smap_get(&store.pend, key, offsetof(struct pend, key));
}

static void free_labels(struct kv *l, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(l[i].k);
		free(l[i].v);
	}
	free(l);
}

static void pod_free(struct mpod *p)
{
	free(p->name);
	free(p->ns);
	free_labels(p->cri_labels, p->n_cri_labels);
	free_labels(p->kl_labels, p->n_kl_labels);
	free(p);
}

static void ctr_free(struct mctr *c)
{
	free(c->name);
	free(c);
}

/* Set *dst to a copy of src if it differs; true when it changed. */
static bool set_str(char **dst, const char *src)
{
	char *n;

	if (!src)
		src = "";
	if (*dst && strcmp(*dst, src) == 0)
		return false;
	n = strdup(src);
	if (!n)
		return false;
	free(*dst);
	*dst = n;
	return true;
}

static bool labels_equal(const struct kv *l, size_t n, const char *const *k,
			 const char *const *v, size_t m)
{
	if (n != m)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(l[i].k, k[i]) || strcmp(l[i].v, v[i] ? v[i] : ""))
			return false;
	return true;
}

bool set_labels(struct kv **l, size_t *n, const char *const *k, const char *const *v,
		size_t m)
{
	struct kv *nl;

	if (labels_equal(*l, *n, k, v, m))
		return false;
	nl = calloc(m ? m : 1, sizeof(*nl));
	if (!nl)
		return false;
	for (size_t i = 0; i < m; i++) {
		nl[i].k = strdup(k[i]);
		nl[i].v = strdup(v[i] ? v[i] : "");
		if (!nl[i].k || !nl[i].v) {
			free_labels(nl, i + 1);
			return false;
		}
	}
	free_labels(*l, *n);
	*l = nl;
	*n = m;
	return true;
}

struct mpod *pod_upsert(const char *uid, const char *name, const char *ns, uint64_t now)
{
	struct mpod *p = store_pod(uid);

	if (strlen(uid) > CG_UID_LEN)
		return NULL;
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return NULL;
		strcpy(p->uid, uid);
		if (idmap_put(&store.pods, idmap_hash_str(uid), p)) {
			free(p);
			return NULL;
		}
		store.dirty = true;
	}
	store.dirty |= set_str(&p->name, name);
	store.dirty |= set_str(&p->ns, ns);
	p->seen_ns = now;
	return p;
}

struct mctr *ctr_upsert(const char *id, const char *name, const char *pod_uid,
			const char *runtime, bool sandbox, uint64_t now)
{
	struct mctr *c = store_ctr(id);
	struct pend *pd;

	if (strlen(id) > CG_ID_LEN || strlen(pod_uid) > CG_UID_LEN)
		return NULL;
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return NULL;
		strcpy(c->id, id);
		if (idmap_put(&store.ctrs, idmap_hash_str(id), c)) {
			free(c);
			return NULL;
		}
		store.dirty = true;
	}
	store.dirty |= set_str(&c->name, name);
	if (strcmp(c->pod_uid, pod_uid)) {
		strcpy(c->pod_uid, pod_uid);
		store.dirty = true;
	}
	if (runtime && *runtime && strcmp(c->runtime, runtime)) {
		snprintf(c->runtime, sizeof(c->runtime), "%s", runtime);
		store.dirty = true;
	}
	c->sandbox = sandbox;
	c->seen_ns = now;
	/* whoever was waiting for it can stop */
	if ((pd = store_pend(id))) {
		idmap_del(&store.pend, idmap_hash_str(id));
		free(pd);
		store.dirty = true;
	}
	if ((pd = store_pend(pod_uid))) {
		idmap_del(&store.pend, idmap_hash_str(pod_uid));
		free(pd);
		store.dirty = true;
	}
	return c;
}

/* --------------------------------------------------------------- cgroups */

static void pend_add(const char *key, bool pod, uint64_t now)
{
	struct pend *p = store_pend(key);

	if (p || !*key)
		return;
	p = calloc(1, sizeof(*p));
	if (!p)
		return;
	snprintf(p->key, sizeof(p->key), "%s", key);
	p->pod = pod;
	p->next_ns = now;
	p->created_ns = now;
	if (idmap_put(&store.pend, idmap_hash_str(key), p))
		free(p);
}

/* A cgroup became known: is there something to find out about it? */
static void note_cgroup(const struct cg_ident *id, uint64_t now)
{
	if (id->kind == CG_KIND_CONTAINER && !store_ctr(id->id))
		pend_add(id->id, false, now);
	else if (id->kind == CG_KIND_POD && id->pod_uid[0] && !store_pod(id->pod_uid))
		pend_add(id->pod_uid, true, now);
	store.dirty = true;
}

void store_cgroup_event(void *ctx, const struct cgw_event *e)
{
	uint64_t now = now_ns();
	struct cg_entry *ce = NULL;
	struct cg_ident id;

	(void)ctx;
	if (e->root != 0 || !store.have_cache) {
		/* a v1 hierarchy (or no cgroup2 mount): only tells a container is coming */
		if (e->op == CGW_MKDIR && cg_parse_ident(e->path, &id) == 0)
			note_cgroup(&id, now);
		return;
	}
	if (e->op == CGW_RMDIR) {
		ce = cg_cache_get(&store.cache, e->id);
		if (ce && !ce->removed_ns)
			ce->removed_ns = now; /* kept for the grace period: late records */
		return;
	}
	if ((e->flags & CGW_F_TRUNCATED) || cg_cache_add(&store.cache, e->id, e->path, &ce)) {
		if (cg_cache_resolve(&store.cache, e->id, &ce))
			return;
	}
	note_cgroup(&ce->ident, now);
}

void store_unknown_id(uint64_t key, uint64_t now)
{
	struct cg_entry *ce;

	if (key & REQ_MNTNS) {
		/*
		 * A mount namespace nobody knows: maybe a new container (the thread
		 * brings the next sync forward). Until the sync finds it, it is
		 * published as unknown (a container found takes precedence), so
		 * records stop waiting for it.
		 */
		if (!idmap_get(&store.unresolved, key)) {
			idmap_put(&store.unresolved, key, (void *)(uintptr_t)(now | 1));
			store.dirty = true;
		}
		return;
	}
	if (!store.have_cache || cg_cache_get(&store.cache, key))
		return;
	if (cg_cache_resolve(&store.cache, key, &ce) == 0) {
		store.resolved_by_handle++;
		note_cgroup(&ce->ident, now);
	} else if (!idmap_get(&store.unresolved, key)) {
		/* gone already: published as unknown so nothing waits for it */
		idmap_put(&store.unresolved, key, (void *)(uintptr_t)(now | 1));
		store.dirty = true;
	}
}

void store_rescan(void)
{
	if (!store.have_cache)
		return;
	store.rescans++;
	cg_cache_scan(&store.cache, "/");
	store.dirty = true;
}

/* ---------------------------------------------------------- the snapshot */

static const struct attr *container_attr(struct snap *s, const struct cg_ident *id)
{
	struct mctr *c = id->kind == CG_KIND_CONTAINER ? store_ctr(id->id) : NULL;
	const char *uid = c && c->pod_uid[0] ? c->pod_uid : id->pod_uid;
	struct mpod *p = uid[0] ? store_pod(uid) : NULL;
	struct pend *pd;
	enum attr_state st;

	if (c && c->built)
		return c->built;
	if (p && (c || id->kind == CG_KIND_POD)) {
		struct attr *a = snap_attr(s, AS_FULL, p->ns, p->name, p->uid, c ? c->name : "",
					   c ? c->id : "", c && c->runtime[0] ? c->runtime : id->runtime);
		if (c)
			c->built = a;
		return a;
	}
	pd = store_pend(id->kind == CG_KIND_CONTAINER ? id->id : id->pod_uid);
	st = pd && !pd->gave_up ? AS_PENDING : AS_PARTIAL;
	return snap_attr(s, st, "", "", uid, "", id->id, c && c->runtime[0] ? c->runtime : id->runtime);
}

void store_publish(void)
{
	struct snap *s = snap_new();
	struct cg_entry *e;
	uint64_t k;
	void *v;

	if (!s)
		return;
	s->by_mntns = store.by_mntns;
	s->host_mntns = store.host_mntns;
	for (size_t i = 0; idmap_next(&store.ctrs, &i, &k, &v);)
		((struct mctr *)v)->built = NULL;
	if (store.have_cache) {
		for (size_t i = 0; (e = cg_cache_next(&store.cache, &i));) {
			const struct attr *a = &snap_host_attr;

			if (e->ident.kind != CG_KIND_HOST)
				a = container_attr(s, &e->ident);
			if (!a || idmap_put(&s->cg, e->id, (void *)a))
				goto oom;
		}
	}
	for (size_t i = 0; idmap_next(&store.unresolved, &i, &k, &v);)
		if (!(k & REQ_MNTNS) && !idmap_get(&s->cg, k) &&
		    idmap_put(&s->cg, k, (void *)&snap_host_attr))
			goto oom;
	for (size_t i = 0; idmap_next(&store.ctrs, &i, &k, &v);) {
		struct mctr *c = v;
		struct cg_ident id = { .kind = CG_KIND_CONTAINER, .runtime = "" };
		const struct attr *a;

		if (!c->mntns)
			continue;
		snprintf(id.id, sizeof(id.id), "%s", c->id);
		a = container_attr(s, &id);
		if (!a || idmap_put(&s->mnt, c->mntns, (void *)a))
			goto oom;
	}
	for (size_t i = 0; idmap_next(&store.unresolved, &i, &k, &v);)
		if ((k & REQ_MNTNS) && !idmap_get(&s->mnt, k & ~REQ_MNTNS) &&
		    idmap_put(&s->mnt, k & ~REQ_MNTNS, (void *)&snap_host_attr))
			goto oom;
	store.dirty = !snap_publish(s);
	return;
oom:
	pr_warn("attribution: out of memory building the snapshot");
	snap_free(s);
}

void store_gc(uint64_t now, bool forget_gone)
{
	uint64_t grace = (uint64_t)store.cfg->meta_grace_s * SEC, k;
	uint64_t stale = grace + (uint64_t)store.cfg->meta_resync_s * SEC;
	struct cg_entry *e;
	void *v;

	if (store.have_cache) {
		for (size_t i = 0; (e = cg_cache_next(&store.cache, &i));) {
			if (e->removed_ns && now - e->removed_ns > grace) {
				cg_cache_remove(&store.cache, e->id);
				i = 0; /* the table moved under the walk */
				store.dirty = true;
			}
		}
	}
	for (size_t i = 0; idmap_next(&store.unresolved, &i, &k, &v);) {
		if (now - (uint64_t)(uintptr_t)v > grace) {
			idmap_del(&store.unresolved, k);
			i = 0;
		}
	}
	for (size_t i = 0; idmap_next(&store.pend, &i, &k, &v);) {
		struct pend *p = v;

		if (p->gave_up && now >= p->next_ns) {
			idmap_del(&store.pend, k);
			free(p);
			i = 0;
		}
	}
	/* gone from every source for longer than the grace: forget, unless all are down */
	if (!forget_gone)
		return;
	for (size_t i = 0; idmap_next(&store.ctrs, &i, &k, &v);) {
		struct mctr *c = v;

		if (now - c->seen_ns > stale) {
			idmap_del(&store.ctrs, k);
			ctr_free(c);
			i = 0;
			store.dirty = true;
		}
	}
	for (size_t i = 0; idmap_next(&store.pods, &i, &k, &v);) {
		struct mpod *p = v;

		if (now - p->seen_ns > stale) {
			idmap_del(&store.pods, k);
			pod_free(p);
			i = 0;
			store.dirty = true;
		}
	}
}

uint64_t store_pend_next_ns(void)
{
	uint64_t next = UINT64_MAX, k;
	void *v;

	for (size_t i = 0; idmap_next(&store.pend, &i, &k, &v);) {
		struct pend *p = v;

		if (!p->gave_up && p->next_ns < next)
			next = p->next_ns;
	}
	return next;
}

int store_init(const struct ps_config *cfg)
{
	struct host_mntns host;
	int err;

	store.cfg = cfg;
	/* the node's, also when the agent runs in a pod (hostPID) */
	if (privs_host_mntns(&host) == 0)
		store.host_mntns = host.ino;
	err = cg_layout_detect(&store.layout);
	if (err)
		return err;
	store.by_mntns = cfg->attribute_by == ATTRIB_BY_MNTNS ||
		     (cfg->attribute_by == ATTRIB_BY_AUTO && store.layout.mode != CG_MODE_V2 &&
		      store.layout.mode != CG_MODE_HYBRID);
	if (idmap_init(&store.pods, 64) || idmap_init(&store.ctrs, 64) ||
	    idmap_init(&store.pend, 16) || idmap_init(&store.unresolved, 16))
		return -ENOMEM;
	if (store.layout.v2_mount[0]) {
		err = cg_cache_init(&store.cache, store.layout.v2_mount);
		if (!err)
			err = cg_cache_scan(&store.cache, "/");
		if (err)
			pr_warn("attribution: cannot read the cgroup tree at %s: %s",
				store.layout.v2_mount, strerror(-err));
		store.have_cache = !err;
	}
	pr_info("attribution: cgroups %s%s%s%s, attributing by %s",
		cg_mode_name(store.layout.mode), store.layout.v2_mount[0] ? " (cgroup2 at " : "",
		store.layout.v2_mount, store.layout.v2_mount[0] ? ")" : "",
		store.by_mntns ? "mount namespace" : "cgroup id");
	return 0;
}

void store_free(void)
{
	uint64_t k;
	void *v;

	for (size_t i = 0; idmap_next(&store.pods, &i, &k, &v);)
		pod_free(v);
	for (size_t i = 0; idmap_next(&store.ctrs, &i, &k, &v);)
		ctr_free(v);
	for (size_t i = 0; idmap_next(&store.pend, &i, &k, &v);)
		free(v);
	idmap_free(&store.pods);
	idmap_free(&store.ctrs);
	idmap_free(&store.pend);
	idmap_free(&store.unresolved);
	if (store.have_cache)
		cg_cache_free(&store.cache);
	store.have_cache = false;
}

static size_t labels_bytes(const struct kv *l, size_t n)
{
	size_t b = n * sizeof(*l);

	for (size_t i = 0; i < n; i++)
		b += strlen(l[i].k) + strlen(l[i].v) + 2;
	return b;
}

/* After the thread stopped: its tables are read here. */
void store_summary(void)
{
	size_t master = idmap_bytes(&store.pods) + idmap_bytes(&store.ctrs) +
			idmap_bytes(&store.pend);
	uint64_t k;
	void *v;

	for (size_t i = 0; idmap_next(&store.pods, &i, &k, &v);) {
		struct mpod *p = v;

		master += sizeof(*p) + strlen(p->name) + strlen(p->ns) + 2 +
			  labels_bytes(p->cri_labels, p->n_cri_labels) +
			  labels_bytes(p->kl_labels, p->n_kl_labels);
	}
	for (size_t i = 0; idmap_next(&store.ctrs, &i, &k, &v);)
		master += sizeof(struct mctr) + strlen(((struct mctr *)v)->name) + 1;
	pr_info("attribution: metadata: %zu pods, %zu containers, %zu cgroups; memory: cgroup "
		"cache %zu KiB, pods+containers %zu KiB, snapshot %zu KiB",
		store.pods.n, store.ctrs.n, store.have_cache ? store.cache.by_id.n : 0,
		store.have_cache ? cg_cache_bytes(&store.cache) / 1024 : 0, master / 1024,
		snap_current_bytes() / 1024);
}
