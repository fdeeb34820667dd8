/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The tracer table. Each tracer (agent/<t>.c with bpf/<t>.bpf.c and
 * bpf/<t>.h) offers one or more hook methods in order of preference; the
 * agent picks the first this kernel has (or the one forced with --hook),
 * then runs open -> configure -> load -> attach.
 */
#ifndef PS_TRACER_H
#define PS_TRACER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <bpf/libbpf.h>

#include "agent/config.h"
#include "bpf/common.h"

struct hook_method {
	const char *name;	/* for --hook and `podsnoop probe` */
	const char *hooks;	/* what it attaches to, for humans */
	bool (*available)(void);
};

struct tracer_env {
	const struct ps_config *cfg;
};

struct tracer {
	const char *name;
	const struct hook_method *methods;
	size_t n_methods;
	/* open, configure, load, attach, register its ring buffer; -errno */
	int (*start)(const struct tracer_env *env, const struct hook_method *m);
	/* stop producing events; the ring buffer stays readable */
	void (*detach)(void);
	/* free everything; safe when start failed or never ran */
	void (*destroy)(void);
	/* fd of the object's ps_stats map, -1 before start */
	int (*stats_fd)(void);
	/* optional: once a second on the event loop (housekeeping) */
	void (*tick)(uint64_t boot_ns);
	/* user-space counters to add to the kernel's (e.g. orphans swept) */
	void (*user_stats)(struct ps_stats *s);
	/*
	 * optional: the settings, once, before methods are probed (a method's
	 * availability may depend on them, e.g. fs on --fs-type)
	 */
	void (*configure)(const struct ps_config *cfg);
	/* optional: fd of the tracer's ring buffer map, for the fill gauge in /metrics */
	int (*ringbuf_fd)(void);
};

extern const struct tracer *const tracer_table[];
extern const size_t tracer_count;

int tracer_index(const char *name);
/* The method to use: the forced one (NULL when unavailable) or the best available. */
const struct hook_method *tracer_choose(const struct tracer *t, const char *forced);
const struct hook_method *tracer_method(const struct tracer *t, const char *name);
/*
 * The end of every tracer's start, after it chose its programs and set its
 * rodata: size the ring buffer (--ringbuf-kb, else default_bytes) and the
 * batched-wakeup threshold (an eighth of it), share the filter maps, load,
 * attach, and hand the ring buffer to the event loop. -errno.
 */
int tracer_load_attach(struct bpf_object_skeleton *s, struct bpf_map *ring, __u64 *wakeup_bytes,
		       uint32_t default_bytes, const struct ps_config *cfg,
		       ring_buffer_sample_fn fn);
/* Hand the settings to every tracer that wants them before probing. */
void tracer_configure_all(const struct ps_config *cfg);
/* Sum the per-CPU ps_stats slots. */
int tracer_read_stats(const struct tracer *t, struct ps_stats *out);

#endif
