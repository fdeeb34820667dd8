// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "agent/tracers/kfeatures.h"

static char tracefs[64];
static bool mounted_by_us;

static bool is_tracefs(const char *path)
{
	struct statfs sfs;

	return statfs(path, &sfs) == 0 && sfs.f_type == TRACEFS_MAGIC;
}

int feat_tracefs_ensure(void)
{
	if (tracefs[0])
		return 0;
	if (is_tracefs("/sys/kernel/tracing")) {
		strcpy(tracefs, "/sys/kernel/tracing");
		return 0;
	}
	if (is_tracefs("/sys/kernel/debug/tracing")) {
		strcpy(tracefs, "/sys/kernel/debug/tracing");
		return 0;
	}
	/*
	 * Tracepoint attachment resolves ids through tracefs; a fresh node
	 * often has it unmounted. libbpf looks in /sys/kernel/tracing when
	 * /sys/kernel/debug/tracing is absent, so mount it there.
	 */
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL))
		return -errno;
	strcpy(tracefs, "/sys/kernel/tracing");
	mounted_by_us = true;
	return 0;
}

const char *feat_tracefs_path(void)
{
	return tracefs;
}

bool feat_tracefs_mounted_by_us(void)
{
	return mounted_by_us;
}

bool feat_tracepoint(const char *category, const char *name)
{
	char path[PATH_MAX];

	if (feat_tracefs_ensure())
		return false;
	snprintf(path, sizeof(path), "%s/events/%s/%s/id", tracefs, category, name);
	return access(path, F_OK) == 0;
}

static struct btf *btf;
static bool tried;

static struct btf *vmlinux_btf(void)
{
	if (!tried) {
		tried = true;
		btf = btf__load_vmlinux_btf();
		if (libbpf_get_error(btf))
			btf = NULL;
	}
	return btf;
}

void feat_release(void)
{
	btf__free(btf);
	btf = NULL;
	tried = false;
}

bool feat_btf(void)
{
	return vmlinux_btf() != NULL;
}

bool feat_btf_type(const char *name, int kind)
{
	struct btf *btf = vmlinux_btf();

	return btf && btf__find_by_name_kind(btf, name, kind) > 0;
}

bool feat_tp_btf(const char *name)
{
	char type[128];

	snprintf(type, sizeof(type), "btf_trace_%s", name);
	return feat_btf_type(type, BTF_KIND_TYPEDEF);
}

/* Parameters of a function prototype, less the leading `void *__data`. */
static int proto_nargs(const struct btf *btf, int id)
{
	const struct btf_type *t = btf__type_by_id(btf, id);

	while (t && (btf_is_typedef(t) || btf_is_ptr(t) || btf_is_func(t)))
		t = btf__type_by_id(btf, t->type);
	if (!t || !btf_is_func_proto(t) || btf_vlen(t) < 1)
		return -ENOENT;
	return btf_vlen(t) - 1;
}

int feat_tp_nargs(const char *name)
{
	struct btf *btf = vmlinux_btf();
	char type[128];
	int id;

	if (!btf)
		return -ENOENT;
	snprintf(type, sizeof(type), "btf_trace_%s", name);
	id = btf__find_by_name_kind(btf, type, BTF_KIND_TYPEDEF);
	if (id > 0)
		return proto_nargs(btf, id);
	snprintf(type, sizeof(type), "__bpf_trace_%s", name);
	id = btf__find_by_name_kind(btf, type, BTF_KIND_FUNC);
	if (id > 0)
		return proto_nargs(btf, id);
	return -ENOENT;
}

bool feat_kprobe(const char *func)
{
	char path[PATH_MAX], line[256];
	size_t n = strlen(func);
	bool found = false;
	FILE *f;

	if (feat_tracefs_ensure())
		return false;
	/* without CONFIG_KPROBES there is no kprobe_events file */
	snprintf(path, sizeof(path), "%s/kprobe_events", tracefs);
	if (access(path, F_OK))
		return false;
	snprintf(path, sizeof(path), "%s/available_filter_functions", tracefs);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strncmp(line, func, n) == 0 && (line[n] == '\n' || line[n] == ' ');
	fclose(f);
	return found;
}

bool feat_fentry(const char *func)
{
	struct btf *btf = vmlinux_btf();
	const struct bpf_insn insns[] = {
		{ .code = 0xb7, .dst_reg = 0, .imm = 0 },	/* r0 = 0 */
		{ .code = 0x95 },				/* exit */
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY);
	int id, fd, link;

	if (!btf)
		return false;
	id = btf__find_by_name_kind(btf, func, BTF_KIND_FUNC);
	if (id <= 0)
		return false;
	/*
	 * Loading proves the program type exists; attaching proves this
	 * kernel has trampolines for this architecture (some lack them).
	 */
	opts.attach_btf_id = id;
	fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "ps_feat_fentry", "GPL", insns, 2, &opts);
	if (fd < 0)
		return false;
	link = bpf_raw_tracepoint_open(NULL, fd); /* attaches tracing progs on 5.5+ */
	if (link >= 0)
		close(link);
	close(fd);
	return link >= 0;
}

bool feat_atomic_cas(void)
{
	static int known = -1;
	const struct bpf_insn insns[] = {
		{ .code = 0x7a, .dst_reg = 10, .off = -8, .imm = 0 },	/* *(u64 *)(r10 - 8) = 0 */
		{ .code = 0xb7, .dst_reg = 0, .imm = 0 },		/* r0 = 0 */
		{ .code = 0xb7, .dst_reg = 2, .imm = 1 },		/* r2 = 1 */
		/* r0 = cmpxchg_64(r10 - 8, r0, r2): BPF_STX | BPF_ATOMIC | BPF_DW, BPF_CMPXCHG */
		{ .code = 0xdb, .dst_reg = 10, .src_reg = 2, .off = -8, .imm = 0xf1 },
		{ .code = 0xb7, .dst_reg = 0, .imm = 0 },		/* r0 = 0 */
		{ .code = 0x95 },					/* exit */
	};
	int fd;

	if (known >= 0)
		return known;
	fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "ps_feat_cas", "GPL", insns,
			   sizeof(insns) / sizeof(insns[0]), NULL);
	if (fd >= 0)
		close(fd);
	known = fd >= 0;
	return known;
}
