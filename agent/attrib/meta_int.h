/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Between the parts of the metadata thread (meta.h says what it does):
 *
 *   meta_store.c    what is known: cgroups, containers, pods, the ids still
 *                   being looked up; builds the snapshots the event path reads
 *   meta_sources.c  who tells: the CRI and the kubelet, full syncs, targeted
 *                   lookups of containers that just appeared
 *   meta_select.c   --namespace/--pod/--selector turned into filter map ids
 *   meta.c          the thread itself, its requests from the event loop,
 *                   readiness, start and stop
 *
 * Everything here runs on the metadata thread, except where it says not.
 */
#ifndef PS_META_INT_H
#define PS_META_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "agent/clock.h"
#include "agent/config.h"
#include "bpf/cgwatch.h"
#include "cgroup/cgcache.h"
#include "cgroup/cgroup.h"
#include "cgroup/idmap.h"

#define MS 1000000ull
#define SEC 1000000000ull
/* a key of the event thread's requests that is a mount namespace, not a cgroup id */
#define REQ_MNTNS (1ull << 63)

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

/* ---- the store (meta_store.c) ---- */

struct meta_store {
	const struct ps_config *cfg;
	struct cg_layout layout;
	bool by_mntns;			/* attributing by mount namespace (cgroup v1 nodes) */
	uint64_t host_mntns;
	struct cg_cache cache;		/* cgroup id <-> path, when cgroup2 is mounted */
	bool have_cache;
	struct idmap pods, ctrs, pend;	/* keyed by idmap_hash_str */
	/* ids the event path asked about that were gone: value = when (for expiry) */
	struct idmap unresolved;
	bool dirty;			/* publish a new snapshot, update the selection */
	/* for the summary */
	uint64_t syncs, targeted, gave_up, resolved_by_handle, rescans;
};
extern struct meta_store store;

/* Layout, cgroup tree, tables; -errno. */
int store_init(const struct ps_config *cfg);
void store_free(void);
struct mpod *store_pod(const char *uid);
struct mctr *store_ctr(const char *id);
struct pend *store_pend(const char *key);
struct mpod *pod_upsert(const char *uid, const char *name, const char *ns, uint64_t now);
struct mctr *ctr_upsert(const char *id, const char *name, const char *pod_uid,
			const char *runtime, bool sandbox, uint64_t now);
/* Replace a pod's labels (CRI's or kubelet's); true when they changed. */
bool set_labels(struct kv **l, size_t *n, const char *const *k, const char *const *v,
		size_t m);
/* cgwatch's callback: a cgroup was made or removed. */
void store_cgroup_event(void *ctx, const struct cgw_event *e);
/* The event path met an id nobody knows (a cgroup id, or REQ_MNTNS | mntns). */
void store_unknown_id(uint64_t key, uint64_t now);
/* The kernel lost cgroup events: walk the tree once. */
void store_rescan(void);
/* Build the snapshot of what is known and publish it to the event path. */
void store_publish(void);
/* Expire what is gone; forget_gone: every source answered lately, so absent means gone. */
void store_gc(uint64_t now, bool forget_gone);
/* When the first pending lookup is due (UINT64_MAX: none). */
uint64_t store_pend_next_ns(void);
/* The memory line of the summary. */
void store_summary(void);

/* ---- the sources (meta_sources.c) ---- */

/* Open the CRI and kubelet clients the flags ask for; -errno. */
int sources_open(const struct ps_config *cfg);
void sources_close(void);
/* A full sync of every source. */
void sources_sync(uint64_t now);
/* A full sync if due, then the pending lookups that are due. */
void sources_run(uint64_t now);
/* Bring the next full sync forward (a mount namespace nobody knows). */
void sources_sync_soon(uint64_t now);
/* When the sources want to run next. */
uint64_t sources_next_ns(void);
/* Some source answered within two resync periods: what they omit is gone. */
bool sources_answering(uint64_t now);
/* CRI and kubelet latencies, on stderr. */
void sources_summary(void);

/* ---- the selection (meta_select.c) ---- */

/* --namespace/--pod/--selector; -errno. */
int select_init(const struct ps_config *cfg);
/* Make the filter maps hold the selected pods' ids. */
void select_update(void);
void select_free(void);

/* ---- the thread (meta.c) ---- */

/* The "metadata" component of /readyz. */
void meta_health(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline uint64_t now_ns(void)
{
	return clock_now_ns(CLOCK_MONOTONIC);
}

#endif
