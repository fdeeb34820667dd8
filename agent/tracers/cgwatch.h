/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Following cgroup creation and removal from the kernel (bpf/cgwatch.bpf.c):
 * the metadata thread reads these events from its own epoll loop, so a new
 * container's cgroup is known before its first event is read.
 */
#ifndef PS_AGENT_CGWATCH_H
#define PS_AGENT_CGWATCH_H

#include <stdint.h>

#include "agent/tracers/tracer.h"
#include "bpf/cgwatch.h"

/* Its hook methods, for `podsnoop probe` and --hook cgwatch=METHOD (or =none). */
extern const struct hook_helper cgwatch_helper;

typedef void (*cgwatch_fn)(void *ctx, const struct cgw_event *e);

/* Load and attach with the forced method (NULL: the best available). */
int cgwatch_start(const char *forced, cgwatch_fn fn, void *ctx, const char **method);
int cgwatch_epoll_fd(void);
/* Read what is queued; returns events read or -errno. */
int cgwatch_consume(void);
/* Events the kernel could not queue (a rescan makes up for them). */
uint64_t cgwatch_lost(void);
void cgwatch_stop(void);

#endif
