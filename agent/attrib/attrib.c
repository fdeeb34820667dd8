// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Attribution on the event path: read-only lookups in the newest snapshot
 * (snapshot.h), no lock, no syscall, no allocation. A record from a cgroup
 * or mount namespace the snapshot does not know yet, or from a container
 * whose metadata is being fetched, is copied aside (defer.h) and handed back
 * once the metadata is in or its wait has run out.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "agent/attrib/attrib.h"
#include "agent/clock.h"
#include "agent/attrib/defer.h"
#include "agent/attrib/meta.h"
#include "agent/log.h"
#include "agent/loop.h"
#include "lib/metrics.h"
#include "agent/out/output.h"
#include "agent/attrib/snapshot.h"

#define DEFER_BYTES (4u << 20)
#define RECENT_SLOTS 256

#define ATTR_HELP "Records by attribution result: hit (pod known), partial (a container " \
	"known only by its cgroup path), miss (host or unknown)."
#define WAIT_HELP "Records that waited for their pod's metadata, by outcome: resolved, " \
	"expired (went out when the wait ran out), no_room (went out at once)."
static struct metric m_hit = METRIC_COUNTER("podsnoop_attribution_total", ATTR_HELP,
					   "result", "hit");
static struct metric m_partial = METRIC_COUNTER("podsnoop_attribution_total", ATTR_HELP,
					       "result", "partial");
static struct metric m_miss = METRIC_COUNTER("podsnoop_attribution_total", ATTR_HELP,
					    "result", "miss");
static struct metric m_resolved = METRIC_COUNTER("podsnoop_attribution_waits_total", WAIT_HELP,
						"result", "resolved");
static struct metric m_expired = METRIC_COUNTER("podsnoop_attribution_waits_total", WAIT_HELP,
					       "result", "expired");
static struct metric m_noroom = METRIC_COUNTER("podsnoop_attribution_waits_total", WAIT_HELP,
					      "result", "no_room");

static const struct snap *S;
static uint64_t S_gen;
static struct attrib_stats stats;
static uint64_t wait_ns, pump_now;
static bool replaying, kick_pending, started;
/* ids asked about since the last snapshot: ask once */
static uint64_t recent[RECENT_SLOTS];

/* The attr for a record; NULL and *unknown when the snapshot does not know it. */
static const struct attr *find(uint64_t cgroup_id, uint64_t mntns_id, bool *unknown,
			       uint64_t *key, bool *by_mntns)
{
	const struct attr *a;

	*unknown = false;
	*by_mntns = S->by_mntns;
	if (S->by_mntns) {
		if (!mntns_id || mntns_id == S->host_mntns)
			return &snap_host_attr;
		a = idmap_get(&S->mnt, mntns_id);
		*key = mntns_id;
	} else {
		if (!cgroup_id)
			return &snap_host_attr;
		a = idmap_get(&S->cg, cgroup_id);
		*key = cgroup_id;
	}
	*unknown = !a;
	return a;
}

static const struct pod_ref *lookup(uint64_t cgroup_id, uint64_t mntns_id)
{
	const struct attr *a;
	bool unknown, m;
	uint64_t key;

	if (!S) {
		stats.unattributed++;
		metric_inc(&m_miss);
		return NULL;
	}
	a = find(cgroup_id, mntns_id, &unknown, &key, &m);
	if (!a || a->state == AS_HOST) {
		stats.unattributed++;
		metric_inc(&m_miss);
		return NULL;
	}
	if (a->state == AS_FULL) {
		stats.attributed++;
		metric_inc(&m_hit);
	} else {
		stats.partial++;
		metric_inc(&m_partial);
	}
	return &a->ref;
}

static void request(uint64_t key, bool mntns)
{
	uint64_t *slot = &recent[(key * 0x9e3779b97f4a7c15ull) >> 56];

	if (*slot == key)
		return;
	*slot = key;
	meta_request(key, mntns);
	kick_pending = true;
}

static bool defer(uint64_t cgroup_id, uint64_t mntns_id)
{
	const struct loop_sample *smp;
	const struct attr *a;
	bool unknown, m;
	uint64_t key;

	if (replaying || !S || !wait_ns || !(smp = loop_sample_current()))
		return false;
	a = find(cgroup_id, mntns_id, &unknown, &key, &m);
	if (a && a->state != AS_PENDING)
		return false;
	if (unknown)
		request(key, m);
	if (!defer_push(smp, pump_now + wait_ns, cgroup_id, mntns_id)) {
		stats.defer_full++;
		metric_inc(&m_noroom);
		return false;
	}
	stats.deferred++;
	return true;
}

static bool ready(uint64_t cgroup_id, uint64_t mntns_id, uint64_t deadline, void *ctx)
{
	const struct attr *a;
	bool unknown, m;
	uint64_t key, waited = pump_now + wait_ns - deadline;

	(void)ctx;
	a = find(cgroup_id, mntns_id, &unknown, &key, &m);
	if (!a || a->state == AS_PENDING) {
		if (pump_now < deadline)
			return false;
		stats.wait_expired++;
		metric_inc(&m_expired);
	} else {
		metric_inc(&m_resolved);
	}
	if (wait_ns && waited > stats.max_wait_ns)
		stats.max_wait_ns = waited;
	return true;
}

void attrib_pump(void)
{
	if (!started)
		return;
	/* between drains: no record holds a pointer into the old snapshot */
	S = snap_acquire();
	if (S && S->gen != S_gen) {
		S_gen = S->gen;
		memset(recent, 0, sizeof(recent));
	}
	pump_now = clock_now_ns(CLOCK_MONOTONIC);
	if (S && defer_pending()) {
		replaying = true;
		defer_pump(ready, NULL);
		replaying = false;
	}
	if (kick_pending) {
		meta_kick();
		kick_pending = false;
	}
}

void attrib_finish(void)
{
	uint64_t until = clock_now_ns(CLOCK_MONOTONIC) + wait_ns + 100000000ull;
	struct timespec ts = { 0, 5000000 };

	if (!started)
		return;
	attrib_pump();
	while (defer_pending() && clock_now_ns(CLOCK_MONOTONIC) < until) {
		nanosleep(&ts, NULL);
		attrib_pump();
	}
	/* whatever is left (a stuck metadata thread) goes out as it is */
	if (defer_pending()) {
		wait_ns = 0;
		pump_now = UINT64_MAX / 2;
		replaying = true;
		defer_pump(ready, NULL);
		replaying = false;
	}
	meta_halt();
}

int attrib_start(const struct ps_config *cfg)
{
	int err;

	wait_ns = (uint64_t)cfg->attrib_wait_ms * 1000000ull;
	{
		static bool registered;
		struct metric *all[] = { &m_hit, &m_partial, &m_miss, &m_resolved, &m_expired,
					 &m_noroom };

		for (size_t i = 0; i < sizeof(all) / sizeof(all[0]) && !registered; i++)
			metrics_register(all[i]);
		registered = true;
	}
	err = defer_init(DEFER_BYTES);
	if (err)
		return err;
	err = meta_start(cfg, 10000);
	if (err)
		return err;
	out_set_attrib(lookup);
	out_set_defer(defer);
	started = true;
	pump_now = clock_now_ns(CLOCK_MONOTONIC);
	S = snap_acquire();
	return 0;
}

void attrib_stop(void)
{
	out_set_attrib(NULL);
	out_set_defer(NULL);
	S = NULL;
	started = false;
	meta_stop();
	defer_free();
}

void attrib_get_stats(struct attrib_stats *s)
{
	*s = stats;
}

void attrib_summary(void)
{
	pr_info("attribution: %llu records attributed, %llu partly (container without pod "
		"metadata), %llu unattributed; %llu waited for metadata (longest %.1f ms), %llu of "
		"them until the wait ran out, %llu could not wait (no room)",
		(unsigned long long)stats.attributed, (unsigned long long)stats.partial,
		(unsigned long long)stats.unattributed, (unsigned long long)stats.deferred,
		stats.max_wait_ns / 1e6, (unsigned long long)stats.wait_expired,
		(unsigned long long)stats.defer_full);
	meta_summary();
}
