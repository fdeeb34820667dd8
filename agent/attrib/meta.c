// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The metadata thread: what cgroups, containers and pods exist on this node,
 * from the cgroup tree and the cgroup_mkdir/rmdir tracepoints, the CRI and
 * the kubelet. Publishes snapshots for the event path (snapshot.h) and keeps
 * the in-kernel filter maps equal to the Kubernetes selection.
 *
 * Why the tracepoints rather than inotify: one BPF program sees every
 * cgroup of every hierarchy at once with its id and path, in order with its
 * removal, while inotify would need a watch on every directory of the tree,
 * added racily as directories appear. Without the tracepoints (or when the
 * kernel lost some of their events) an unknown id is resolved alone through
 * its file handle, and lost events trigger one rescan.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>

#include "cgroup/cgcache.h"
#include "cgroup/cgroup.h"
#include "agent/attrib/attrib.h"
#include "agent/tracers/cgwatch.h"
#include "agent/clock.h"
#include "agent/attrib/cri.h"
#include "agent/http/endpoints.h"
#include "agent/tracers/filter.h"
#include "agent/attrib/kubelet.h"
#include "agent/log.h"
#include "agent/privs.h"
#include "agent/attrib/selector.h"
#include "agent/attrib/snapshot.h"

#define MS 1000000ull
#define SEC 1000000000ull
/* an unknown container: ask again after 25, 50, 100, 200 ms, then give up */
#define PEND_ATTEMPTS 5
#define PEND_FIRST_DELAY (25 * MS)
/* the kubelet's pod list is heavy: at most this often on demand */
#define KUBELET_MIN_GAP (1 * SEC)
/* unknown mount namespaces (v1 nodes) bring a full sync forward, at most this often */
#define REQ_SYNC_GAP (100 * MS)
#define CRI_RETRY_MIN (500 * MS)
#define CRI_RETRY_MAX (10 * SEC)

struct kv {
	char *k, *v;
};

struct mpod {
	char uid[CG_UID_LEN + 1];
	char *name, *ns;
	struct kv *cri_labels, *kl_labels;
	size_t n_cri_labels, n_kl_labels;
	uint64_t seen_ns;
	bool selected;
};

struct mctr {
	char id[CG_ID_LEN + 1];
	char *name;
	char pod_uid[CG_UID_LEN + 1];
	char runtime[24];
	bool sandbox;
	bool running;
	int pid;
	uint64_t mntns;
	uint64_t seen_ns;
	struct attr *built;	/* in the snapshot being built */
};

/* A container id or pod uid a cgroup named that no source knows yet. */
struct pend {
	char key[CG_ID_LEN + 1];
	bool pod;
	bool gave_up;
	int attempts;
	uint64_t next_ns;
	uint64_t created_ns;
	uint64_t kl_seen_ns;	/* the kubelet list this was last looked for in */
};

/* ids the event path asked about that were gone: value = when (for expiry) */
static struct idmap unresolved;

/* the event thread's requests: unknown cgroup ids and mount namespaces */
#define REQ_SLOTS 4096
#define REQ_MNTNS (1ull << 63)
static uint64_t req_q[REQ_SLOTS];
static _Atomic uint32_t req_head, req_tail;
static _Atomic uint64_t req_dropped;

static struct {
	const struct ps_config *cfg;
	struct cg_layout layout;
	bool by_mntns;
	uint64_t host_mntns;
	struct cg_cache cache;
	bool have_cache;

	struct cri_client cri;
	bool cri_on, cri_up, cri_auto, cri_warned;
	uint64_t cri_retry_ns, cri_backoff;

	struct kubelet_client kl;
	bool kl_on, kl_up, kl_warned, kl_wanted;
	uint64_t kl_last_ns;

	struct idmap pods, ctrs, pend;	/* keyed by idmap_hash_str */
	struct pod_selector sel;
	bool selecting;
	struct idmap installed;		/* filter ids -> level + 1 */

	const char *cgw_method;
	uint64_t cgw_lost_seen;

	int ep, reqfd, stopfd;
	pthread_t th;
	bool running;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool ready;

	bool dirty;
	uint64_t next_resync_ns, last_ok_ns, last_sync_ns;
	uint64_t syncs, targeted, gave_up, resolved_by_handle, rescans;
} M = { .ep = -1, .reqfd = -1, .stopfd = -1, .lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER };

static uint64_t now_ns(void)
{
	return clock_now_ns(CLOCK_MONOTONIC);
}

bool meta_by_mntns(void)
{
	return M.by_mntns;
}

/* ------------------------------------------------------------ readiness */

static char health_msg[512];
static bool health_ok, health_known;

/* The "metadata" component of /readyz; remembered for meta_health_reapply(). */
static void meta_health(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void meta_health(bool ok, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&M.lock);
	va_start(ap, fmt);
	vsnprintf(health_msg, sizeof(health_msg), fmt, ap);
	va_end(ap);
	health_ok = ok;
	health_known = true;
	health_set("metadata", ok, "%s", health_msg);
	pthread_mutex_unlock(&M.lock);
}

void meta_health_reapply(void)
{
	pthread_mutex_lock(&M.lock);
	if (health_known)
		health_set("metadata", health_ok, "%s", health_msg);
	pthread_mutex_unlock(&M.lock);
}

/* ------------------------------------------------- requests from the event loop */

void meta_request(uint64_t key, bool mntns)
{
	uint32_t t = atomic_load_explicit(&req_tail, memory_order_relaxed);
	uint32_t h = atomic_load_explicit(&req_head, memory_order_acquire);

	if (t - h >= REQ_SLOTS) {
		atomic_fetch_add_explicit(&req_dropped, 1, memory_order_relaxed);
		return;
	}
	req_q[t % REQ_SLOTS] = mntns ? key | REQ_MNTNS : key;
	atomic_store_explicit(&req_tail, t + 1, memory_order_release);
}

void meta_kick(void)
{
	uint64_t one = 1;

	/* EAGAIN: the counter saturated, a wakeup is pending anyway */
	if (M.reqfd >= 0 && write(M.reqfd, &one, sizeof(one)) < 0)
		return;
}

/* -------------------------------------------------------------- string maps */

static void *smap_get(struct idmap *m, const char *key, size_t key_off)
{
	char *v = idmap_get(m, idmap_hash_str(key));

	/* a 64-bit hash collision leaves the second one unknown: harmless */
	return v && strcmp(v + key_off, key) == 0 ? v : NULL;
}

#define POD(k_) ((struct mpod *)smap_get(&M.pods, (k_), offsetof(struct mpod, uid)))
#define CTR(k_) ((struct mctr *)smap_get(&M.ctrs, (k_), offsetof(struct mctr, id)))
#define PEND(k_) ((struct pend *)smap_get(&M.pend, (k_), offsetof(struct pend, key)))

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

static bool set_labels(struct kv **l, size_t *n, const char *const *k, const char *const *v,
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

static struct mpod *pod_upsert(const char *uid, const char *name, const char *ns, uint64_t now)
{
	struct mpod *p = POD(uid);

	if (strlen(uid) > CG_UID_LEN)
		return NULL;
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return NULL;
		strcpy(p->uid, uid);
		if (idmap_put(&M.pods, idmap_hash_str(uid), p)) {
			free(p);
			return NULL;
		}
		M.dirty = true;
	}
	M.dirty |= set_str(&p->name, name);
	M.dirty |= set_str(&p->ns, ns);
	p->seen_ns = now;
	return p;
}

static struct mctr *ctr_upsert(const char *id, const char *name, const char *pod_uid,
			       const char *runtime, bool sandbox, uint64_t now)
{
	struct mctr *c = CTR(id);
	struct pend *pd;

	if (strlen(id) > CG_ID_LEN || strlen(pod_uid) > CG_UID_LEN)
		return NULL;
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c)
			return NULL;
		strcpy(c->id, id);
		if (idmap_put(&M.ctrs, idmap_hash_str(id), c)) {
			free(c);
			return NULL;
		}
		M.dirty = true;
	}
	M.dirty |= set_str(&c->name, name);
	if (strcmp(c->pod_uid, pod_uid)) {
		strcpy(c->pod_uid, pod_uid);
		M.dirty = true;
	}
	if (runtime && *runtime && strcmp(c->runtime, runtime)) {
		snprintf(c->runtime, sizeof(c->runtime), "%s", runtime);
		M.dirty = true;
	}
	c->sandbox = sandbox;
	c->seen_ns = now;
	/* whoever was waiting for it can stop */
	if ((pd = PEND(id))) {
		idmap_del(&M.pend, idmap_hash_str(id));
		free(pd);
		M.dirty = true;
	}
	if ((pd = PEND(pod_uid))) {
		idmap_del(&M.pend, idmap_hash_str(pod_uid));
		free(pd);
		M.dirty = true;
	}
	return c;
}

/* --------------------------------------------------------------- the CRI */

static void cri_down(void)
{
	if (!M.cri_warned)
		pr_warn("%s; pods will not be attributed through the CRI until it answers "
			"(retrying)", M.cri.err);
	M.cri_warned = true;
	M.cri_up = false;
	meta_health(M.kl_up, "CRI down: %s", M.cri.err);
	M.cri_retry_ns = now_ns() + M.cri_backoff;
	M.cri_backoff = M.cri_backoff * 2 > CRI_RETRY_MAX ? CRI_RETRY_MAX : M.cri_backoff * 2;
}

/*
 * Connect (again) if due; true when the CRI is usable. urgent: a new
 * container is waiting, so the runtime may well be back: try now (at most
 * every 50 ms) rather than at the end of the backoff.
 */
static bool cri_ensure_now(bool urgent)
{
	static uint64_t last_try;
	uint64_t now = now_ns();
	char sock[108];

	if (!M.cri_on)
		return false;
	if (M.cri_up)
		return true;
	if (urgent ? now - last_try < 50 * MS : now < M.cri_retry_ns)
		return false;
	last_try = now;
	if (M.cri_auto) {
		if (cri_detect_socket(sock, sizeof(sock))) {
			if (!M.cri_warned)
				pr_warn("no CRI socket found (tried %s, %s and others); pods will "
					"not be attributed through the CRI: use --cri-socket",
					cri_default_sockets[0], cri_default_sockets[1]);
			M.cri_warned = true;
			M.cri_retry_ns = now_ns() + CRI_RETRY_MAX;
			/* nothing asked for, nothing found (not a node?): off, not failing */
			meta_health(true, "off (no CRI socket found; --cri-socket names one)");
			return false;
		}
		if (strcmp(sock, M.cri.socket)) {
			cri_close(&M.cri);
			if (cri_open(&M.cri, sock, 2000))
				return false;
		}
	}
	if (cri_version(&M.cri)) {
		cri_down();
		return false;
	}
	if (M.cri_warned) {
		pr_info("CRI: %s %s at %s answers again", M.cri.runtime_name, M.cri.runtime_version,
			M.cri.socket);
		M.next_resync_ns = now; /* catch up on what happened meanwhile */
	}
	else
		pr_info("CRI: %s %s at %s", M.cri.runtime_name, M.cri.runtime_version, M.cri.socket);
	M.cri_up = true;
	M.cri_warned = false;
	M.cri_backoff = CRI_RETRY_MIN;
	meta_health(true, "CRI %s %s at %s", M.cri.runtime_name, M.cri.runtime_version,
		   M.cri.socket);
	return true;
}

static bool cri_ensure(void)
{
	return cri_ensure_now(false);
}

typedef Runtime__V1__PodSandbox__LabelsEntry cri_label_t;

static void add_sandbox(const Runtime__V1__PodSandbox *sb, uint64_t now)
{
	const char *keys[256], *vals[256];
	size_t n = 0;
	struct mpod *p;

	if (!sb->metadata || !sb->metadata->uid || !*sb->metadata->uid)
		return;
	p = pod_upsert(sb->metadata->uid, sb->metadata->name, sb->metadata->namespace_, now);
	if (!p)
		return;
	for (size_t i = 0; i < sb->n_labels && n < 256; i++, n++) {
		keys[n] = sb->labels[i]->key;
		vals[n] = sb->labels[i]->value;
	}
	M.dirty |= set_labels(&p->cri_labels, &p->n_cri_labels, keys, vals, n);
	ctr_upsert(sb->id, "", p->uid, M.cri.runtime_name, true, now);
}

static void add_container(const Runtime__V1__Container *c, uint64_t now)
{
	struct mctr *sb = CTR(c->pod_sandbox_id), *m;
	const char *uid = sb ? sb->pod_uid : NULL;

	if (!uid) /* sandbox not listed yet: kubelet's label says the pod */
		uid = cri_label(c->n_labels, (cri_label_t **)c->labels, "io.kubernetes.pod.uid");
	if (!uid)
		uid = "";
	m = ctr_upsert(c->id, c->metadata ? c->metadata->name : "", uid, M.cri.runtime_name, false,
		       now);
	if (m)
		m->running = c->state == RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
}

/* Mount namespaces for v1 nodes: the container's init pid says it. */
static void learn_mntns(struct mctr *c)
{
	Runtime__V1__ContainerStatusResponse *st;
	uint64_t ino;
	int pid;

	if (c->mntns || c->sandbox || !c->running || !M.cri_up)
		return;
	if (cri_container_status(&M.cri, c->id, &st, &pid)) {
		pr_debug("%s", M.cri.err);
		return;
	}
	runtime__v1__container_status_response__free_unpacked(st, NULL);
	if (pid > 0 && cg_pid_mntns(pid, &ino) == 0 && ino != M.host_mntns) {
		c->pid = pid;
		c->mntns = ino;
		M.dirty = true;
	}
}

static int cri_sync(uint64_t now)
{
	Runtime__V1__ListPodSandboxResponse *sbs;
	Runtime__V1__ListContainersResponse *cs;
	struct mctr *c;

	if (!cri_ensure())
		return -ENOTCONN;
	if (cri_list_sandboxes(&M.cri, "", &sbs)) {
		cri_down();
		return -EIO;
	}
	for (size_t i = 0; i < sbs->n_items; i++)
		add_sandbox(sbs->items[i], now);
	runtime__v1__list_pod_sandbox_response__free_unpacked(sbs, NULL);
	if (cri_list_containers(&M.cri, "", &cs)) {
		cri_down();
		return -EIO;
	}
	for (size_t i = 0; i < cs->n_containers; i++)
		add_container(cs->containers[i], now);
	runtime__v1__list_containers_response__free_unpacked(cs, NULL);
	if (M.by_mntns) {
		uint64_t k;
		void *v;

		for (size_t i = 0; idmap_next(&M.ctrs, &i, &k, &v);) {
			c = v;
			if (c->seen_ns == now)
				learn_mntns(c);
		}
	}
	return 0;
}

/* The pod list alone (a new pod's cgroup appeared): 0, or -errno. */
static int cri_pods(uint64_t now)
{
	Runtime__V1__ListPodSandboxResponse *sbs;

	if (!cri_ensure_now(true))
		return -ENOTCONN;
	M.targeted++;
	if (cri_list_sandboxes(&M.cri, "", &sbs)) {
		cri_down();
		return -EIO;
	}
	for (size_t i = 0; i < sbs->n_items; i++)
		add_sandbox(sbs->items[i], now);
	runtime__v1__list_pod_sandbox_response__free_unpacked(sbs, NULL);
	return 0;
}

/* One container (or sandbox) by id; 1 found, 0 not, -errno when the CRI failed. */
static int cri_lookup(const char *id, uint64_t now)
{
	Runtime__V1__ListContainersResponse *cs;
	Runtime__V1__ListPodSandboxResponse *sbs;
	int found = 0;

	if (!cri_ensure_now(true))
		return -ENOTCONN;
	M.targeted++;
	if (cri_list_containers(&M.cri, id, &cs)) {
		cri_down();
		return -EIO;
	}
	for (size_t i = 0; i < cs->n_containers; i++) {
		const Runtime__V1__Container *c = cs->containers[i];

		/* its pod, if unknown, first */
		if (!CTR(c->pod_sandbox_id) && cri_list_sandboxes(&M.cri, c->pod_sandbox_id, &sbs) == 0) {
			for (size_t j = 0; j < sbs->n_items; j++)
				add_sandbox(sbs->items[j], now);
			runtime__v1__list_pod_sandbox_response__free_unpacked(sbs, NULL);
		}
		add_container(c, now);
		if (strcmp(c->id, id) == 0)
			found = 1;
	}
	runtime__v1__list_containers_response__free_unpacked(cs, NULL);
	if (found) {
		if (M.by_mntns && CTR(id))
			learn_mntns(CTR(id));
		return 1;
	}
	/* a pod's sandbox (pause) container is not listed among containers */
	if (cri_list_sandboxes(&M.cri, id, &sbs)) {
		cri_down();
		return -EIO;
	}
	for (size_t j = 0; j < sbs->n_items; j++) {
		add_sandbox(sbs->items[j], now);
		if (strcmp(sbs->items[j]->id, id) == 0)
			found = 1;
	}
	runtime__v1__list_pod_sandbox_response__free_unpacked(sbs, NULL);
	return found;
}

/* ----------------------------------------------------------- the kubelet */

static int kubelet_sync(uint64_t now)
{
	struct kl_podlist l;
	int err;

	if (!M.kl_on)
		return -ENOTCONN;
	M.kl_last_ns = now;
	M.kl_wanted = false;
	err = kubelet_fetch(&M.kl, &l);
	if (err) {
		if (!M.kl_warned)
			pr_warn("%s (retrying)", M.kl.err);
		M.kl_warned = true;
		M.kl_up = false;
		if (!M.cri_up)
			meta_health(false, "%s", M.kl.err);
		return err;
	}
	if (M.kl_warned || !M.kl_up)
		pr_info("kubelet: %zu pods from %s%s", l.n, M.kl.url,
			M.kl_warned ? " (answers again)" : "");
	if (l.skipped)
		pr_debug("kubelet: %zu list items without uid/name/namespace skipped", l.skipped);
	M.kl_warned = false;
	M.kl_up = true;
	if (!M.cri_on || M.cri_up)
		meta_health(true, "%s%s%zu pods from the kubelet", M.cri_up ? M.cri.runtime_name : "",
			   M.cri_up ? " and " : "", l.n);
	for (size_t i = 0; i < l.n; i++) {
		const struct kl_pod *kp = &l.pods[i];
		const char *keys[256], *vals[256];
		size_t n = 0;
		struct mpod *p = pod_upsert(kp->uid, kp->name, kp->namespace_, now);

		if (!p)
			continue;
		for (size_t j = 0; j < kp->n_labels && n < 256; j++, n++) {
			keys[n] = kp->labels[j].key;
			vals[n] = kp->labels[j].value;
		}
		M.dirty |= set_labels(&p->kl_labels, &p->n_kl_labels, keys, vals, n);
		for (size_t j = 0; j < kp->n_containers; j++) {
			const struct kl_container *kc = &kp->containers[j];
			struct mctr *c = CTR(kc->id);

			/* the CRI knows better what runtime and state it is */
			ctr_upsert(kc->id, kc->name, p->uid,
				   c && c->runtime[0] ? c->runtime : kc->runtime, false, now);
		}
	}
	kubelet_podlist_free(&l);
	return 0;
}

/* --------------------------------------------------------------- cgroups */

static void pend_add(const char *key, bool pod, uint64_t now)
{
	struct pend *p = PEND(key);

	if (p || !*key)
		return;
	p = calloc(1, sizeof(*p));
	if (!p)
		return;
	snprintf(p->key, sizeof(p->key), "%s", key);
	p->pod = pod;
	p->next_ns = now;
	p->created_ns = now;
	if (idmap_put(&M.pend, idmap_hash_str(key), p))
		free(p);
}

/* A cgroup became known: is there something to find out about it? */
static void note_cgroup(const struct cg_ident *id, uint64_t now)
{
	if (id->kind == CG_KIND_CONTAINER && !CTR(id->id))
		pend_add(id->id, false, now);
	else if (id->kind == CG_KIND_POD && id->pod_uid[0] && !POD(id->pod_uid))
		pend_add(id->pod_uid, true, now);
	M.dirty = true;
}

static void on_cgroup_event(void *ctx, const struct cgw_event *e)
{
	uint64_t now = now_ns();
	struct cg_entry *ce = NULL;
	struct cg_ident id;

	(void)ctx;
	if (e->root != 0 || !M.have_cache) {
		/* a v1 hierarchy (or no cgroup2 mount): only tells a container is coming */
		if (e->op == CGW_MKDIR && cg_parse_ident(e->path, &id) == 0)
			note_cgroup(&id, now);
		return;
	}
	if (e->op == CGW_RMDIR) {
		ce = cg_cache_get(&M.cache, e->id);
		if (ce && !ce->removed_ns)
			ce->removed_ns = now; /* kept for the grace period: late records */
		return;
	}
	if ((e->flags & CGW_F_TRUNCATED) || cg_cache_add(&M.cache, e->id, e->path, &ce)) {
		if (cg_cache_resolve(&M.cache, e->id, &ce))
			return;
	}
	note_cgroup(&ce->ident, now);
}

static void resolve_request(uint64_t key, uint64_t now)
{
	struct cg_entry *ce;

	if (key & REQ_MNTNS) {
		/*
		 * A mount namespace nobody knows: maybe a new container, look now. Until
		 * the sync finds it, it is published as unknown (a container found
		 * takes precedence), so records stop waiting for it.
		 */
		if (M.next_resync_ns > M.last_sync_ns + REQ_SYNC_GAP)
			M.next_resync_ns = M.last_sync_ns + REQ_SYNC_GAP > now ?
						   M.last_sync_ns + REQ_SYNC_GAP : now;
		if (!idmap_get(&unresolved, key)) {
			idmap_put(&unresolved, key, (void *)(uintptr_t)(now | 1));
			M.dirty = true;
		}
		return;
	}
	if (!M.have_cache || cg_cache_get(&M.cache, key))
		return;
	if (cg_cache_resolve(&M.cache, key, &ce) == 0) {
		M.resolved_by_handle++;
		note_cgroup(&ce->ident, now);
	} else if (!idmap_get(&unresolved, key)) {
		/* gone already: published as unknown so nothing waits for it */
		idmap_put(&unresolved, key, (void *)(uintptr_t)(now | 1));
		M.dirty = true;
	}
}

/* ---------------------------------------------------------- the snapshot */



static const struct attr *container_attr(struct snap *s, const struct cg_ident *id)
{
	struct mctr *c = id->kind == CG_KIND_CONTAINER ? CTR(id->id) : NULL;
	const char *uid = c && c->pod_uid[0] ? c->pod_uid : id->pod_uid;
	struct mpod *p = uid[0] ? POD(uid) : NULL;
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
	pd = PEND(id->kind == CG_KIND_CONTAINER ? id->id : id->pod_uid);
	st = pd && !pd->gave_up ? AS_PENDING : AS_PARTIAL;
	return snap_attr(s, st, "", "", uid, "", id->id, c && c->runtime[0] ? c->runtime : id->runtime);
}

static void publish(void)
{
	struct snap *s = snap_new();
	struct cg_entry *e;
	uint64_t k;
	void *v;

	if (!s)
		return;
	s->by_mntns = M.by_mntns;
	s->host_mntns = M.host_mntns;
	for (size_t i = 0; idmap_next(&M.ctrs, &i, &k, &v);)
		((struct mctr *)v)->built = NULL;
	if (M.have_cache) {
		for (size_t i = 0; (e = cg_cache_next(&M.cache, &i));) {
			const struct attr *a = &snap_host_attr;

			if (e->ident.kind != CG_KIND_HOST)
				a = container_attr(s, &e->ident);
			if (!a || idmap_put(&s->cg, e->id, (void *)a))
				goto oom;
		}
	}
	for (size_t i = 0; idmap_next(&unresolved, &i, &k, &v);)
		if (!(k & REQ_MNTNS) && !idmap_get(&s->cg, k) &&
		    idmap_put(&s->cg, k, (void *)&snap_host_attr))
			goto oom;
	for (size_t i = 0; idmap_next(&M.ctrs, &i, &k, &v);) {
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
	for (size_t i = 0; idmap_next(&unresolved, &i, &k, &v);)
		if ((k & REQ_MNTNS) && !idmap_get(&s->mnt, k & ~REQ_MNTNS) &&
		    idmap_put(&s->mnt, k & ~REQ_MNTNS, (void *)&snap_host_attr))
			goto oom;
	M.dirty = !snap_publish(s);
	return;
oom:
	pr_warn("attribution: out of memory building the snapshot");
	snap_free(s);
}

/* ------------------------------------------------------------- selection */

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
	return sel_match(&M.sel, p->ns, p->name, keys, vals, n);
}

static void want(struct idmap *w, uint64_t key, int level)
{
	if (key && !idmap_get(w, key))
		idmap_put(w, key, (void *)(intptr_t)(level + 1));
}

static void update_selection(void)
{
	struct idmap w;
	struct cg_entry *e;
	struct mpod *p;
	uint64_t k;
	void *v;
	int err;

	if (!M.selecting || idmap_init(&w, 64))
		return;
	for (size_t i = 0; idmap_next(&M.pods, &i, &k, &v);) {
		p = v;
		p->selected = pod_matches(p);
	}
	if (M.by_mntns) {
		for (size_t i = 0; idmap_next(&M.ctrs, &i, &k, &v);) {
			struct mctr *c = v;

			if (c->mntns && (p = POD(c->pod_uid)) && p->selected)
				want(&w, c->mntns, 0);
		}
	} else if (M.have_cache) {
		/* a pod's own cgroup covers its containers, present and future */
		for (size_t i = 0; (e = cg_cache_next(&M.cache, &i));)
			if (e->ident.kind == CG_KIND_POD && e->level == e->ident.depth &&
			    (p = POD(e->ident.pod_uid)) && p->selected && !e->removed_ns)
				want(&w, e->id, e->level);
		/* layouts without a pod cgroup: each container's own */
		for (size_t i = 0; (e = cg_cache_next(&M.cache, &i));) {
			struct cg_entry *pc;
			char parent[4096];
			char *slash;

			if (e->ident.kind != CG_KIND_CONTAINER || e->level != e->ident.depth ||
			    e->removed_ns)
				continue;
			p = e->ident.pod_uid[0] ? POD(e->ident.pod_uid) : NULL;
			if (!p) {
				struct mctr *c = CTR(e->ident.id);

				p = c ? POD(c->pod_uid) : NULL;
			}
			if (!p || !p->selected)
				continue;
			snprintf(parent, sizeof(parent), "%s", e->path);
			slash = strrchr(parent, '/');
			if (slash && slash != parent)
				*slash = '\0';
			pc = cg_cache_find(&M.cache, parent);
			if (!pc || !idmap_get(&w, pc->id))
				want(&w, e->id, e->level);
		}
	}
	/* remove what is no longer wanted, then add */
	for (size_t i = 0; idmap_next(&M.installed, &i, &k, &v);) {
		if (idmap_get(&w, k))
			continue;
		err = M.by_mntns ? filter_del_mntns(k) : filter_del_cgroup(k, (int)(intptr_t)v - 1);
		if (err && err != -ENOENT)
			pr_warn("selection: cannot remove %llu: %s", (unsigned long long)k, strerror(-err));
		pr_debug("selection: removed %s %llu", M.by_mntns ? "mntns" : "cgroup",
			 (unsigned long long)k);
	}
	for (size_t i = 0; idmap_next(&w, &i, &k, &v);) {
		if (idmap_get(&M.installed, k))
			continue;
		err = M.by_mntns ? filter_add_mntns(k) : filter_add_cgroup(k, (int)(intptr_t)v - 1);
		if (err)
			pr_warn("selection: cannot add %llu: %s", (unsigned long long)k, strerror(-err));
		else
			pr_debug("selection: added %s %llu", M.by_mntns ? "mntns" : "cgroup",
				 (unsigned long long)k);
	}
	idmap_free(&M.installed);
	M.installed = w;
}

/* ------------------------------------------------------------ the thread */

static void sync_all(uint64_t now)
{
	bool ok = false;

	M.syncs++;
	M.last_sync_ns = now;
	if (M.cri_on && cri_sync(now) == 0)
		ok = true;
	if (M.kl_on && (kubelet_sync(now) == 0))
		ok = true;
	if (ok)
		M.last_ok_ns = now;
	M.next_resync_ns = now + (uint64_t)M.cfg->meta_resync_s * SEC;
}

static void process_pending(uint64_t now)
{
	/* copied out first: lookups resolve (and free) entries of the table */
	struct {
		char key[CG_ID_LEN + 1];
		bool pod;
	} due[64];
	size_t n = 0;
	uint64_t k;
	void *v;

	for (size_t i = 0; idmap_next(&M.pend, &i, &k, &v) && n < 64;) {
		struct pend *p = v;

		if (p->gave_up || p->next_ns > now)
			continue;
		strcpy(due[n].key, p->key);
		due[n++].pod = p->pod;
	}
	for (size_t j = 0; j < n; j++) {
		struct pend *p;
		int found = 0;

		if (due[j].pod) {
			found = cri_pods(now);
			if (found == 0)
				found = POD(due[j].key) != NULL;
		} else {
			found = cri_lookup(due[j].key, now);
		}
		p = PEND(due[j].key);
		if (found > 0 || !p)
			continue; /* resolved: the entry is gone */
		if ((found < 0 || !M.cri_on) && M.kl_on) {
			/* only the kubelet can tell: wait for a list fetched after it appeared */
			M.kl_wanted = true;
			if (M.kl_last_ns <= p->created_ns || M.kl_last_ns <= p->kl_seen_ns) {
				p->next_ns = M.kl_last_ns + KUBELET_MIN_GAP;
				continue;
			}
			p->kl_seen_ns = M.kl_last_ns; /* one attempt per fresh list */
		}
		p->attempts++;
		if (p->attempts >= PEND_ATTEMPTS || (!M.cri_on && !M.kl_on)) {
			p->gave_up = true;
			p->next_ns = now + (uint64_t)M.cfg->meta_resync_s * SEC;
			M.gave_up++;
			M.dirty = true;
			pr_debug("attribution: no source knows %s %s", p->pod ? "pod" : "container",
				 p->key);
		} else {
			p->next_ns = now + (PEND_FIRST_DELAY << (p->attempts - 1));
		}
	}
	if (M.kl_wanted && now - M.kl_last_ns >= KUBELET_MIN_GAP)
		kubelet_sync(now);
}

static void gc(uint64_t now)
{
	uint64_t grace = (uint64_t)M.cfg->meta_grace_s * SEC, k;
	uint64_t stale = grace + (uint64_t)M.cfg->meta_resync_s * SEC;
	struct cg_entry *e;
	void *v;

	if (M.have_cache) {
		for (size_t i = 0; (e = cg_cache_next(&M.cache, &i));) {
			if (e->removed_ns && now - e->removed_ns > grace) {
				cg_cache_remove(&M.cache, e->id);
				i = 0; /* the table moved under the walk */
				M.dirty = true;
			}
		}
	}
	for (size_t i = 0; idmap_next(&unresolved, &i, &k, &v);) {
		if (now - (uint64_t)(uintptr_t)v > grace) {
			idmap_del(&unresolved, k);
			i = 0;
		}
	}
	for (size_t i = 0; idmap_next(&M.pend, &i, &k, &v);) {
		struct pend *p = v;

		if (p->gave_up && now >= p->next_ns) {
			idmap_del(&M.pend, k);
			free(p);
			i = 0;
		}
	}
	/* gone from every source for longer than the grace: forget, unless all are down */
	if (!M.last_ok_ns || now - M.last_ok_ns > 2 * (uint64_t)M.cfg->meta_resync_s * SEC)
		return;
	for (size_t i = 0; idmap_next(&M.ctrs, &i, &k, &v);) {
		struct mctr *c = v;

		if (now - c->seen_ns > stale) {
			idmap_del(&M.ctrs, k);
			ctr_free(c);
			i = 0;
			M.dirty = true;
		}
	}
	for (size_t i = 0; idmap_next(&M.pods, &i, &k, &v);) {
		struct mpod *p = v;

		if (now - p->seen_ns > stale) {
			idmap_del(&M.pods, k);
			pod_free(p);
			i = 0;
			M.dirty = true;
		}
	}
}

static void drain_requests(uint64_t now)
{
	uint32_t h = atomic_load_explicit(&req_head, memory_order_relaxed);
	uint32_t t = atomic_load_explicit(&req_tail, memory_order_acquire);

	for (; h != t; h++)
		resolve_request(req_q[h % REQ_SLOTS], now);
	atomic_store_explicit(&req_head, h, memory_order_release);
}

static int next_timeout_ms(uint64_t now)
{
	uint64_t next = M.next_resync_ns, k;
	void *v;

	for (size_t i = 0; idmap_next(&M.pend, &i, &k, &v);) {
		struct pend *p = v;

		if (!p->gave_up && p->next_ns < next)
			next = p->next_ns;
	}
	if (M.kl_wanted && M.kl_last_ns + KUBELET_MIN_GAP < next)
		next = M.kl_last_ns + KUBELET_MIN_GAP;
	if (next <= now)
		return 0;
	/* housekeeping (grace expiry, snapshot reclaim) at least once a second */
	return next - now > SEC ? 1000 : (int)((next - now + MS - 1) / MS);
}

static void settle(void)
{
	if (M.dirty) {
		M.dirty = false;
		publish();
		update_selection();
	}
	snap_reclaim();
}

static void *meta_main(void *arg)
{
	struct epoll_event evs[4];
	uint64_t now;

	(void)arg;
	sync_all(now_ns());
	process_pending(now_ns());
	M.dirty = true;
	settle();
	pthread_mutex_lock(&M.lock);
	M.ready = true;
	pthread_cond_broadcast(&M.cond);
	pthread_mutex_unlock(&M.lock);

	for (;;) {
		int n = epoll_wait(M.ep, evs, 4, next_timeout_ms(now_ns()));

		for (int i = 0; i < n; i++) {
			uint64_t x;

			if (evs[i].data.fd == M.stopfd)
				return NULL;
			if (evs[i].data.fd == M.reqfd && read(M.reqfd, &x, sizeof(x)) < 0)
				continue;
		}
		if (M.cgw_method) {
			uint64_t lost = cgwatch_lost();

			cgwatch_consume();
			if (lost != M.cgw_lost_seen && M.have_cache) {
				/* the kernel dropped cgroup events: walk the tree once */
				M.cgw_lost_seen = lost;
				M.rescans++;
				cg_cache_scan(&M.cache, "/");
				M.dirty = true;
			}
		}
		now = now_ns();
		drain_requests(now);
		if (now >= M.next_resync_ns)
			sync_all(now);
		process_pending(now);
		gc(now);
		settle();
	}
	return NULL;
}

static int ep_add(int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(M.ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int setup_selection(const struct ps_config *cfg)
{
	char why[200];

	M.sel.namespaces = cfg->namespaces;
	M.sel.n_namespaces = (size_t)cfg->n_namespaces;
	M.sel.pods = cfg->pods;
	M.sel.n_pods = (size_t)cfg->n_pods;
	for (int i = 0; i < cfg->n_selectors; i++)
		if (sel_parse(&M.sel, cfg->selectors[i], why, sizeof(why)))
			return -EINVAL; /* config_parse checked already */
	M.selecting = sel_active(&M.sel);
	if (!M.selecting)
		return 0;
	if (!M.by_mntns && !M.have_cache) {
		pr_err("--namespace/--pod/--selector: cgroup2 is not mounted and attribution is "
		       "not by mount namespace");
		return -ENODEV;
	}
	/* an empty selection selects nothing, not everything */
	return filter_enable(M.by_mntns ? PS_F_MNTNS : PS_F_CGROUP);
}

int meta_start(const struct ps_config *cfg, int wait_ms)
{
	struct host_mntns host;
	struct timespec until;
	int err;

	M.cfg = cfg;
	/* the node's, also when the agent runs in a pod (hostPID) */
	if (privs_host_mntns(&host) == 0)
		M.host_mntns = host.ino;
	err = cg_layout_detect(&M.layout);
	if (err)
		return err;
	M.by_mntns = cfg->attribute_by == ATTRIB_BY_MNTNS ||
		     (cfg->attribute_by == ATTRIB_BY_AUTO && M.layout.mode != CG_MODE_V2 &&
		      M.layout.mode != CG_MODE_HYBRID);
	if (idmap_init(&M.pods, 64) || idmap_init(&M.ctrs, 64) || idmap_init(&M.pend, 16) ||
	    idmap_init(&M.installed, 16) || idmap_init(&unresolved, 16))
		return -ENOMEM;
	if (M.layout.v2_mount[0]) {
		err = cg_cache_init(&M.cache, M.layout.v2_mount);
		if (!err)
			err = cg_cache_scan(&M.cache, "/");
		if (err)
			pr_warn("attribution: cannot read the cgroup tree at %s: %s",
				M.layout.v2_mount, strerror(-err));
		M.have_cache = !err;
	}
	pr_info("attribution: cgroups %s%s%s%s, attributing by %s", cg_mode_name(M.layout.mode),
		M.layout.v2_mount[0] ? " (cgroup2 at " : "", M.layout.v2_mount,
		M.layout.v2_mount[0] ? ")" : "", M.by_mntns ? "mount namespace" : "cgroup id");
	err = setup_selection(cfg);
	if (err)
		return err;

	M.cri_on = !cfg->cri_socket || strcmp(cfg->cri_socket, "none") != 0;
	M.cri_auto = !cfg->cri_socket;
	M.cri_backoff = CRI_RETRY_MIN;
	if (M.cri_on) {
		err = cri_open(&M.cri, M.cri_auto ? "" : cfg->cri_socket, 2000);
		if (err)
			return err;
	}
	if (cfg->kubelet_url) {
		err = kubelet_open(&M.kl, cfg->kubelet_url, cfg->kubelet_token, cfg->kubelet_ca,
				   cfg->kubelet_insecure, 5000);
		if (err)
			return err;
		M.kl_on = true;
	}
	if (!M.cri_on && !M.kl_on) {
		pr_warn("attribution: no CRI and no kubelet: records only get what cgroup paths "
			"tell (container id, pod uid)");
		meta_health(true, "off (--cri-socket none, no --kubelet)");
	}
	if (M.cri_on)
		cri_register_metrics();

	M.ep = epoll_create1(EPOLL_CLOEXEC);
	M.reqfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	M.stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (M.ep < 0 || M.reqfd < 0 || M.stopfd < 0)
		return -errno;
	if ((err = ep_add(M.reqfd)) || (err = ep_add(M.stopfd)))
		return err;
	if (cfg->cgwatch_hook && strcmp(cfg->cgwatch_hook, "none") == 0) {
		M.cgw_method = NULL;
		pr_info("cgwatch: off (--hook cgwatch=none): new cgroups are looked up by id");
	} else if ((err = cgwatch_start(cfg->cgwatch_hook, on_cgroup_event, NULL,
					&M.cgw_method))) {
		M.cgw_method = NULL;
		if (cfg->cgwatch_hook) {
			pr_err("cgwatch: cannot start with %s: %s", cfg->cgwatch_hook, strerror(-err));
			return err;
		}
		pr_warn("attribution: cannot follow cgroup creation (%s): new cgroups are looked up "
			"by id when first seen", strerror(-err));
	} else {
		pr_info("cgwatch: following cgroups with %s", M.cgw_method);
		err = ep_add(cgwatch_epoll_fd());
		if (err)
			return err;
	}

	{
		/* signals belong to the event loop's signalfd, never to this thread */
		sigset_t all, old;

		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		err = pthread_create(&M.th, NULL, meta_main, NULL);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (err)
			return -err;
	}
	M.running = true;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&M.lock);
	while (!M.ready && pthread_cond_timedwait(&M.cond, &M.lock, &until) == 0)
		;
	if (!M.ready)
		pr_warn("attribution: first metadata sync still running after %d ms; starting anyway",
			wait_ms);
	pthread_mutex_unlock(&M.lock);
	return 0;
}

void meta_halt(void)
{
	uint64_t one = 1;

	if (!M.running)
		return;
	if (write(M.stopfd, &one, sizeof(one)) < 0)
		pr_warn("attribution: cannot stop the metadata thread: %s", strerror(errno));
	pthread_join(M.th, NULL);
	M.running = false;
}

void meta_stop(void)
{
	uint64_t k;
	void *v;

	meta_halt();
	cgwatch_stop();
	M.cgw_method = NULL;
	snap_shutdown();
	for (size_t i = 0; idmap_next(&M.pods, &i, &k, &v);)
		pod_free(v);
	for (size_t i = 0; idmap_next(&M.ctrs, &i, &k, &v);)
		ctr_free(v);
	for (size_t i = 0; idmap_next(&M.pend, &i, &k, &v);)
		free(v);
	idmap_free(&M.pods);
	idmap_free(&M.ctrs);
	idmap_free(&M.pend);
	idmap_free(&M.installed);
	idmap_free(&unresolved);
	if (M.have_cache)
		cg_cache_free(&M.cache);
	M.have_cache = false;
	if (M.cri_on)
		cri_close(&M.cri);
	if (M.kl_on)
		kubelet_close(&M.kl);
	M.cri_on = M.kl_on = false;
	for (int *fd = &M.ep; fd <= &M.stopfd; fd++) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	}
}

static size_t labels_bytes(const struct kv *l, size_t n)
{
	size_t b = n * sizeof(*l);

	for (size_t i = 0; i < n; i++)
		b += strlen(l[i].k) + strlen(l[i].v) + 2;
	return b;
}

/* After meta_halt(): the thread's tables are read here. */
void meta_summary(void)
{
	size_t master = idmap_bytes(&M.pods) + idmap_bytes(&M.ctrs) + idmap_bytes(&M.pend);
	uint64_t k;
	void *v;

	for (size_t i = 0; idmap_next(&M.pods, &i, &k, &v);) {
		struct mpod *p = v;

		master += sizeof(*p) + strlen(p->name) + strlen(p->ns) + 2 +
			  labels_bytes(p->cri_labels, p->n_cri_labels) +
			  labels_bytes(p->kl_labels, p->n_kl_labels);
	}
	for (size_t i = 0; idmap_next(&M.ctrs, &i, &k, &v);)
		master += sizeof(struct mctr) + strlen(((struct mctr *)v)->name) + 1;
	pr_info("attribution: metadata: %zu pods, %zu containers, %zu cgroups; memory: cgroup "
		"cache %zu KiB, pods+containers %zu KiB, snapshot %zu KiB",
		M.pods.n, M.ctrs.n, M.have_cache ? M.cache.by_id.n : 0,
		M.have_cache ? cg_cache_bytes(&M.cache) / 1024 : 0, master / 1024,
		snap_current_bytes() / 1024);
	pr_info("attribution: %llu full syncs, %llu targeted lookups, %llu ids resolved by "
		"handle, %llu rescans, %llu containers no source knew, %llu requests dropped",
		(unsigned long long)M.syncs, (unsigned long long)M.targeted,
		(unsigned long long)M.resolved_by_handle, (unsigned long long)M.rescans,
		(unsigned long long)M.gave_up, (unsigned long long)atomic_load(&req_dropped));
	if (M.cri_on) {
		for (int m = 0; m < CRI_NMETHODS; m++) {
			const struct cri_latency *l = &M.cri.lat[m];

			if (!l->calls)
				continue;
			pr_info("attribution: CRI %s: %llu calls, %llu failed, avg %.2f ms, max %.2f ms",
				cri_method_name(m), (unsigned long long)l->calls,
				(unsigned long long)l->errors, l->total_ns / 1e6 / l->calls,
				l->max_ns / 1e6);
		}
	}
	if (M.kl_on && M.kl.calls)
		pr_info("attribution: kubelet /pods: %llu calls, %llu failed, avg %.2f ms, max %.2f ms, "
			"last %llu bytes", (unsigned long long)M.kl.calls,
			(unsigned long long)M.kl.errors, M.kl.total_ns / 1e6 / M.kl.calls,
			M.kl.max_ns / 1e6, (unsigned long long)M.kl.last_bytes);
}
