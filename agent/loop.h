/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The event loop: one epoll over every ring buffer (through libbpf's
 * ring_buffer epoll fd), a signalfd for SIGINT/SIGTERM and a timerfd that
 * drains the rings on a short period, since the BPF side wakes us only once
 * a batch has queued up.
 */
#ifndef PS_LOOP_H
#define PS_LOOP_H

#include <stdint.h>
#include <bpf/libbpf.h>

struct loop_hooks {
	void (*after_drain)(void);	/* e.g. flush buffered output */
	void (*tick)(void);		/* once a second */
};

/* The ring buffer record being handed to its tracer's callback right now. */
struct loop_sample {
	ring_buffer_sample_fn fn;
	void *ctx;
	const void *data;
	size_t size;
};

int loop_init(uint32_t drain_ms);
int loop_add_ring(int map_fd, ring_buffer_sample_fn fn, void *ctx);
/*
 * Run until SIGINT/SIGTERM or until duration_s (0: no limit) has passed.
 * Returns the signal that ended it, 0 for the deadline, or -errno.
 */
int loop_run(double duration_s, const struct loop_hooks *hooks);
/*
 * Inside a ring buffer callback: the record and its callback, so a record
 * can be set aside and handed to the same callback again later (attribution
 * waiting for a new pod's metadata). NULL outside callbacks.
 */
const struct loop_sample *loop_sample_current(void);
/* Consume whatever the rings hold now; returns records read or -errno. */
int loop_drain(void);
void loop_free(void);

#endif
