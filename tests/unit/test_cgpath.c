// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * cgroup paths -> container id, runtime, pod uid: a corpus of the layouts
 * real nodes have (kubelet cgroupfs and systemd drivers; containerd, CRI-O,
 * Docker; ":runtime:id" forms; podman; k3s/microk8s without a prefix;
 * nested nodes such as kind) and junk that must be rejected.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "unit.h"
#include "cgroup/cgpath.h"
#include "cgroup/idmap.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ID2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define UID "5e1e7b4c-2f7a-4d6e-9f39-6c2b0f3c8a11"
#define UID_ "5e1e7b4c_2f7a_4d6e_9f39_6c2b0f3c8a11"
#define SUID "3e83ebb5a33a5fe4b5a8c3a5b94a0e2b" /* a static pod: a hash */

struct row {
	const char *path;
	enum cg_kind kind;
	const char *uid;
	const char *id;
	const char *runtime;
	enum cg_qos qos;
	int depth;
};

#define H(p) { p, CG_KIND_HOST, "", "", "", CG_QOS_NONE, 0 }

static const struct row corpus[] = {
	/* kubelet, cgroupfs driver (containerd, CRI-O, docker; k3s, microk8s: no prefix) */
	{ "/kubepods/besteffort/pod" UID "/" ID, CG_KIND_CONTAINER, UID, ID, "", CG_QOS_BESTEFFORT, 4 },
	{ "/kubepods/burstable/pod" UID "/" ID, CG_KIND_CONTAINER, UID, ID, "", CG_QOS_BURSTABLE, 4 },
	{ "/kubepods/pod" UID "/" ID, CG_KIND_CONTAINER, UID, ID, "", CG_QOS_GUARANTEED, 3 },
	{ "/kubepods/besteffort/pod" UID, CG_KIND_POD, UID, "", "", CG_QOS_BESTEFFORT, 3 },
	{ "/kubepods/pod" UID, CG_KIND_POD, UID, "", "", CG_QOS_GUARANTEED, 2 },
	{ "/kubepods/burstable/pod" SUID "/" ID, CG_KIND_CONTAINER, SUID, ID, "", CG_QOS_BURSTABLE, 4 },
	{ "/kubepods/besteffort/pod" UID "/crio-" ID, CG_KIND_CONTAINER, UID, ID, "cri-o", CG_QOS_BESTEFFORT, 4 },
	/* a container's own sub-cgroups belong to it */
	{ "/kubepods/besteffort/pod" UID "/" ID "/init.scope", CG_KIND_CONTAINER, UID, ID, "", CG_QOS_BESTEFFORT, 4 },
	{ "/kubepods/besteffort/pod" UID "/" ID "/a/b", CG_KIND_CONTAINER, UID, ID, "", CG_QOS_BESTEFFORT, 4 },
	/* extra slashes are harmless */
	{ "//kubepods//besteffort/pod" UID "/" ID "/", CG_KIND_CONTAINER, UID, ID, "", CG_QOS_BESTEFFORT, 4 },
	/* kubelet, systemd driver */
	{ "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_ ".slice/cri-containerd-" ID ".scope",
	  CG_KIND_CONTAINER, UID, ID, "containerd", CG_QOS_BESTEFFORT, 4 },
	{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_ ".slice/crio-" ID ".scope",
	  CG_KIND_CONTAINER, UID, ID, "cri-o", CG_QOS_BURSTABLE, 4 },
	{ "/kubepods.slice/kubepods-pod" UID_ ".slice/docker-" ID ".scope",
	  CG_KIND_CONTAINER, UID, ID, "docker", CG_QOS_GUARANTEED, 3 },
	{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_ ".slice",
	  CG_KIND_POD, UID, "", "", CG_QOS_BURSTABLE, 3 },
	/* CRI-O's monitor sits in the pod but is not a container */
	{ "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_ ".slice/crio-conmon-" ID ".scope",
	  CG_KIND_POD, UID, "", "", CG_QOS_BESTEFFORT, 3 },
	{ "/kubepods.slice/kubepods-pod" UID_ ".slice/cri-containerd-" ID ".scope/init.scope",
	  CG_KIND_CONTAINER, UID, ID, "containerd", CG_QOS_GUARANTEED, 3 },
	/* systemd cgroupsPath used literally as a path ("slice:prefix:id") */
	{ "/kubepods-besteffort-pod" UID_ ".slice:cri-containerd:" ID,
	  CG_KIND_CONTAINER, UID, ID, "containerd", CG_QOS_BESTEFFORT, 1 },
	{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_ ".slice:crio:" ID,
	  CG_KIND_CONTAINER, UID, ID, "cri-o", CG_QOS_BURSTABLE, 3 },
	{ "/kubepods-pod" UID_ ".slice:docker:" ID, CG_KIND_CONTAINER, UID, ID, "docker", CG_QOS_GUARANTEED, 1 },
	/* a node inside a container (kind, k3d): the outer container is not the pod's */
	{ "/docker/" ID2 "/kubepods/besteffort/pod" UID "/" ID, CG_KIND_CONTAINER, UID, ID, "", CG_QOS_BESTEFFORT, 6 },
	{ "/system.slice/docker-" ID2 ".scope/kubepods/burstable/pod" UID "/" ID,
	  CG_KIND_CONTAINER, UID, ID, "", CG_QOS_BURSTABLE, 6 },
	/* k3s under its own service */
	{ "/system.slice/k3s.service/kubepods/besteffort/pod" UID "/" ID,
	  CG_KIND_CONTAINER, UID, ID, "", CG_QOS_BESTEFFORT, 6 },
	/* runtimes' own containers, no pod */
	{ "/system.slice/docker-" ID ".scope", CG_KIND_CONTAINER, "", ID, "docker", CG_QOS_NONE, 2 },
	{ "/docker/" ID, CG_KIND_CONTAINER, "", ID, "docker", CG_QOS_NONE, 2 },
	{ "/libpod_parent/libpod-" ID, CG_KIND_CONTAINER, "", ID, "podman", CG_QOS_NONE, 2 },
	{ "/machine.slice/libpod-" ID ".scope", CG_KIND_CONTAINER, "", ID, "podman", CG_QOS_NONE, 2 },
	{ "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID ".scope/container",
	  CG_KIND_CONTAINER, "", ID, "podman", CG_QOS_NONE, 5 },
	/* the node's own cgroups */
	H("/"),
	H("/init.scope"),
	H("/system.slice/containerd.service"),
	H("/system.slice/kubelet.service"),
	H("/kubepods"),
	H("/kubepods/besteffort"),
	H("/kubepods.slice/kubepods-besteffort.slice"),
	H("/user.slice/user-0.slice/session-1.scope"),
	/* junk */
	H("/machine.slice/libpod-conmon-" ID ".scope"),
	H("/kubepods/besteffort/podnot-a-uid/" ID),
	H("/kubepods/besteffort/pod" UID "x/" ID),
	H("/kubepods/besteffort/pod5e1e7b4c-2f7a-4d6e-9f39-6c2b0f3c8a1/" ID),  /* uid one short */
	H("/kubepods/besteffort/pod5e1e7b4c-2f7a-4d6e-9f39_6c2b0f3c8a1g/" ID), /* not hex */
	H("/kubepods/besteffort/pod5e1e7b4c2f7a-4d6e-9f39-6c2b0f3c8a11-/" ID), /* dash moved */
	H("/pod" UID "/" ID),			/* a pod cgroup outside kubepods */
	H("/kubepodsx/pod" UID "/" ID),
	H("/system.slice/docker-" ID "0.scope"),	/* 65 digits */
	H("/system.slice/docker-0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF.scope"),
	H("/system.slice/docker-.scope"),
	H("/system.slice/cri-containerd-" ID ".scopex"),
	H("/docker"),
	H("/docker/not-an-id"),
	H("/kubepods-besteffort-pod" UID_ ".slice:containerd:" ID),  /* unknown runtime word */
	H("/kubepods-besteffort-pod" UID_ ".slice:cri-containerd:" ID "0"),
	H("/x:y"),
	H("/:::"),
	H("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podxyz.slice"),
	H("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_ ".slicex"),
};

/* pod-level cgroups whose next component is not a container id */
static const struct row pod_junk[] = {
	{ "/kubepods/besteffort/pod" UID "/" "0123", CG_KIND_POD, UID, "", "", CG_QOS_BESTEFFORT, 3 },
	{ "/kubepods/besteffort/pod" UID "/" ID "z", CG_KIND_POD, UID, "", "", CG_QOS_BESTEFFORT, 3 },
	{ "/kubepods/pod" UID "/crio-conmon-" ID, CG_KIND_POD, UID, "", "", CG_QOS_GUARANTEED, 2 },
};

static void check(const struct row *r)
{
	struct cg_ident id;
	char what[600];

	snprintf(what, sizeof(what), "path %s", r->path);
	if (cg_parse_ident(r->path, &id) != 0)
		fail_msg("%s: parse failed", what);
	if (id.kind != r->kind)
		fail_msg("%s: kind %s, want %s", what, cg_kind_name(id.kind), cg_kind_name(r->kind));
	if (strcmp(id.pod_uid, r->uid))
		fail_msg("%s: uid '%s', want '%s'", what, id.pod_uid, r->uid);
	if (strcmp(id.id, r->id))
		fail_msg("%s: id '%s', want '%s'", what, id.id, r->id);
	if (strcmp(id.runtime, r->runtime))
		fail_msg("%s: runtime '%s', want '%s'", what, id.runtime, r->runtime);
	if (id.qos != r->qos)
		fail_msg("%s: qos '%s', want '%s'", what, cg_qos_name(id.qos), cg_qos_name(r->qos));
	if (id.depth != r->depth)
		fail_msg("%s: depth %d, want %d", what, id.depth, r->depth);
}

static void test_corpus(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++)
		check(&corpus[i]);
	for (size_t i = 0; i < sizeof(pod_junk) / sizeof(pod_junk[0]); i++)
		check(&pod_junk[i]);
}

static void test_invalid_input(void **state)
{
	struct cg_ident id;

	(void)state;
	assert_int_equal(cg_parse_ident(NULL, &id), -EINVAL);
	assert_int_equal(cg_parse_ident("", &id), -EINVAL);
	assert_int_equal(cg_parse_ident("kubepods/pod" UID "/" ID, &id), -EINVAL);
	assert_int_equal(id.kind, CG_KIND_HOST);
}

static void test_deep_path(void **state)
{
	char path[4096] = "";
	struct cg_ident id;

	(void)state;
	/* more components than the parser looks at: still no crash, host */
	for (int i = 0; i < 200; i++)
		strcat(path, "/a");
	assert_int_equal(cg_parse_ident(path, &id), 0);
	assert_int_equal(id.kind, CG_KIND_HOST);
}

static void test_runtime_ids(void **state)
{
	char id[CG_ID_LEN + 1];
	const char *rt;

	(void)state;
	assert_int_equal(cg_parse_runtime_id("containerd://" ID, id, &rt), 0);
	assert_string_equal(id, ID);
	assert_string_equal(rt, "containerd");
	assert_int_equal(cg_parse_runtime_id("cri-o://" ID, id, &rt), 0);
	assert_string_equal(rt, "cri-o");
	assert_int_equal(cg_parse_runtime_id("docker://" ID, id, &rt), 0);
	assert_string_equal(rt, "docker");
	assert_int_equal(cg_parse_runtime_id(ID, id, &rt), 0);
	assert_null(rt);
	assert_int_equal(cg_parse_runtime_id("containerd://", id, &rt), -EINVAL);
	assert_int_equal(cg_parse_runtime_id("containerd://" ID "0", id, &rt), -EINVAL);
	assert_int_equal(cg_parse_runtime_id("", id, &rt), -EINVAL);
	assert_int_equal(cg_parse_runtime_id(NULL, id, &rt), -EINVAL);
}

static void test_idmap(void **state)
{
	struct idmap m;
	uint64_t k;
	void *v;
	size_t n = 0;

	(void)state;
	assert_int_equal(idmap_init(&m, 4), 0);
	assert_int_equal(idmap_put(&m, 0, &m), -EINVAL);
	/* sequential ids, as cgroup ids are, through several resizes */
	for (uintptr_t i = 1; i <= 5000; i++)
		assert_int_equal(idmap_put(&m, i, (void *)i), 0);
	assert_int_equal(m.n, 5000);
	for (uintptr_t i = 1; i <= 5000; i += 2)
		assert_ptr_equal(idmap_del(&m, i), (void *)i);
	assert_null(idmap_del(&m, 1));
	assert_int_equal(m.n, 2500);
	for (uintptr_t i = 1; i <= 5000; i++)
		assert_ptr_equal(idmap_get(&m, i), i % 2 ? NULL : (void *)i);
	assert_int_equal(idmap_put(&m, 2, (void *)7), 0);
	assert_ptr_equal(idmap_get(&m, 2), (void *)7);
	for (size_t i = 0; idmap_next(&m, &i, &k, &v);)
		n++;
	assert_int_equal(n, 2500);
	idmap_free(&m);
	assert_null(idmap_get(&m, 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_invalid_input),
		cmocka_unit_test(test_deep_path),
		cmocka_unit_test(test_runtime_ids),
		cmocka_unit_test(test_idmap),
	};

	return cmocka_run_group_tests_name("cgpath", tests, NULL, NULL);
}
