// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The metadata thread's sources (meta_int.h): the container runtime's CRI
 * and the kubelet's pod list. A full sync every --meta-resync seconds; a
 * container or pod a new cgroup names is looked up at once, and again with
 * a backoff until some source knows it. A source that fails is retried;
 * attribution goes on with what the other (or the cgroup paths) tell.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/attrib/cri.h"
#include "agent/attrib/kubelet.h"
#include "agent/attrib/meta_int.h"
#include "agent/log.h"

/* an unknown container: ask again after 25, 50, 100, 200 ms, then give up */
#define PEND_ATTEMPTS 5
#define PEND_FIRST_DELAY (25 * MS)
/* the kubelet's pod list is heavy: at most this often on demand */
#define KUBELET_MIN_GAP (1 * SEC)
/* unknown mount namespaces (v1 nodes) bring a full sync forward, at most this often */
#define REQ_SYNC_GAP (100 * MS)
#define CRI_RETRY_MIN (500 * MS)
#define CRI_RETRY_MAX (10 * SEC)

static struct {
	struct cri_client cri;
	bool cri_on, cri_up, cri_auto, cri_warned;
	uint64_t cri_retry_ns, cri_backoff;

	struct kubelet_client kl;
	bool kl_on, kl_up, kl_warned, kl_wanted;
	uint64_t kl_last_ns;

	uint64_t next_resync_ns, last_ok_ns, last_sync_ns;
} src;

/* --------------------------------------------------------------- the CRI */

static void cri_down(void)
{
	if (!src.cri_warned)
		pr_warn("%s; pods will not be attributed through the CRI until it answers "
			"(retrying)", src.cri.err);
	src.cri_warned = true;
	src.cri_up = false;
	meta_health(src.kl_up, "CRI down: %s", src.cri.err);
	src.cri_retry_ns = now_ns() + src.cri_backoff;
	src.cri_backoff = src.cri_backoff * 2 > CRI_RETRY_MAX ? CRI_RETRY_MAX : src.cri_backoff * 2;
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

	if (!src.cri_on)
		return false;
	if (src.cri_up)
		return true;
	if (urgent ? now - last_try < 50 * MS : now < src.cri_retry_ns)
		return false;
	last_try = now;
	if (src.cri_auto) {
		if (cri_detect_socket(sock, sizeof(sock))) {
			if (!src.cri_warned)
				pr_warn("no CRI socket found (tried %s, %s and others); pods will "
					"not be attributed through the CRI: use --cri-socket",
					cri_default_sockets[0], cri_default_sockets[1]);
			src.cri_warned = true;
			src.cri_retry_ns = now_ns() + CRI_RETRY_MAX;
			/* nothing asked for, nothing found (not a node?): off, not failing */
			meta_health(true, "off (no CRI socket found; --cri-socket names one)");
			return false;
		}
		if (strcmp(sock, src.cri.socket)) {
			cri_close(&src.cri);
			if (cri_open(&src.cri, sock, 2000))
				return false;
		}
	}
	if (cri_version(&src.cri)) {
		cri_down();
		return false;
	}
	if (src.cri_warned) {
		pr_info("CRI: %s %s at %s answers again", src.cri.runtime_name, src.cri.runtime_version,
			src.cri.socket);
		src.next_resync_ns = now; /* catch up on what happened meanwhile */
	}
	else
		pr_info("CRI: %s %s at %s", src.cri.runtime_name, src.cri.runtime_version, src.cri.socket);
	src.cri_up = true;
	src.cri_warned = false;
	src.cri_backoff = CRI_RETRY_MIN;
	meta_health(true, "CRI %s %s at %s", src.cri.runtime_name, src.cri.runtime_version,
		   src.cri.socket);
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
	store.dirty |= set_labels(&p->cri_labels, &p->n_cri_labels, keys, vals, n);
	ctr_upsert(sb->id, "", p->uid, src.cri.runtime_name, true, now);
}

static void add_container(const Runtime__V1__Container *c, uint64_t now)
{
	struct mctr *sb = store_ctr(c->pod_sandbox_id), *m;
	const char *uid = sb ? sb->pod_uid : NULL;

	if (!uid) /* sandbox not listed yet: kubelet's label says the pod */
		uid = cri_label(c->n_labels, (cri_label_t **)c->labels, "io.kubernetes.pod.uid");
	if (!uid)
		uid = "";
	m = ctr_upsert(c->id, c->metadata ? c->metadata->name : "", uid, src.cri.runtime_name, false,
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

	if (c->mntns || c->sandbox || !c->running || !src.cri_up)
		return;
	if (cri_container_status(&src.cri, c->id, &st, &pid)) {
		pr_debug("%s", src.cri.err);
		return;
	}
	runtime__v1__container_status_response__free_unpacked(st, NULL);
	if (pid > 0 && cg_pid_mntns(pid, &ino) == 0 && ino != store.host_mntns) {
		c->pid = pid;
		c->mntns = ino;
		store.dirty = true;
	}
}

/* Every pod sandbox the runtime lists, into the store; -EIO when the CRI failed. */
static int add_all_sandboxes(uint64_t now)
{
	Runtime__V1__ListPodSandboxResponse *sbs;

	if (cri_list_sandboxes(&src.cri, "", &sbs)) {
		cri_down();
		return -EIO;
	}
	for (size_t i = 0; i < sbs->n_items; i++)
		add_sandbox(sbs->items[i], now);
	runtime__v1__list_pod_sandbox_response__free_unpacked(sbs, NULL);
	return 0;
}

static int cri_sync(uint64_t now)
{
	Runtime__V1__ListContainersResponse *cs;
	struct mctr *c;

	if (!cri_ensure())
		return -ENOTCONN;
	if (add_all_sandboxes(now))
		return -EIO;
	if (cri_list_containers(&src.cri, "", &cs)) {
		cri_down();
		return -EIO;
	}
	for (size_t i = 0; i < cs->n_containers; i++)
		add_container(cs->containers[i], now);
	runtime__v1__list_containers_response__free_unpacked(cs, NULL);
	if (store.by_mntns) {
		uint64_t k;
		void *v;

		for (size_t i = 0; idmap_next(&store.ctrs, &i, &k, &v);) {
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
	if (!cri_ensure_now(true))
		return -ENOTCONN;
	store.targeted++;
	return add_all_sandboxes(now);
}

/* One container (or sandbox) by id; 1 found, 0 not, -errno when the CRI failed. */
static int cri_lookup(const char *id, uint64_t now)
{
	Runtime__V1__ListContainersResponse *cs;
	Runtime__V1__ListPodSandboxResponse *sbs;
	int found = 0;

	if (!cri_ensure_now(true))
		return -ENOTCONN;
	store.targeted++;
	if (cri_list_containers(&src.cri, id, &cs)) {
		cri_down();
		return -EIO;
	}
	for (size_t i = 0; i < cs->n_containers; i++) {
		const Runtime__V1__Container *c = cs->containers[i];

		/* its pod, if unknown, first */
		if (!store_ctr(c->pod_sandbox_id) && cri_list_sandboxes(&src.cri, c->pod_sandbox_id, &sbs) == 0) {
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
		if (store.by_mntns && store_ctr(id))
			learn_mntns(store_ctr(id));
		return 1;
	}
	/* a pod's sandbox (pause) container is not listed among containers */
	if (cri_list_sandboxes(&src.cri, id, &sbs)) {
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

	if (!src.kl_on)
		return -ENOTCONN;
	src.kl_last_ns = now;
	src.kl_wanted = false;
	err = kubelet_fetch(&src.kl, &l);
	if (err) {
		if (!src.kl_warned)
			pr_warn("%s (retrying)", src.kl.err);
		src.kl_warned = true;
		src.kl_up = false;
		if (!src.cri_up)
			meta_health(false, "%s", src.kl.err);
		return err;
	}
	if (src.kl_warned || !src.kl_up)
		pr_info("kubelet: %zu pods from %s%s", l.n, src.kl.url,
			src.kl_warned ? " (answers again)" : "");
	if (l.skipped)
		pr_debug("kubelet: %zu list items without uid/name/namespace skipped", l.skipped);
	src.kl_warned = false;
	src.kl_up = true;
	if (!src.cri_on || src.cri_up)
		meta_health(true, "%s%s%zu pods from the kubelet", src.cri_up ? src.cri.runtime_name : "",
			   src.cri_up ? " and " : "", l.n);
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
		store.dirty |= set_labels(&p->kl_labels, &p->n_kl_labels, keys, vals, n);
		for (size_t j = 0; j < kp->n_containers; j++) {
			const struct kl_container *kc = &kp->containers[j];
			struct mctr *c = store_ctr(kc->id);

			/* the CRI knows better what runtime and state it is */
			ctr_upsert(kc->id, kc->name, p->uid,
				   c && c->runtime[0] ? c->runtime : kc->runtime, false, now);
		}
	}
	kubelet_podlist_free(&l);
	return 0;
}

/* ------------------------------------------------------------ syncing */

void sources_sync(uint64_t now)
{
	bool ok = false;

	store.syncs++;
	src.last_sync_ns = now;
	if (src.cri_on && cri_sync(now) == 0)
		ok = true;
	if (src.kl_on && (kubelet_sync(now) == 0))
		ok = true;
	if (ok)
		src.last_ok_ns = now;
	src.next_resync_ns = now + (uint64_t)store.cfg->meta_resync_s * SEC;
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

	for (size_t i = 0; idmap_next(&store.pend, &i, &k, &v) && n < 64;) {
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
				found = store_pod(due[j].key) != NULL;
		} else {
			found = cri_lookup(due[j].key, now);
		}
		p = store_pend(due[j].key);
		if (found > 0 || !p)
			continue; /* resolved: the entry is gone */
		if ((found < 0 || !src.cri_on) && src.kl_on) {
			/* only the kubelet can tell: wait for a list fetched after it appeared */
			src.kl_wanted = true;
			if (src.kl_last_ns <= p->created_ns || src.kl_last_ns <= p->kl_seen_ns) {
				p->next_ns = src.kl_last_ns + KUBELET_MIN_GAP;
				continue;
			}
			p->kl_seen_ns = src.kl_last_ns; /* one attempt per fresh list */
		}
		p->attempts++;
		if (p->attempts >= PEND_ATTEMPTS || (!src.cri_on && !src.kl_on)) {
			p->gave_up = true;
			p->next_ns = now + (uint64_t)store.cfg->meta_resync_s * SEC;
			store.gave_up++;
			store.dirty = true;
			pr_debug("attribution: no source knows %s %s", p->pod ? "pod" : "container",
				 p->key);
		} else {
			p->next_ns = now + (PEND_FIRST_DELAY << (p->attempts - 1));
		}
	}
	if (src.kl_wanted && now - src.kl_last_ns >= KUBELET_MIN_GAP)
		kubelet_sync(now);
}

void sources_run(uint64_t now)
{
	if (now >= src.next_resync_ns)
		sources_sync(now);
	process_pending(now);
}

void sources_sync_soon(uint64_t now)
{
	if (src.next_resync_ns > src.last_sync_ns + REQ_SYNC_GAP)
		src.next_resync_ns = src.last_sync_ns + REQ_SYNC_GAP > now ?
					     src.last_sync_ns + REQ_SYNC_GAP : now;
}

uint64_t sources_next_ns(void)
{
	uint64_t next = src.next_resync_ns;

	if (src.kl_wanted && src.kl_last_ns + KUBELET_MIN_GAP < next)
		next = src.kl_last_ns + KUBELET_MIN_GAP;
	return next;
}

bool sources_answering(uint64_t now)
{
	return src.last_ok_ns &&
	       now - src.last_ok_ns <= 2 * (uint64_t)store.cfg->meta_resync_s * SEC;
}

int sources_open(const struct ps_config *cfg)
{
	int err;

	src.cri_on = !cfg->cri_socket || strcmp(cfg->cri_socket, "none") != 0;
	src.cri_auto = !cfg->cri_socket;
	src.cri_backoff = CRI_RETRY_MIN;
	if (src.cri_on) {
		err = cri_open(&src.cri, src.cri_auto ? "" : cfg->cri_socket, 2000);
		if (err)
			return err;
	}
	if (cfg->kubelet_url) {
		err = kubelet_open(&src.kl, cfg->kubelet_url, cfg->kubelet_token, cfg->kubelet_ca,
				   cfg->kubelet_insecure, 5000);
		if (err) {
			pr_err("%s", src.kl.err[0] ? src.kl.err : strerror(-err));
			return err;
		}
		src.kl_on = true;
	}
	if (!src.cri_on && !src.kl_on) {
		pr_warn("attribution: no CRI and no kubelet: records only get what cgroup paths "
			"tell (container id, pod uid)");
		meta_health(true, "off (--cri-socket none, no --kubelet)");
	}
	if (src.cri_on)
		cri_register_metrics();
	return 0;
}

void sources_close(void)
{
	if (src.cri_on)
		cri_close(&src.cri);
	if (src.kl_on)
		kubelet_close(&src.kl);
	src.cri_on = src.kl_on = false;
}

void sources_summary(void)
{
	if (src.cri_on) {
		for (int m = 0; m < CRI_NMETHODS; m++) {
			const struct cri_latency *l = &src.cri.lat[m];

			if (!l->calls)
				continue;
			pr_info("attribution: CRI %s: %llu calls, %llu failed, avg %.2f ms, max %.2f ms",
				cri_method_name(m), (unsigned long long)l->calls,
				(unsigned long long)l->errors, l->total_ns / 1e6 / l->calls,
				l->max_ns / 1e6);
		}
	}
	if (src.kl_on && src.kl.calls)
		pr_info("attribution: kubelet /pods: %llu calls, %llu failed, avg %.2f ms, max %.2f ms, "
			"last %llu bytes", (unsigned long long)src.kl.calls,
			(unsigned long long)src.kl.errors, src.kl.total_ns / 1e6 / src.kl.calls,
			src.kl.max_ns / 1e6, (unsigned long long)src.kl.last_bytes);
}
