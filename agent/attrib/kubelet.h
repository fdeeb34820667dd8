/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The kubelet's pod list (GET <url>/pods over HTTPS with the service
 * account's bearer token and CA), parsed with cJSON into what attribution
 * needs: pod identity and labels, and every container id the pod has had.
 * For the metadata thread: calls block up to the timeout.
 */
#ifndef PS_KUBELET_H
#define PS_KUBELET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgroup/cgpath.h"

#define KUBELET_TOKEN_FILE "/var/run/secrets/kubernetes.io/serviceaccount/token"
#define KUBELET_CA_FILE "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
/*
 * What one /pods answer may take, sized for the chart's 512 Mi memory limit
 * (BPF maps and ring buffers count against it too): the body, and what
 * parsing it may allocate (cJSON's tree and the pod arrays). A kubelet's
 * pod list takes about 5x its size to parse (measured), so 32 MiB (some
 * 10,000 pods, 40 times kubelet's default max-pods) fit; a body of tiny
 * objects would take 50x and is refused at the parse budget instead.
 */
#define KUBELET_MAX_RESPONSE (32u << 20)
#define KUBELET_PARSE_BUDGET (6u * KUBELET_MAX_RESPONSE)

struct kl_container {
	const char *name;
	char id[CG_ID_LEN + 1];
	const char *runtime;	/* from the containerID scheme; "" unknown */
};

struct kl_label {
	const char *key, *value;
};

struct kl_pod {
	const char *uid, *name, *namespace_;
	struct kl_label *labels;
	size_t n_labels;
	struct kl_container *containers;
	size_t n_containers;
};

/* Strings point into the parsed document, freed with the list. */
struct kl_podlist {
	struct kl_pod *pods;
	size_t n;
	void *doc;		/* the cJSON tree */
	size_t skipped;		/* items without metadata.uid/name/namespace */
};

/*
 * Parse a PodList. -EINVAL (with a reason in err) when it is not JSON or not
 * a PodList, -E2BIG when parsing it would allocate more than
 * KUBELET_PARSE_BUDGET; odd items are skipped and counted, never fatal.
 */
int kubelet_parse(const char *json, size_t len, struct kl_podlist *out, char *err, size_t errlen);
void kubelet_podlist_free(struct kl_podlist *l);

struct kubelet_client {
	void *curl;
	char fetch_url[512];		/* ".../pods" */
	char url[512];			/* the same without credentials, for messages */
	char token_file[512];		/* "" for none */
	char *buf;
	size_t len, cap;
	bool too_big;			/* this answer went over KUBELET_MAX_RESPONSE */
	uint64_t calls, errors, total_ns, max_ns, last_bytes;
	char err[768];
};

/*
 * base: "https://node:10250" (a trailing "/pods" is accepted). token_file and
 * ca_file may be NULL for the service account's; ca_file "" uses the system
 * CAs; insecure skips certificate checks (for kubelets with self-signed
 * serving certificates).
 */
int kubelet_open(struct kubelet_client *k, const char *base, const char *token_file,
		 const char *ca_file, bool insecure, long timeout_ms);
void kubelet_close(struct kubelet_client *k);
int kubelet_fetch(struct kubelet_client *k, struct kl_podlist *out);

#endif
