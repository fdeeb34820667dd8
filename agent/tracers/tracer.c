// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/loop.h"
#include "agent/tracers/bio.h"
#include "agent/tracers/cache.h"
#include "agent/tracers/cgwatch.h"
#include "agent/tracers/exec.h"
#include "agent/tracers/filter.h"
#include "agent/tracers/fs.h"
#include "agent/tracers/open.h"
#include "agent/tracers/ratelimit.h"
#include "agent/tracers/sysraw.h"
#include "agent/tracers/tracer.h"

/* The tracer table: a new tracer adds one line here. */
const struct tracer *const tracer_table[] = {
	&exec_tracer,
	&open_tracer,
	&bio_tracer,
	&fs_tracer,
	&cache_tracer,
};
const size_t tracer_count = sizeof(tracer_table) / sizeof(tracer_table[0]);
_Static_assert(sizeof(tracer_table) / sizeof(tracer_table[0]) <= CFG_MAX_TRACERS,
	       "raise CFG_MAX_TRACERS");
_Static_assert(CFG_MAX_TRACERS <= 32, "hooks_choose() takes the tracer set as 32 bits");

/* Hook choices that are not tracers. */
const struct hook_helper *const helper_table[] = {
	&cgwatch_helper,
};
const size_t helper_count = sizeof(helper_table) / sizeof(helper_table[0]);
_Static_assert(sizeof(helper_table) / sizeof(helper_table[0]) <= CFG_MAX_HELPERS,
	       "raise CFG_MAX_HELPERS");

int tracer_index(const char *name)
{
	for (size_t i = 0; i < tracer_count; i++)
		if (strcmp(tracer_table[i]->name, name) == 0)
			return (int)i;
	return -1;
}

int helper_index(const char *name)
{
	for (size_t i = 0; i < helper_count; i++)
		if (strcmp(helper_table[i]->name, name) == 0)
			return (int)i;
	return -1;
}

const struct hook_method *hook_find(const struct hook_method *ms, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(ms[i].name, name) == 0)
			return &ms[i];
	return NULL;
}

const struct hook_method *hook_choose(const struct hook_method *ms, size_t n, const char *forced)
{
	const struct hook_method *m;

	if (forced) {
		m = hook_find(ms, n, forced);
		return m && m->available() ? m : NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (ms[i].available())
			return &ms[i];
	return NULL;
}

const struct hook_method *tracer_method(const struct tracer *t, const char *name)
{
	return hook_find(t->methods, t->n_methods, name);
}

void hook_probe_kernel(struct hook_probe *p)
{
	memset(p, 0, sizeof(*p));
	for (size_t i = 0; i < tracer_count; i++)
		for (size_t j = 0; j < tracer_table[i]->n_methods && j < HOOK_MAX_METHODS; j++)
			p->avail[i][j] = tracer_table[i]->methods[j].available();
}

void hooks_choose(const struct hook_probe *p, uint32_t on, const char *const forced[],
		  const struct hook_method *out[])
{
	for (size_t i = 0; i < tracer_count; i++) {
		const struct tracer *t = tracer_table[i];
		const char *f = forced ? forced[i] : NULL;

		out[i] = NULL;
		if (!(on & (1u << i)))
			continue;
		for (size_t j = 0; j < t->n_methods && j < HOOK_MAX_METHODS && !out[i]; j++)
			if (p->avail[i][j] && (!f || strcmp(t->methods[j].name, f) == 0))
				out[i] = &t->methods[j];
	}
}

int tracer_start(const struct tracer *t, const struct tracer_env *env,
		 const struct hook_method *m)
{
	struct tracer_obj *o = t->obj;
	int err = t->setup(env, m);

	if (err)
		return err;
	if (o->ring) {
		uint32_t bytes = env->cfg->ringbuf_kb ? env->cfg->ringbuf_kb * 1024u
						      : t->ringbuf_bytes;

		*o->wakeup_bytes = bytes / 8; /* the batched wakeup (common.bpf.h) */
		err = bpf_map__set_max_entries(o->ring, bytes);
	}
	if (!err)
		err = filter_reuse_maps(*o->s->obj);
	if (!err)
		err = rl_configure(t, (uint32_t)tracer_index(t->name));
	if (!err)
		err = sysraw_reuse_maps(*o->s->obj);
	if (!err)
		err = bpf_object__load_skeleton(o->s);
	if (!err)
		err = bpf_object__attach_skeleton(o->s); /* programs without a target: skipped */
	if (!err && t->post_attach)
		err = t->post_attach(env, m);
	if (!err && o->ring)
		err = loop_add_ring(bpf_map__fd(o->ring), t->on_record, NULL);
	return err;
}

int tracer_add_link(const struct tracer *t, struct bpf_link *l)
{
	struct tracer_obj *o = t->obj;

	if (o->n_links >= TRACER_MAX_LINKS) {
		bpf_link__destroy(l);
		return -E2BIG;
	}
	o->links[o->n_links++] = l;
	return 0;
}

static void destroy_links(struct tracer_obj *o)
{
	while (o->n_links)
		bpf_link__destroy(o->links[--o->n_links]);
}

void tracer_detach(const struct tracer *t)
{
	struct tracer_obj *o = t->obj;

	if (!o->skel)
		return;
	sysraw_remove(o);
	destroy_links(o);
	bpf_object__detach_skeleton(o->s);
	if (t->detached)
		t->detached();
}

void tracer_destroy(const struct tracer *t)
{
	struct tracer_obj *o = t->obj;

	sysraw_remove(o);
	destroy_links(o);
	/* what <t>_bpf__destroy() does, for any skeleton */
	if (o->s)
		bpf_object__destroy_skeleton(o->s);
	free(o->skel);
	memset(o, 0, sizeof(*o));
	if (t->cleanup)
		t->cleanup();
}

int tracer_ringbuf_fd(const struct tracer *t)
{
	return t->obj->ring ? bpf_map__fd(t->obj->ring) : -1;
}

void tracer_configure_all(const struct ps_config *cfg)
{
	for (size_t i = 0; i < tracer_count; i++)
		if (tracer_table[i]->configure)
			tracer_table[i]->configure(cfg);
}

int tracer_read_stats(const struct tracer *t, struct ps_stats *out)
{
	int ncpu = libbpf_num_possible_cpus();
	int fd = t->obj->stats ? bpf_map__fd(t->obj->stats) : -1;
	__u32 zero = 0;
	memset(out, 0, sizeof(*out));
	if (fd < 0 || ncpu <= 0)
		return fd < 0 ? -EBADF : ncpu;
	{
		struct ps_stats per_cpu[ncpu];

		if (bpf_map_lookup_elem(fd, &zero, per_cpu))
			return -errno;
		for (int c = 0; c < ncpu; c++)
			for (int i = 0; i < PS_STAT_MAX; i++)
				out->v[i] += per_cpu[c].v[i];
	}
	if (t->user_stats)
		t->user_stats(out);
	return 0;
}
