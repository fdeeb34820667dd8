/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * --rate-limit and --shed, user side: the settings of each tracer's token
 * buckets (bpf/common.bpf.h ps_rl_admit, ps_fair_admit), the notes ring
 * every tracer shares, and the per-cgroup refusal counts read out of the
 * buckets as loss records.
 */
#ifndef PS_RATELIMIT_H
#define PS_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "agent/config.h"
#include "agent/tracers/tracer.h"

/* The notes ring, on the event loop; before the tracers start. 0 or -errno. */
int rl_init(const struct ps_config *cfg);
void rl_free(void);
/* Between a tracer's setup() and load: rodata, bucket map size, the shared ring. -errno. */
int rl_configure(const struct tracer *t, uint32_t index);
/* The tracer started (its buckets are read from now on) or is gone. */
void rl_tracer_started(uint32_t index);
/*
 * Read every started tracer's buckets and emit a loss record (stage
 * rate_limited or shed) per cgroup refused since the previous read: each interval
 * and at the end. A cgroup the kernel notes as newly throttled is reported
 * at once, from the event loop (the notes ring). final: the tracers are
 * detached, so what evicted buckets refused is counted to the last record.
 */
void rl_report(bool final);

#endif
