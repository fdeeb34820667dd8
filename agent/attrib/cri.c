// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>

#include "agent/clock.h"
#include "agent/attrib/cri.h"
#include "lib/metrics.h"

#define LAT_HELP "CRI call latency by method."
static struct metric lat_hist[CRI_NMETHODS] = {
	METRIC_HISTOGRAM("podsnoop_cri_latency_seconds", LAT_HELP, 1e-6, "method", "Version"),
	METRIC_HISTOGRAM("podsnoop_cri_latency_seconds", LAT_HELP, 1e-6, "method", "ListPodSandbox"),
	METRIC_HISTOGRAM("podsnoop_cri_latency_seconds", LAT_HELP, 1e-6, "method", "ListContainers"),
	METRIC_HISTOGRAM("podsnoop_cri_latency_seconds", LAT_HELP, 1e-6, "method", "ContainerStatus"),
};

void cri_register_metrics(void)
{
	static bool done;

	for (int m = 0; m < CRI_NMETHODS && !done; m++)
		metrics_register(&lat_hist[m]);
	done = true;
}

const char *const cri_default_sockets[] = {
	"/run/containerd/containerd.sock",
	"/run/crio/crio.sock",
	"/var/run/containerd/containerd.sock",
	"/var/run/crio/crio.sock",
	"/run/k3s/containerd/containerd.sock",
	"/var/snap/microk8s/common/run/containerd.sock",
	"/run/cri-dockerd.sock",
	NULL,
};

int cri_detect_socket(char *out, size_t len)
{
	struct stat st;

	for (int i = 0; cri_default_sockets[i]; i++) {
		if (stat(cri_default_sockets[i], &st) == 0 && S_ISSOCK(st.st_mode)) {
			snprintf(out, len, "%s", cri_default_sockets[i]);
			return 0;
		}
	}
	return -ENOENT;
}

const char *cri_method_name(enum cri_method m)
{
	static const char *const names[] = { "Version", "ListPodSandbox", "ListContainers",
					     "ContainerStatus" };

	return m < CRI_NMETHODS ? names[m] : "?";
}

int cri_open(struct cri_client *c, const char *socket, long timeout_ms)
{
	memset(c, 0, sizeof(*c));
	if (strncmp(socket, "unix://", 7) == 0)
		socket += 7;
	/* a longer path cannot be connected to: never cut it to one that can */
	if (strlen(socket) >= sizeof(c->socket))
		return -ENAMETOOLONG;
	strcpy(c->socket, socket);
	return grpc_open(&c->g, c->socket, timeout_ms);
}

void cri_close(struct cri_client *c)
{
	grpc_close(&c->g);
}

/* One call, timed and explained. */
static int call(struct cri_client *c, enum cri_method m, const ProtobufCMessage *req,
		const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp)
{
	uint8_t stackbuf[512], *buf = stackbuf;
	size_t len = protobuf_c_message_get_packed_size(req), msg_len;
	uint64_t t0 = clock_now_ns(CLOCK_MONOTONIC), dt;
	const uint8_t *msg;
	struct grpc_status st;
	char path[96];
	int err;

	if (len > sizeof(stackbuf) && !(buf = malloc(len)))
		return -ENOMEM;
	protobuf_c_message_pack(req, buf);
	snprintf(path, sizeof(path), "/runtime.v1.RuntimeService/%s", cri_method_name(m));
	err = grpc_call(&c->g, path, buf, len, &msg, &msg_len, &st);
	if (buf != stackbuf)
		free(buf);
	dt = clock_now_ns(CLOCK_MONOTONIC) - t0;
	c->lat[m].calls++;
	c->lat[m].total_ns += dt;
	if (dt > c->lat[m].max_ns)
		c->lat[m].max_ns = dt;
	metric_observe(&lat_hist[m], dt / 1000);
	if (!err) {
		*resp = protobuf_c_message_unpack(resp_desc, NULL, msg_len, msg);
		if (!*resp) {
			err = -EPROTO;
			snprintf(st.message, sizeof(st.message), "undecodable %s (%zu bytes)",
				 resp_desc->name, msg_len);
		}
	}
	if (err) {
		c->lat[m].errors++;
		if (st.code > 0)
			snprintf(c->err, sizeof(c->err), "CRI %s at %s: %s: %s", cri_method_name(m),
				 c->socket, grpc_code_name(st.code), st.message);
		else
			snprintf(c->err, sizeof(c->err), "CRI %s at %s: %s", cri_method_name(m),
				 c->socket, st.message[0] ? st.message : strerror(-err));
	}
	return err;
}

/*
 * The runtime's name and version go into every record, log line and /readyz:
 * printable ASCII only (a newline or an escape sequence from a runtime must
 * not forge a line or reach a terminal), each other byte as '?'.
 */
static void copy_printable(char *dst, size_t n, const char *src)
{
	size_t i = 0;

	for (; src && src[i] && i + 1 < n; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[i] = '\0';
}

void cri_take_version(struct cri_client *c, const Runtime__V1__VersionResponse *resp)
{
	copy_printable(c->runtime_name, sizeof(c->runtime_name), resp->runtime_name);
	copy_printable(c->runtime_version, sizeof(c->runtime_version), resp->runtime_version);
}

int cri_version(struct cri_client *c)
{
	Runtime__V1__VersionRequest req = RUNTIME__V1__VERSION_REQUEST__INIT;
	Runtime__V1__VersionResponse *resp;
	int err;

	req.version = "v1";
	err = call(c, CRI_VERSION, &req.base, &runtime__v1__version_response__descriptor,
		   (ProtobufCMessage **)&resp);
	if (err)
		return err;
	cri_take_version(c, resp);
	runtime__v1__version_response__free_unpacked(resp, NULL);
	return 0;
}

int cri_list_sandboxes(struct cri_client *c, const char *id,
		       Runtime__V1__ListPodSandboxResponse **out)
{
	Runtime__V1__ListPodSandboxRequest req = RUNTIME__V1__LIST_POD_SANDBOX_REQUEST__INIT;
	Runtime__V1__PodSandboxFilter filter = RUNTIME__V1__POD_SANDBOX_FILTER__INIT;

	if (id && *id) {
		filter.id = (char *)id;
		req.filter = &filter;
	}
	return call(c, CRI_LIST_SANDBOX, &req.base, &runtime__v1__list_pod_sandbox_response__descriptor,
		    (ProtobufCMessage **)out);
}

int cri_list_containers(struct cri_client *c, const char *id,
			Runtime__V1__ListContainersResponse **out)
{
	Runtime__V1__ListContainersRequest req = RUNTIME__V1__LIST_CONTAINERS_REQUEST__INIT;
	Runtime__V1__ContainerFilter filter = RUNTIME__V1__CONTAINER_FILTER__INIT;

	if (id && *id) {
		filter.id = (char *)id;
		req.filter = &filter;
	}
	return call(c, CRI_LIST_CONTAINERS, &req.base,
		    &runtime__v1__list_containers_response__descriptor, (ProtobufCMessage **)out);
}

int cri_info_pid(const char *json)
{
	cJSON *root = cJSON_Parse(json), *pid;
	int v = 0;

	if (!root)
		return 0;
	pid = cJSON_GetObjectItemCaseSensitive(root, "pid");
	if (cJSON_IsNumber(pid) && pid->valuedouble > 0 && pid->valuedouble < 1 << 30)
		v = (int)pid->valuedouble;
	cJSON_Delete(root);
	return v;
}

int cri_container_status(struct cri_client *c, const char *id,
			 Runtime__V1__ContainerStatusResponse **out, int *pid)
{
	Runtime__V1__ContainerStatusRequest req = RUNTIME__V1__CONTAINER_STATUS_REQUEST__INIT;
	int err;

	req.container_id = (char *)id;
	req.verbose = 1;
	*pid = 0;
	err = call(c, CRI_CONTAINER_STATUS, &req.base,
		   &runtime__v1__container_status_response__descriptor, (ProtobufCMessage **)out);
	if (err)
		return err;
	for (size_t i = 0; i < (*out)->n_info; i++)
		if (strcmp((*out)->info[i]->key, "info") == 0)
			*pid = cri_info_pid((*out)->info[i]->value);
	return 0;
}

const char *cri_label(size_t n, Runtime__V1__PodSandbox__LabelsEntry **labels, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(labels[i]->key, key) == 0)
			return labels[i]->value;
	return NULL;
}
