// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "cgroup/cgpath.h"

const char *cg_kind_name(enum cg_kind kind)
{
	switch (kind) {
	case CG_KIND_POD: return "pod";
	case CG_KIND_CONTAINER: return "container";
	default: return "host";
	}
}

const char *cg_qos_name(enum cg_qos qos)
{
	switch (qos) {
	case CG_QOS_GUARANTEED: return "guaranteed";
	case CG_QOS_BURSTABLE: return "burstable";
	case CG_QOS_BESTEFFORT: return "besteffort";
	default: return "";
	}
}

/* A path component: not NUL-terminated. */
struct comp {
	const char *s;
	size_t n;
};

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_hex(s[i]))
			return false;
	return true;
}

static bool has_prefix(struct comp c, const char *p)
{
	size_t n = strlen(p);

	return c.n >= n && memcmp(c.s, p, n) == 0;
}

static bool has_suffix(struct comp c, const char *p)
{
	size_t n = strlen(p);

	return c.n >= n && memcmp(c.s + c.n - n, p, n) == 0;
}

static bool equals(struct comp c, const char *p)
{
	return c.n == strlen(p) && memcmp(c.s, p, c.n) == 0;
}

/*
 * A pod uid: 8-4-4-4-12 hex with '-' (cgroupfs) or '_' (systemd escapes
 * dashes in unit names), or 32 hex digits (static pods: a hash). Written
 * with dashes, as the API server shows it.
 */
static bool parse_uid(const char *s, size_t n, char out[CG_UID_LEN + 1])
{
	static const size_t dash_at[] = { 8, 13, 18, 23 };

	if (n == 32 && all_hex(s, n)) {
		memcpy(out, s, n);
		out[n] = '\0';
		return true;
	}
	if (n != CG_UID_LEN)
		return false;
	for (size_t i = 0, d = 0; i < n; i++) {
		if (d < 4 && i == dash_at[d]) {
			if (s[i] != '-' && s[i] != '_')
				return false;
			out[i] = '-';
			d++;
		} else if (!is_hex(s[i])) {
			return false;
		} else {
			out[i] = s[i];
		}
	}
	out[n] = '\0';
	return true;
}

static bool parse_id(const char *s, size_t n, char out[CG_ID_LEN + 1])
{
	if (n != CG_ID_LEN || !all_hex(s, n))
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

static enum cg_qos qos_of(struct comp c)
{
	/* "besteffort", "kubepods-besteffort.slice", "kubepods-besteffort-pod..." */
	for (size_t i = 0; i + 10 <= c.n; i++) {
		if (memcmp(c.s + i, "besteffort", 10) == 0)
			return CG_QOS_BESTEFFORT;
		if (i + 9 <= c.n && memcmp(c.s + i, "burstable", 9) == 0)
			return CG_QOS_BURSTABLE;
	}
	if (c.n >= 9 && memcmp(c.s, "burstable", 9) == 0)
		return CG_QOS_BURSTABLE;
	return CG_QOS_NONE;
}

static bool is_kubepods(struct comp c)
{
	return equals(c, "kubepods") || has_prefix(c, "kubepods.") || has_prefix(c, "kubepods-");
}

/* "pod<uid>" (cgroupfs) or "kubepods[-<qos>]-pod<uid_>.slice" (systemd). */
static bool parse_pod(struct comp c, char uid[CG_UID_LEN + 1])
{
	const char *p;

	if (has_prefix(c, "pod"))
		return parse_uid(c.s + 3, c.n - 3, uid);
	if (!has_prefix(c, "kubepods-") || !has_suffix(c, ".slice"))
		return false;
	c.n -= 6;
	/* the last "-pod" before the uid */
	for (p = c.s + c.n - 4; p >= c.s; p--)
		if (memcmp(p, "-pod", 4) == 0)
			return parse_uid(p + 4, (size_t)(c.s + c.n - (p + 4)), uid);
	return false;
}

struct rt_prefix {
	const char *prefix;	/* "<prefix><id>[.scope]" */
	const char *runtime;
};

/* Runtime monitors (conmon) live beside containers but are not them. */
static const char *const not_containers[] = { "crio-conmon-", "libpod-conmon-" };

static const struct rt_prefix prefixes[] = {
	{ "cri-containerd-", "containerd" },
	{ "crio-", "cri-o" },
	{ "docker-", "docker" },
	{ "libpod-", "podman" },
};

/* ":cri-containerd:<id>" and the like: systemd cgroupsPath written as a path */
static const struct rt_prefix colon_forms[] = {
	{ "cri-containerd", "containerd" },
	{ "crio", "cri-o" },
	{ "docker", "docker" },
	{ "libpod", "podman" },
};

/* A container component with a runtime prefix; false for anything else. */
static bool parse_prefixed(struct comp c, struct cg_ident *out)
{
	for (size_t i = 0; i < sizeof(not_containers) / sizeof(not_containers[0]); i++)
		if (has_prefix(c, not_containers[i]))
			return false;
	if (has_suffix(c, ".scope"))
		c.n -= 6;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t n = strlen(prefixes[i].prefix);

		if (has_prefix(c, prefixes[i].prefix) && parse_id(c.s + n, c.n - n, out->id)) {
			out->runtime = prefixes[i].runtime;
			return true;
		}
	}
	return false;
}

/* "<anything>:<runtime>:<id>": the slice part is returned in *slice. */
static bool parse_colon(struct comp c, struct comp *slice, struct cg_ident *out)
{
	const char *c1 = memchr(c.s, ':', c.n), *c2;
	struct comp rt;

	if (!c1)
		return false;
	c2 = memchr(c1 + 1, ':', (size_t)(c.s + c.n - c1 - 1));
	if (!c2)
		return false;
	rt.s = c1 + 1;
	rt.n = (size_t)(c2 - rt.s);
	for (size_t i = 0; i < sizeof(colon_forms) / sizeof(colon_forms[0]); i++) {
		if (equals(rt, colon_forms[i].prefix) &&
		    parse_id(c2 + 1, (size_t)(c.s + c.n - c2 - 1), out->id)) {
			out->runtime = colon_forms[i].runtime;
			slice->s = c.s;
			slice->n = (size_t)(c1 - c.s);
			return true;
		}
	}
	return false;
}

#define MAX_COMPS 64

int cg_parse_ident(const char *path, struct cg_ident *out)
{
	struct comp comps[MAX_COMPS], slice;
	int n = 0, pod = -1, i;
	bool kube = false;
	const char *p;

	memset(out, 0, sizeof(*out));
	out->runtime = "";
	if (!path || path[0] != '/')
		return -EINVAL;
	for (p = path; *p && n < MAX_COMPS;) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		comps[n].s = p;
		while (*p && *p != '/')
			p++;
		comps[n].n = (size_t)(p - comps[n].s);
		n++;
	}

	/* Kubernetes: kubepods[/<qos>]/pod<uid>/<container>, at any depth */
	for (i = 0; i < n; i++) {
		struct comp c = comps[i];

		if (parse_colon(c, &slice, out)) {
			/* "kubepods-...-pod<uid>.slice:cri-containerd:<id>" */
			if (parse_pod(slice, out->pod_uid)) {
				out->qos = qos_of(slice) != CG_QOS_NONE ? qos_of(slice) :
									  CG_QOS_GUARANTEED;
				out->kind = CG_KIND_CONTAINER;
				out->depth = i + 1;
				return 0;
			}
			memset(out->id, 0, sizeof(out->id));
			out->runtime = "";
			continue;
		}
		if (is_kubepods(c)) {
			kube = true;
			if (!has_prefix(c, "kubepods-") || !has_suffix(c, ".slice") ||
			    !parse_pod(c, out->pod_uid)) {
				if (qos_of(c) != CG_QOS_NONE)
					out->qos = qos_of(c);
				continue;
			}
		} else if (kube && (equals(c, "besteffort") || equals(c, "burstable"))) {
			out->qos = qos_of(c);
			continue;
		} else if (!kube || !parse_pod(c, out->pod_uid)) {
			continue;
		}
		pod = i;
		if (out->qos == CG_QOS_NONE)
			out->qos = qos_of(c) != CG_QOS_NONE ? qos_of(c) : CG_QOS_GUARANTEED;
		break;
	}
	if (pod >= 0) {
		out->kind = CG_KIND_POD;
		out->depth = pod + 1;
		if (pod + 1 < n) {
			struct comp c = comps[pod + 1];

			if (parse_id(c.s, c.n, out->id) || parse_prefixed(c, out)) {
				out->kind = CG_KIND_CONTAINER;
				out->depth = pod + 2;
			}
		}
		return 0;
	}

	/* Not a pod: a runtime's own containers (docker, podman) */
	out->qos = CG_QOS_NONE;
	out->pod_uid[0] = '\0';
	for (i = 0; i < n; i++) {
		if (parse_prefixed(comps[i], out) ||
		    (i > 0 && equals(comps[i - 1], "docker") &&
		     parse_id(comps[i].s, comps[i].n, out->id) && (out->runtime = "docker"))) {
			out->kind = CG_KIND_CONTAINER;
			out->depth = i + 1;
			return 0;
		}
	}
	memset(out->id, 0, sizeof(out->id));
	out->runtime = "";
	return 0;
}

int cg_parse_runtime_id(const char *s, char id[CG_ID_LEN + 1], const char **runtime)
{
	static const struct rt_prefix schemes[] = {
		{ "containerd://", "containerd" },
		{ "cri-o://", "cri-o" },
		{ "docker://", "docker" },
	};
	const char *sep;

	if (!s)
		return -EINVAL;
	*runtime = NULL;
	sep = strstr(s, "://");
	if (sep) {
		*runtime = "";
		for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
			if (strncmp(s, schemes[i].prefix, strlen(schemes[i].prefix)) == 0)
				*runtime = schemes[i].runtime;
		s = sep + 3;
	}
	return parse_id(s, strlen(s), id) ? 0 : -EINVAL;
}
