// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>

#include "agent/tracers/sysraw.h"
#include "sysraw.skel.h"
#include "agent/tracers/kfeatures.h"
#include "agent/log.h"

/* The syscalls tracers hand to the dispatcher, by this architecture's numbers. */
static const struct {
	const char *name;
	int nr;
} sys_nrs[] = {
#if defined(__x86_64__)
	{ "read", 0 },	      { "write", 1 },	   { "open", 2 },	{ "pread64", 17 },
	{ "pwrite64", 18 },   { "readv", 19 },	   { "writev", 20 },	{ "execve", 59 },
	{ "fsync", 74 },      { "fdatasync", 75 }, { "openat", 257 },	{ "preadv", 295 },
	{ "pwritev", 296 },   { "execveat", 322 }, { "openat2", 437 },
#endif
	{ NULL, -1 },
};

static int enter_fd = -1, exit_fd = -1;	/* the program arrays */
static struct sysraw_bpf *disp;		/* the dispatcher, while a slot is owned */
static const struct tracer_obj *owner[PS_SYS_SLOTS];
static bool filled[PS_SYS_SLOTS][PS_SYS_NR_MAX];

static int sys_nr(const char *name)
{
	for (size_t i = 0; sys_nrs[i].name; i++)
		if (strcmp(sys_nrs[i].name, name) == 0)
			return sys_nrs[i].nr;
	return -ENOENT;
}

bool sysraw_available(void)
{
#if defined(__x86_64__)
	return feat_tp_btf("sys_enter") && feat_tp_btf("sys_exit");
#else
	return false; /* the registers and numbers are known for x86-64 only */
#endif
}

bool sysraw_has_syscall(const char *name)
{
	char func[64];

	if (sys_nr(name) < 0)
		return false;
	/* a number the kernel lacks still fires the hooks (with ENOSYS): ask BTF */
	snprintf(func, sizeof(func), "__x64_sys_%s", name);
	return feat_btf_type(func, BTF_KIND_FUNC);
}

static int arrays_create(void)
{
	if (enter_fd >= 0)
		return 0;
	/* names, types and sizes must equal the maps in bpf/sysraw.bpf.h */
	enter_fd = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "ps_sys_enter", sizeof(__u32),
				  sizeof(__u32), PS_SYS_PROGS, NULL);
	if (enter_fd < 0)
		return -errno;
	exit_fd = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, "ps_sys_exit", sizeof(__u32),
				 sizeof(__u32), PS_SYS_PROGS, NULL);
	if (exit_fd < 0) {
		int err = -errno;

		close(enter_fd);
		enter_fd = -1;
		return err;
	}
	return 0;
}

static void arrays_free(void)
{
	if (enter_fd >= 0)
		close(enter_fd);
	if (exit_fd >= 0)
		close(exit_fd);
	enter_fd = exit_fd = -1;
}

int sysraw_reuse_maps(struct bpf_object *obj)
{
	struct bpf_map *en = bpf_object__find_map_by_name(obj, "ps_sys_enter_progs");
	struct bpf_map *ex = bpf_object__find_map_by_name(obj, "ps_sys_exit_progs");
	int err;

	if (!en || !ex)
		return 0; /* an object without handlers */
	err = arrays_create();
	if (!err)
		err = bpf_map__reuse_fd(en, enter_fd);
	if (!err)
		err = bpf_map__reuse_fd(ex, exit_fd);
	return err;
}

static int dispatcher_start(void)
{
	int err;

	disp = sysraw_bpf__open();
	if (!disp)
		return -errno;
	err = sysraw_reuse_maps(disp->obj);
	if (!err)
		err = sysraw_bpf__load(disp);
	if (!err)
		err = sysraw_bpf__attach(disp);
	if (err) {
		pr_err("raw_syscalls: cannot start the dispatcher on tp_btf sys_enter/sys_exit: %s",
		       strerror(-err));
		sysraw_bpf__destroy(disp);
		disp = NULL;
	}
	return err;
}

int sysraw_add(const struct tracer_obj *o, enum ps_sys_slot slot, const char *name,
	       struct bpf_program *enter, struct bpf_program *exit)
{
	int nr = sys_nr(name), efd = bpf_program__fd(enter), xfd = bpf_program__fd(exit);
	__u32 key;
	int err;

	if (nr < 0 || nr >= PS_SYS_NR_MAX)
		return -ENOENT;
	if (slot >= PS_SYS_SLOTS || (owner[slot] && owner[slot] != o))
		return -EBUSY;
	if (efd < 0 || xfd < 0)
		return -EBADF;
	err = arrays_create();
	if (err)
		return err;
	key = (__u32)nr * PS_SYS_SLOTS + slot;
	owner[slot] = o;
	filled[slot][nr] = true;
	if (bpf_map_update_elem(exit_fd, &key, &xfd, BPF_ANY) ||
	    bpf_map_update_elem(enter_fd, &key, &efd, BPF_ANY))
		return -errno; /* sysraw_remove() takes out what went in */
	return disp ? 0 : dispatcher_start();
}

void sysraw_remove(const struct tracer_obj *o)
{
	bool was_owner = false, any = false;
	__u32 key;

	for (int s = 0; s < PS_SYS_SLOTS; s++) {
		if (!owner[s] || owner[s] != o) {
			any |= owner[s] != NULL;
			continue;
		}
		was_owner = true;
		/* enter first: a call entered now still finds its return */
		for (int nr = 0; nr < PS_SYS_NR_MAX; nr++) {
			if (!filled[s][nr])
				continue;
			key = (__u32)nr * PS_SYS_SLOTS + s;
			bpf_map_delete_elem(enter_fd, &key);
			bpf_map_delete_elem(exit_fd, &key);
			filled[s][nr] = false;
		}
		owner[s] = NULL;
	}
	if (!was_owner || any)
		return;
	sysraw_bpf__destroy(disp);
	disp = NULL;
	arrays_free();
}
