// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/tracers/bio.h"
#include "agent/tracers/cache.h"
#include "agent/tracers/exec.h"
#include "agent/tracers/filter.h"
#include "agent/tracers/fs.h"
#include "agent/loop.h"
#include "agent/tracers/open.h"
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

int tracer_index(const char *name)
{
	for (size_t i = 0; i < tracer_count; i++)
		if (strcmp(tracer_table[i]->name, name) == 0)
			return (int)i;
	return -1;
}

const struct hook_method *tracer_method(const struct tracer *t, const char *name)
{
	for (size_t i = 0; i < t->n_methods; i++)
		if (strcmp(t->methods[i].name, name) == 0)
			return &t->methods[i];
	return NULL;
}

const struct hook_method *tracer_choose(const struct tracer *t, const char *forced)
{
	const struct hook_method *m;

	if (forced) {
		m = tracer_method(t, forced);
		return m && m->available() ? m : NULL;
	}
	for (size_t i = 0; i < t->n_methods; i++)
		if (t->methods[i].available())
			return &t->methods[i];
	return NULL;
}

int tracer_load_attach(struct bpf_object_skeleton *s, struct bpf_map *ring, __u64 *wakeup_bytes,
		       uint32_t default_bytes, const struct ps_config *cfg,
		       ring_buffer_sample_fn fn)
{
	uint32_t bytes = cfg->ringbuf_kb ? cfg->ringbuf_kb * 1024u : default_bytes;
	int err;

	*wakeup_bytes = bytes / 8;
	err = bpf_map__set_max_entries(ring, bytes);
	if (!err)
		err = filter_reuse_maps(*s->obj);
	if (!err)
		err = bpf_object__load_skeleton(s);
	if (!err)
		err = bpf_object__attach_skeleton(s);
	if (!err)
		err = loop_add_ring(bpf_map__fd(ring), fn, NULL);
	return err;
}

void tracer_configure_all(const struct ps_config *cfg)
{
	for (size_t i = 0; i < tracer_count; i++)
		if (tracer_table[i]->configure)
			tracer_table[i]->configure(cfg);
}

int tracer_read_stats(const struct tracer *t, struct ps_stats *out)
{
	int ncpu = libbpf_num_possible_cpus(), fd = t->stats_fd();
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
