/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Pod selection by Kubernetes identity: --namespace, --pod and --selector
 * (label selectors with equality: "k=v", "k==v", "k!=v", "k", "!k", joined
 * by commas, all of which must hold, as kubectl's -l).
 */
#ifndef PS_SELECTOR_H
#define PS_SELECTOR_H

#include <stdbool.h>
#include <stddef.h>

#define SEL_MAX_REQS 64

enum sel_op { SEL_EQ, SEL_NE, SEL_EXISTS, SEL_NOT_EXISTS };

struct sel_req {
	enum sel_op op;
	char key[320];		/* prefix/name: 253 + 1 + 63 */
	char value[64];
};

struct pod_selector {
	const char *const *namespaces;	/* any of them; none given: any namespace */
	size_t n_namespaces;
	const char *const *pods;	/* any of these names */
	size_t n_pods;
	struct sel_req reqs[SEL_MAX_REQS]; /* all of them */
	size_t n_reqs;
};

/* Add the requirements of one --selector argument; -EINVAL with a reason in err. */
int sel_parse(struct pod_selector *s, const char *arg, char *err, size_t errlen);
bool sel_active(const struct pod_selector *s);

/* Labels as parallel key/value arrays. */
bool sel_match(const struct pod_selector *s, const char *namespace_, const char *name,
	       const char *const *keys, const char *const *values, size_t n_labels);

#endif
