// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include <bpf/bpf.h>

#include "agent/tracers/cgwatch.h"
#include "cgwatch.skel.h"
#include "agent/tracers/kfeatures.h"

static struct cgwatch_bpf *skel;
static struct ring_buffer *rb;
static cgwatch_fn user_fn;
static void *user_ctx;

static bool have_btf(void)
{
	return feat_tp_btf("cgroup_mkdir") && feat_tp_btf("cgroup_rmdir");
}

static bool have_tp(void)
{
	return feat_tracepoint("cgroup", "cgroup_mkdir") && feat_tracepoint("cgroup", "cgroup_rmdir");
}

enum { CGW_M_TP_BTF = 1, CGW_M_TRACEPOINT };

static const struct hook_method methods[] = {
	{ CGW_M_TP_BTF, "tp_btf", "tp_btf cgroup_mkdir, cgroup_rmdir", have_btf },
	{ CGW_M_TRACEPOINT, "tracepoint", "tracepoint cgroup/cgroup_mkdir, cgroup/cgroup_rmdir",
	  have_tp },
};

const struct hook_helper cgwatch_helper = {
	.name = "cgwatch",
	.what = "pod attribution",
	.none = "new cgroups are looked up by id when seen",
	.methods = methods,
	.n_methods = sizeof(methods) / sizeof(methods[0]),
};

static int on_event(void *ctx, void *data, size_t size)
{
	struct cgw_event e;

	(void)ctx;
	if (size < sizeof(e))
		return 0;
	/* the ring is mapped read-only: terminate a copy */
	memcpy(&e, data, sizeof(e));
	e.path[CGW_PATH_MAX - 1] = '\0';
	user_fn(user_ctx, &e);
	return 0;
}

int cgwatch_start(const char *forced, cgwatch_fn fn, void *ctx, const char **method)
{
	const struct hook_method *m = hook_choose(methods, sizeof(methods) / sizeof(methods[0]),
						   forced);
	bool btf;
	int err;

	if (!m)
		return -ENOTSUP;
	*method = m->name;
	btf = m->id == CGW_M_TP_BTF;
	user_fn = fn;
	user_ctx = ctx;
	skel = cgwatch_bpf__open();
	if (!skel)
		return -errno;
	bpf_program__set_autoload(skel->progs.ps_cgw_mkdir_btf, btf);
	bpf_program__set_autoload(skel->progs.ps_cgw_rmdir_btf, btf);
	bpf_program__set_autoload(skel->progs.ps_cgw_mkdir_tp, !btf);
	bpf_program__set_autoload(skel->progs.ps_cgw_rmdir_tp, !btf);
	err = cgwatch_bpf__load(skel);
	if (!err)
		err = cgwatch_bpf__attach(skel);
	if (!err) {
		rb = ring_buffer__new(bpf_map__fd(skel->maps.cgw_rb), on_event, NULL, NULL);
		if (!rb)
			err = -errno;
	}
	if (err)
		cgwatch_stop();
	return err;
}

int cgwatch_epoll_fd(void)
{
	return rb ? ring_buffer__epoll_fd(rb) : -1;
}

int cgwatch_consume(void)
{
	return rb ? ring_buffer__consume(rb) : 0;
}

uint64_t cgwatch_lost(void)
{
	int ncpu = libbpf_num_possible_cpus();
	__u32 key = CGW_STAT_LOST;
	uint64_t sum = 0;

	if (!skel || ncpu <= 0)
		return 0;
	{
		__u64 v[ncpu];

		if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.cgw_stats), &key, v))
			return 0;
		for (int i = 0; i < ncpu; i++)
			sum += v[i];
	}
	return sum;
}

void cgwatch_stop(void)
{
	ring_buffer__free(rb);
	rb = NULL;
	cgwatch_bpf__destroy(skel);
	skel = NULL;
}
