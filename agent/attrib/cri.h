/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A CRI (runtime.v1) client for the metadata thread: Version, ListPodSandbox,
 * ListContainers, ContainerStatus(verbose) over gRPC on the runtime's unix
 * socket, messages from proto/cri/api.proto through protoc-c. Every failure
 * leaves a one-line explanation in c->err; latencies are counted per method.
 */
#ifndef PS_CRI_H
#define PS_CRI_H

#include <stdint.h>

#include "agent/attrib/grpc.h"
#include "cri/api.pb-c.h"

enum cri_method { CRI_VERSION, CRI_LIST_SANDBOX, CRI_LIST_CONTAINERS, CRI_CONTAINER_STATUS,
		  CRI_NMETHODS };

struct cri_latency {
	uint64_t calls, errors, total_ns, max_ns;
};

struct cri_client {
	struct grpc_conn g;
	char socket[108];
	char runtime_name[64];		/* from Version: "containerd", "cri-o" */
	char runtime_version[64];
	struct cri_latency lat[CRI_NMETHODS];
	char err[768];
};

/* Sockets tried, in order, when none is given. */
extern const char *const cri_default_sockets[];

/* The first default socket that exists and is a socket; -ENOENT if none. */
int cri_detect_socket(char *out, size_t len);

int cri_open(struct cri_client *c, const char *socket, long timeout_ms);
void cri_close(struct cri_client *c);

int cri_version(struct cri_client *c);
/* Keep the runtime name and version of a Version answer (printable ASCII only). */
void cri_take_version(struct cri_client *c, const Runtime__V1__VersionResponse *resp);
/* id: "" for all. Free with the matching __free_unpacked(x, NULL). */
int cri_list_sandboxes(struct cri_client *c, const char *id,
		       Runtime__V1__ListPodSandboxResponse **out);
int cri_list_containers(struct cri_client *c, const char *id,
			Runtime__V1__ListContainersResponse **out);
/* verbose: the pid of the container's init from info["info"] (0 if absent) */
int cri_container_status(struct cri_client *c, const char *id,
			 Runtime__V1__ContainerStatusResponse **out, int *pid);

const char *cri_method_name(enum cri_method m);
/* podsnoop_cri_latency_seconds{method} in /metrics */
void cri_register_metrics(void);
/* The value of a label, or NULL. */
const char *cri_label(size_t n, Runtime__V1__PodSandbox__LabelsEntry **labels, const char *key);
/* The pid in containerd's/CRI-O's verbose info JSON; 0 if none. */
int cri_info_pid(const char *json);

#endif
