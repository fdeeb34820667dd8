// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * What a CRI runtime answers (agent/grpc.c, agent/cri.c): the HTTP/2
 * header and trailer lines (grpc-status, grpc-message), the body as a gRPC
 * frame, and its message decoded as each response type the agent asks for,
 * then read the way attribution reads it (ids, pod metadata, labels, the
 * verbose info JSON, the runtime's name).
 */
#include <assert.h>
#include <string.h>

#include "fuzz.h"
#include "agent/attrib/cri.h"

static struct cri_client client; /* big: not on the stack */

static size_t len_of(const char *s)
{
	return s ? strlen(s) : 0;
}

static void trailers(const uint8_t *data, size_t size)
{
	struct grpc_status st = { .code = -1 };
	const uint8_t *p = data, *end = data + size;

	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);

		grpc_header_line((const char *)p, n, &st);
		assert(st.code >= -1 && st.code < 1000);
		assert(memchr(st.message, '\0', sizeof(st.message)));
		p += n;
	}
	fuzz_sink = strlen(grpc_code_name(st.code));
}

static void version(const uint8_t *msg, size_t len)
{
	Runtime__V1__VersionResponse *r = runtime__v1__version_response__unpack(NULL, len, msg);

	if (!r)
		return;
	cri_take_version(&client, r);
	for (const char *s = client.runtime_name; *s; s++)
		assert(*s >= 0x20 && *s < 0x7f);
	for (const char *s = client.runtime_version; *s; s++)
		assert(*s >= 0x20 && *s < 0x7f);
	runtime__v1__version_response__free_unpacked(r, NULL);
}

static void sandboxes(const uint8_t *msg, size_t len)
{
	Runtime__V1__ListPodSandboxResponse *r =
		runtime__v1__list_pod_sandbox_response__unpack(NULL, len, msg);
	size_t sum = 0;

	if (!r)
		return;
	for (size_t i = 0; i < r->n_items; i++) {
		const Runtime__V1__PodSandbox *sb = r->items[i];

		sum += len_of(sb->id);
		if (sb->metadata)
			sum += len_of(sb->metadata->uid) + len_of(sb->metadata->name) +
			       len_of(sb->metadata->namespace_);
		for (size_t j = 0; j < sb->n_labels; j++)
			sum += len_of(sb->labels[j]->key) + len_of(sb->labels[j]->value);
		sum += len_of(cri_label(sb->n_labels, sb->labels, "io.kubernetes.pod.uid"));
	}
	runtime__v1__list_pod_sandbox_response__free_unpacked(r, NULL);
	fuzz_sink = sum;
}

static void containers(const uint8_t *msg, size_t len)
{
	Runtime__V1__ListContainersResponse *r =
		runtime__v1__list_containers_response__unpack(NULL, len, msg);
	size_t sum = 0;

	if (!r)
		return;
	for (size_t i = 0; i < r->n_containers; i++) {
		const Runtime__V1__Container *c = r->containers[i];

		sum += len_of(c->id) + len_of(c->pod_sandbox_id) + (size_t)c->state;
		if (c->metadata)
			sum += len_of(c->metadata->name);
		/* container labels are the same map entry type as a sandbox's */
		sum += len_of(cri_label(c->n_labels, (Runtime__V1__PodSandbox__LabelsEntry **)c->labels,
					"io.kubernetes.pod.uid"));
	}
	runtime__v1__list_containers_response__free_unpacked(r, NULL);
	fuzz_sink = sum;
}

static void status(const uint8_t *msg, size_t len)
{
	Runtime__V1__ContainerStatusResponse *r =
		runtime__v1__container_status_response__unpack(NULL, len, msg);
	int pid;

	if (!r)
		return;
	for (size_t i = 0; i < r->n_info; i++) {
		if (strcmp(r->info[i]->key, "info") != 0)
			continue;
		pid = cri_info_pid(r->info[i]->value);
		assert(pid >= 0 && pid < 1 << 30);
	}
	runtime__v1__container_status_response__free_unpacked(r, NULL);
}

static void message(const uint8_t *msg, size_t len)
{
	version(msg, len);
	sandboxes(msg, len);
	containers(msg, len);
	status(msg, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *msg;
	size_t len;

	trailers(data, size);
	if (grpc_unframe(data, size, &msg, &len) == 0) {
		assert(msg == data + 5 && len == size - 5);
		message(msg, len);
	} else {
		/* the message alone, as a frame around it would bring it */
		message(data, size);
	}
	return 0;
}
