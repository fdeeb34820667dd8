// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The metadata thread (meta.h): one epoll over the event loop's requests,
 * cgwatch's ring buffer and a stop eventfd, with a timeout for the next
 * sync or lookup that is due. Each round drains the requests, runs the
 * sources, expires what is gone, and when anything changed publishes a new
 * snapshot and updates the selection. The parts: meta_int.h.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "agent/attrib/meta.h"
#include "agent/attrib/meta_int.h"
#include "agent/attrib/snapshot.h"
#include "agent/http/endpoints.h"
#include "agent/log.h"
#include "agent/tracers/cgwatch.h"

/* the event thread's requests: unknown cgroup ids and mount namespaces */
#define REQ_SLOTS 4096
static uint64_t req_q[REQ_SLOTS];
static _Atomic uint32_t req_head, req_tail;
static _Atomic uint64_t req_dropped;

static struct {
	const char *cgw_method;
	uint64_t cgw_lost_seen;

	int ep, reqfd, stopfd;
	pthread_t th;
	bool running;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool ready;
} M = { .ep = -1, .reqfd = -1, .stopfd = -1, .lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER };

bool meta_by_mntns(void)
{
	return store.by_mntns;
}

/* ------------------------------------------------------------ readiness */

static char health_msg[512];
static bool health_ok, health_known;

/* Remembered for meta_health_reapply(). */
void meta_health(bool ok, const char *fmt, ...)
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

/* ------------------------------------------------------------ the thread */

static void drain_requests(uint64_t now)
{
	uint32_t h = atomic_load_explicit(&req_head, memory_order_relaxed);
	uint32_t t = atomic_load_explicit(&req_tail, memory_order_acquire);

	for (; h != t; h++) {
		uint64_t key = req_q[h % REQ_SLOTS];

		if (key & REQ_MNTNS)
			sources_sync_soon(now);
		store_unknown_id(key, now);
	}
	atomic_store_explicit(&req_head, h, memory_order_release);
}

static int next_timeout_ms(uint64_t now)
{
	uint64_t next = sources_next_ns(), pend = store_pend_next_ns();

	if (pend < next)
		next = pend;
	if (next <= now)
		return 0;
	/* housekeeping (grace expiry, snapshot reclaim) at least once a second */
	return next - now > SEC ? 1000 : (int)((next - now + MS - 1) / MS);
}

static void settle(void)
{
	if (store.dirty) {
		store.dirty = false;
		store_publish();
		select_update();
	}
	snap_reclaim();
}

static void *meta_main(void *arg)
{
	struct epoll_event evs[4];
	uint64_t now;

	(void)arg;
	sources_sync(now_ns());
	sources_run(now_ns()); /* what the first sync left pending */
	store.dirty = true;
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
			if (lost != M.cgw_lost_seen && store.have_cache) {
				/* the kernel dropped cgroup events: walk the tree once */
				M.cgw_lost_seen = lost;
				store_rescan();
			}
		}
		now = now_ns();
		drain_requests(now);
		sources_run(now);
		store_gc(now, sources_answering(now));
		settle();
	}
	return NULL;
}

static int ep_add(int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(M.ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

int meta_start(const struct ps_config *cfg, int wait_ms)
{
	const char *forced = cfg->helper_hooks[helper_index(cgwatch_helper.name)];
	struct timespec until;
	int err;

	err = store_init(cfg);
	if (!err)
		err = select_init(cfg);
	if (!err)
		err = sources_open(cfg);
	if (err)
		return err;

	M.ep = epoll_create1(EPOLL_CLOEXEC);
	M.reqfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	M.stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (M.ep < 0 || M.reqfd < 0 || M.stopfd < 0)
		return -errno;
	if ((err = ep_add(M.reqfd)) || (err = ep_add(M.stopfd)))
		return err;
	if (forced && strcmp(forced, "none") == 0) {
		M.cgw_method = NULL;
		pr_info("cgwatch: off (--hook cgwatch=none): new cgroups are looked up by id");
	} else if ((err = cgwatch_start(forced, store_cgroup_event, NULL,
					&M.cgw_method))) {
		M.cgw_method = NULL;
		if (forced) {
			pr_err("cgwatch: cannot start with %s: %s", forced, strerror(-err));
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
	meta_halt();
	cgwatch_stop();
	M.cgw_method = NULL;
	snap_shutdown();
	store_free();
	select_free();
	sources_close();
	for (int *fd = &M.ep; fd <= &M.stopfd; fd++) {
		if (*fd >= 0)
			close(*fd);
		*fd = -1;
	}
}

/* After meta_halt(): the thread's tables are read here. */
void meta_summary(void)
{
	store_summary();
	pr_info("attribution: %llu full syncs, %llu targeted lookups, %llu ids resolved by "
		"handle, %llu rescans, %llu containers no source knew, %llu requests dropped",
		(unsigned long long)store.syncs, (unsigned long long)store.targeted,
		(unsigned long long)store.resolved_by_handle, (unsigned long long)store.rescans,
		(unsigned long long)store.gave_up, (unsigned long long)atomic_load(&req_dropped));
	sources_summary();
}
