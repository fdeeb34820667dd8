// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cgroup paths and the files they come from (cgroup/): a path as the kernel
 * names it or as /proc/PID/cgroup writes it, a container id as runtimes and
 * the kubelet report it, a mountinfo stream. Any pod can name its cgroups and
 * most of a path's text: every input goes through every parser.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "cgroup/cgpath.h"
#include "cgroup/cgroup.h"

static void ident(const char *path)
{
	struct cg_ident id;

	if (cg_parse_ident(path, &id))
		return;
	/* what attribution copies out of it: each bounded, each a string */
	assert(strlen(id.pod_uid) <= CG_UID_LEN && strlen(id.id) <= CG_ID_LEN);
	assert(id.kind != CG_KIND_CONTAINER || strlen(id.id) == CG_ID_LEN);
	assert(id.runtime && id.depth >= 0);
	fuzz_sink = strlen(id.runtime) + strlen(cg_kind_name(id.kind)) + strlen(cg_qos_name(id.qos));
}

static void stream(const char *buf, size_t size)
{
	static const char *const hierarchies[] = { NULL, "memory", "name=systemd", "" };
	struct cg_layout layout;
	char path[4096];
	FILE *f;

	f = fmemopen((void *)buf, size, "r");
	if (f) {
		if (cg_layout_parse(f, &layout) == 0)
			assert(memchr(layout.v2_mount, '\0', sizeof(layout.v2_mount)));
		fclose(f);
	}
	for (size_t i = 0; i < sizeof(hierarchies) / sizeof(hierarchies[0]); i++) {
		f = fmemopen((void *)buf, size, "r");
		if (!f)
			continue;
		if (cg_proc_path_parse(f, hierarchies[i], path, sizeof(path)) == 0) {
			assert(strlen(path) < sizeof(path));
			ident(path);
		}
		fclose(f);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size), id[CG_ID_LEN + 1];
	const char *rt;

	ident(s);
	if (cg_parse_runtime_id(s, id, &rt) == 0)
		assert(strlen(id) == CG_ID_LEN && (!rt || strlen(rt) < 32));
	if (*s == '/')
		fuzz_sink = (size_t)cg_level(s);
	if (size)
		stream(s, size);
	free(s);
	return 0;
}
