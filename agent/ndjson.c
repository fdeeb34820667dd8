// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* NDJSON output: one object per line; the schema is documented in README.md. */
#include <string.h>

#include "jsonw.h"
#include "output.h"

static void common(struct jw *w, const char *type, uint64_t wall_ns)
{
	jw_cstr(w, "type", type);
	jw_u64(w, "ts_ns", wall_ns);
}

/* The pod the record belongs to, when known. */
static void k8s(struct jw *w, const struct pod_ref *p)
{
	if (!p)
		return;
	jw_obj_open(w, "k8s");
	jw_cstr(w, "namespace", p->namespace_ ? p->namespace_ : "");
	jw_cstr(w, "pod", p->pod ? p->pod : "");
	jw_cstr(w, "pod_uid", p->pod_uid ? p->pod_uid : "");
	jw_cstr(w, "container", p->container ? p->container : "");
	jw_cstr(w, "container_id", p->container_id ? p->container_id : "");
	jw_cstr(w, "runtime", p->runtime ? p->runtime : "");
	jw_obj_close(w);
}

static void ndjson_exec(void *priv, const struct exec_view *v)
{
	const struct exec_event *e = v->e;
	const char *a = v->args;
	struct jw w;

	jw_begin(&w, priv);
	common(&w, "exec", v->wall_ns);
	jw_u64(&w, "pid", e->pid);
	jw_u64(&w, "tid", e->tid);
	jw_u64(&w, "ppid", e->ppid);
	jw_u64(&w, "uid", e->uid);
	jw_u64(&w, "gid", e->gid);
	jw_str(&w, "comm", e->comm, strnlen(e->comm, sizeof(e->comm)));
	jw_str(&w, "filename", v->filename, v->filename_len);
	jw_arr_open(&w, "args");
	for (uint32_t i = 0; i < v->argc; i++) {
		size_t n = strlen(a); /* the decoder guarantees the NUL */

		jw_str(&w, NULL, a, n);
		a += n + 1;
	}
	jw_arr_close(&w);
	jw_bool(&w, "args_truncated", v->args_truncated);
	jw_i64(&w, "retval", e->retval);
	jw_u64(&w, "cgroup_id", e->cgroup_id);
	jw_u64(&w, "mntns_id", e->mntns_id);
	jw_cstr(&w, "hook", exec_method_name(e->method));
	if (e->flags & EXEC_F_READ_FAULT)
		jw_bool(&w, "read_fault", true);
	k8s(&w, v->pod);
	jw_end(&w);
}

static void ndjson_loss(void *priv, const struct loss_rec *l)
{
	struct jw w;

	jw_begin(&w, priv);
	common(&w, "loss", l->wall_ns);
	jw_cstr(&w, "tracer", l->tracer);
	jw_cstr(&w, "stage", l->stage);
	jw_u64(&w, "count", l->count);
	jw_u64(&w, "total", l->total);
	jw_end(&w);
}

static void ndjson_flush(void *priv)
{
	fflush(priv);
}

const struct sink_ops ndjson_sink = {
	.exec = ndjson_exec,
	.loss = ndjson_loss,
	.flush = ndjson_flush,
};
