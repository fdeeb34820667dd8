// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The kubelet's /pods answer (agent/kubelet.c): any body a kubelet, a proxy
 * or a wrong URL can send, parsed as the metadata thread parses it, and every
 * string it hands to attribution read to its end.
 */
#include <assert.h>
#include <string.h>

#include "fuzz.h"
#include "agent/attrib/kubelet.h"

static size_t touch(const char *s)
{
	return s ? strlen(s) : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the body as kubelet_fetch hands it over: NUL-terminated, not counted in len */
	char *json = fuzz_cstr(data, size), err[256];
	struct kl_podlist l;
	size_t sum = 0;

	if (kubelet_parse(json, size, &l, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < l.n; i++) {
			const struct kl_pod *p = &l.pods[i];

			assert(p->uid && p->name && p->namespace_);
			sum += touch(p->uid) + touch(p->name) + touch(p->namespace_);
			for (size_t j = 0; j < p->n_labels; j++)
				sum += touch(p->labels[j].key) + touch(p->labels[j].value);
			for (size_t j = 0; j < p->n_containers; j++) {
				assert(strlen(p->containers[j].id) == CG_ID_LEN);
				sum += touch(p->containers[j].name) + touch(p->containers[j].runtime);
			}
		}
		kubelet_podlist_free(&l);
	} else {
		assert(memchr(err, '\0', sizeof(err)));
	}
	free(json);
	fuzz_sink = sum;
	return 0;
}
