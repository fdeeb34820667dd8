/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The tracer table. Each tracer (agent/tracers/<t>.c with bpf/<t>.bpf.c and
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
	uint32_t id;		/* the tracer's enum <t>_method: what its code switches on */
	const char *name;	/* for --hook and `podsnoop probe` */
	const char *hooks;	/* what it attaches to, for humans */
	bool (*available)(void);
};

#define HOOK_MAX_METHODS 8

/* What `podsnoop probe` finds: whether each method of each tracer is available here. */
struct hook_probe {
	bool avail[CFG_MAX_TRACERS][HOOK_MAX_METHODS];
};

struct tracer_env {
	const struct ps_config *cfg;
};

#define TRACER_MAX_LINKS 32

/* A tracer's BPF object, as the shared tail (tracer_start() and the rest) handles it. */
struct tracer_obj {
	void *skel;			/* struct <t>_bpf of <t>.skel.h; NULL: not open */
	struct bpf_object_skeleton *s;
	struct bpf_map *ring;		/* the ring buffer; NULL: the tracer has none */
	struct bpf_map *stats;		/* ps_stats */
	__u64 *wakeup_bytes;		/* rodata ps_wakeup_bytes */
	/* --rate-limit (ratelimit.c): the buckets and their rodata */
	struct bpf_map *rl;
	__u64 *rl_period_ns, *rl_burst_ns;
	__u32 *rl_tracer;
	bool *rl_cas;
	bool *fair_on;			/* --shed */
	struct bpf_link *links[TRACER_MAX_LINKS]; /* attached by post_attach */
	size_t n_links;
};

/* In a tracer's setup(), right after <t>_bpf__open(): ring is NULL without a ring buffer. */
#define TRACER_OBJ_SET(o, sk, ring_)                                                    \
	do {                                                                            \
		(o)->skel = (sk);                                                       \
		(o)->s = (sk)->skeleton;                                                \
		(o)->ring = (ring_);                                                    \
		(o)->stats = (sk)->maps.ps_stats;                                       \
		(o)->wakeup_bytes = &(sk)->rodata->ps_wakeup_bytes;                     \
		(o)->rl = (sk)->maps.ps_rl;                                             \
		(o)->rl_period_ns = (__u64 *)&(sk)->rodata->ps_rl_period_ns;            \
		(o)->rl_burst_ns = (__u64 *)&(sk)->rodata->ps_rl_burst_ns;              \
		(o)->rl_tracer = (__u32 *)&(sk)->rodata->ps_rl_tracer;                  \
		(o)->rl_cas = (bool *)&(sk)->rodata->ps_rl_cas;                         \
		(o)->fair_on = (bool *)&(sk)->rodata->ps_fair_on;                       \
	} while (0)

/*
 * A tracer: bpf/<t>.bpf.c, bpf/<t>.h and agent/tracers/<t>.c, one line in
 * tracer_table. Its setup() opens the skeleton, picks the programs of the
 * hook method and writes the rodata; the tail does the rest, the same for
 * every tracer: ring buffer size and wakeup threshold, the shared filter
 * maps, load, attach, post_attach(), the ring buffer to the event loop; and
 * later detach, destroy, statistics.
 */
struct tracer {
	const char *name;
	const struct hook_method *methods;
	size_t n_methods;
	struct tracer_obj *obj;
	/*
	 * The ring buffer's default size (--ringbuf-kb): the reader is woken when
	 * 1/8 of it is queued, so it need only hold what the tracer's highest
	 * rate (bench/ship_bench.py, bench/open_bench.py) writes while the woken
	 * reader gets a CPU, not a whole drain period. The rings are most of the
	 * memory charged to the agent's cgroup.
	 */
	uint32_t ringbuf_bytes;
	/* --rate-limit and --shed apply: its records are events, not aggregates (histograms, rows) */
	bool rate_limited;
	ring_buffer_sample_fn on_record; /* the ring buffer's callback */
	/* open the skeleton (TRACER_OBJ_SET), choose the programs, set rodata; -errno */
	int (*setup)(const struct tracer_env *env, const struct hook_method *m);
	/* optional: after load and attach, what the skeleton cannot attach (tracer_add_link) */
	int (*post_attach)(const struct tracer_env *env, const struct hook_method *m);
	/* optional: the programs are detached: hand out what is left (a last interval) */
	void (*detached)(void);
	/* optional: free what setup() allocated beside the object; safe when it failed */
	void (*cleanup)(void);
	/* optional: once a second on the event loop (housekeeping) */
	void (*tick)(uint64_t boot_ns);
	/* user-space counters to add to the kernel's (e.g. orphans swept) */
	void (*user_stats)(struct ps_stats *s);
	/*
	 * optional: the settings, once, before methods are probed (a method's
	 * availability may depend on them, e.g. fs on --fs-type)
	 */
	void (*configure)(const struct ps_config *cfg);
	/* optional, with --listen: the tracer's own series in /metrics; -errno */
	int (*metrics_start)(void);
	void (*metrics_stop)(void);
};

/*
 * Something with hook methods that is not a tracer: no -t, no records of its
 * own, but a choice `podsnoop probe` shows and --hook NAME=METHOD forces.
 */
struct hook_helper {
	const char *name;
	const char *what;		/* for `podsnoop probe` and --help */
	const char *none;		/* what --hook NAME=none does; NULL: not allowed */
	const struct hook_method *methods;
	size_t n_methods;
};

/*
 * A tracer's own counters (records that did not decode, in-flight entries
 * swept): written on the event loop, read by the HTTP thread at every
 * scrape (user_stats through tracer_read_stats()), so relaxed atomics.
 */
static inline void counter_add(uint64_t *c, uint64_t n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

static inline uint64_t counter_get(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

extern const struct tracer *const tracer_table[];
extern const size_t tracer_count;

extern const struct hook_helper *const helper_table[];
extern const size_t helper_count;

int tracer_index(const char *name);
int helper_index(const char *name);
const struct hook_method *hook_find(const struct hook_method *ms, size_t n, const char *name);
/* The method to use: the forced one (NULL when unavailable) or the best available. */
const struct hook_method *hook_choose(const struct hook_method *ms, size_t n, const char *forced);
/* Ask this kernel about every method of every tracer. */
void hook_probe_kernel(struct hook_probe *p);
/*
 * The method of each tracer in the set `on` (bits by tracer_table index), from the
 * probe's answers: forced[i] when given (NULL when p says it is missing), else the
 * first available in the tracer's order of preference. NULL outside `on`.
 */
void hooks_choose(const struct hook_probe *p, uint32_t on, const char *const forced[],
		  const struct hook_method *out[]);
const struct hook_method *tracer_method(const struct tracer *t, const char *name);
/* open -> configure -> load -> attach, then its ring buffer to the event loop; -errno. */
int tracer_start(const struct tracer *t, const struct tracer_env *env,
		 const struct hook_method *m);
/* Stop producing events; the ring buffer stays readable. */
void tracer_detach(const struct tracer *t);
/* Free everything; safe when tracer_start() failed or never ran. */
void tracer_destroy(const struct tracer *t);
/* A link post_attach() made: destroyed with the tracer's others. -E2BIG when full. */
int tracer_add_link(const struct tracer *t, struct bpf_link *l);
/* fd of the ring buffer map; -1 before start or without one. */
int tracer_ringbuf_fd(const struct tracer *t);
/* Hand the settings to every tracer that wants them before probing. */
void tracer_configure_all(const struct ps_config *cfg);
/* Sum the per-CPU ps_stats slots, plus the tracer's user-space counters. */
int tracer_read_stats(const struct tracer *t, struct ps_stats *out);

#endif
