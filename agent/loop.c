// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdint.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

#include "agent/clock.h"
#include "agent/log.h"
#include "agent/loop.h"

enum { TAG_RING = 1, TAG_SIGNAL, TAG_TIMER };

static int epfd = -1, sigfd = -1, timerfd = -1;
static struct ring_buffer *rb;
static uint32_t drain_period_ms;

/* every ring's callback goes through trampoline() so loop_sample_current() works */
#define LOOP_MAX_RINGS 32
static struct {
	ring_buffer_sample_fn fn;
	void *ctx;
} rings[LOOP_MAX_RINGS];
static int n_rings;
static const struct loop_sample *cur_sample;

static int trampoline(void *ctx, void *data, size_t size)
{
	const struct loop_sample s = { rings[(intptr_t)ctx].fn, rings[(intptr_t)ctx].ctx, data, size };
	int ret;

	cur_sample = &s;
	ret = s.fn(s.ctx, data, size);
	cur_sample = NULL;
	return ret;
}

const struct loop_sample *loop_sample_current(void)
{
	return cur_sample;
}

static int ep_add(int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

int loop_init(uint32_t drain_ms)
{
	struct itimerspec its = { 0 };
	sigset_t mask;
	int err;

	drain_period_ms = drain_ms;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		return -errno;

	/* signals arrive as reads, never interrupting the event path */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0)
		return -errno;
	err = ep_add(sigfd, TAG_SIGNAL);
	if (err)
		return err;

	timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (timerfd < 0)
		return -errno;
	its.it_interval.tv_sec = drain_ms / 1000;
	its.it_interval.tv_nsec = (long)(drain_ms % 1000) * 1000000L;
	its.it_value = its.it_interval;
	if (timerfd_settime(timerfd, 0, &its, NULL))
		return -errno;
	return ep_add(timerfd, TAG_TIMER);
}

int loop_add_ring(int map_fd, ring_buffer_sample_fn fn, void *ctx)
{
	void *slot = (void *)(intptr_t)n_rings;
	int err;

	if (n_rings >= LOOP_MAX_RINGS)
		return -ENOSPC;
	rings[n_rings].fn = fn;
	rings[n_rings].ctx = ctx;
	if (!rb) {
		rb = ring_buffer__new(map_fd, trampoline, slot, NULL);
		if (!rb)
			return -errno;
		n_rings++;
		return ep_add(ring_buffer__epoll_fd(rb), TAG_RING);
	}
	err = ring_buffer__add(rb, map_fd, trampoline, slot);
	if (err < 0)
		return err;
	n_rings++;
	return 0;
}

int loop_drain(void)
{
	return rb ? ring_buffer__consume(rb) : 0;
}

int loop_run(double duration_s, const struct loop_hooks *hooks)
{
	uint64_t start = clock_now_ns(CLOCK_MONOTONIC), last_tick = start, now;
	uint64_t limit = duration_s > 0 ? (uint64_t)(duration_s * 1e9) : 0;
	struct epoll_event evs[8];
	int n, i, err;

	for (;;) {
		bool drain = false;

		n = epoll_wait(epfd, evs, 8, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (i = 0; i < n; i++) {
			switch (evs[i].data.u64) {
			case TAG_SIGNAL: {
				struct signalfd_siginfo si;

				if (read(sigfd, &si, sizeof(si)) == sizeof(si)) {
					pr_info("%s received, stopping", strsignal((int)si.ssi_signo));
					return (int)si.ssi_signo;
				}
				break;
			}
			case TAG_TIMER: {
				uint64_t expirations;

				if (read(timerfd, &expirations, sizeof(expirations)) < 0 &&
				    errno != EAGAIN)
					return -errno;
				drain = true;
				break;
			}
			case TAG_RING:
				drain = true;
				break;
			}
		}
		if (drain) {
			err = loop_drain();
			if (err < 0 && err != -EINTR)
				pr_warn("ring buffer: %s", strerror(-err));
			if (hooks->after_drain)
				hooks->after_drain();
		}
		now = clock_now_ns(CLOCK_MONOTONIC);
		if (now - last_tick >= 1000000000ull) {
			last_tick = now;
			if (hooks->tick)
				hooks->tick();
		}
		if (limit && now - start >= limit)
			return 0;
	}
}

void loop_free(void)
{
	ring_buffer__free(rb);
	rb = NULL;
	n_rings = 0;
	if (timerfd >= 0)
		close(timerfd);
	if (sigfd >= 0)
		close(sigfd);
	if (epfd >= 0)
		close(epfd);
	epfd = sigfd = timerfd = -1;
}
