// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* NDJSON output: one object per line; the schema is documented in docs/records.md. */
#include <string.h>

#include "lib/jsonw.h"
#include "lib/ndjson.h"

static void common(struct jw *w, const char *type, uint64_t wall_ns)
{
	jw_cstr(w, "type", type);
	jw_u64(w, "ts_ns", wall_ns);
}

/* The pod the record belongs to, when known. */
void ndjson_k8s(struct jw *w, const struct pod_ref *p)
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
	ndjson_k8s(&w, v->pod);
	jw_end(&w);
}

static void dev_str(char *buf, size_t n, uint32_t dev)
{
	/* the kernel's dev_t: 12-bit major, 20-bit minor */
	snprintf(buf, n, "%u:%u", dev >> 20, dev & ((1u << 20) - 1));
}

static void ndjson_open(void *priv, const struct open_view *v)
{
	const struct open_event *e = v->e;
	struct jw w;

	jw_begin(&w, priv);
	common(&w, "open", v->wall_ns);
	jw_u64(&w, "pid", e->pid);
	jw_u64(&w, "tid", e->tid);
	jw_u64(&w, "uid", e->uid);
	jw_str(&w, "comm", e->comm, strnlen(e->comm, sizeof(e->comm)));
	jw_cstr(&w, "syscall", open_syscall_name(e->syscall));
	if (!(e->rflags & OPEN_F_NO_DIRFD))
		jw_i64(&w, "dirfd", e->dirfd);
	jw_str(&w, "path", v->path, v->path_len);
	jw_bool(&w, "path_truncated", v->truncated);
	jw_u64(&w, "flags", e->flags);
	jw_u64(&w, "mode", e->mode);
	jw_i64(&w, "ret", e->ret);
	jw_u64(&w, "latency_ns", e->latency_ns);
	jw_u64(&w, "cgroup_id", e->cgroup_id);
	jw_u64(&w, "mntns_id", e->mntns_id);
	jw_cstr(&w, "hook", open_method_name(e->method));
	if (e->rflags & OPEN_F_READ_FAULT)
		jw_bool(&w, "read_fault", true);
	ndjson_k8s(&w, v->pod);
	jw_end(&w);
}

static void ndjson_bio(void *priv, const struct bio_view *v)
{
	const struct bio_event *e = v->e;
	char dev[24];
	struct jw w;

	dev_str(dev, sizeof(dev), e->dev);
	jw_begin(&w, priv);
	common(&w, "bio", v->wall_ns);
	jw_str(&w, "disk", v->disk, v->disk_len);
	jw_cstr(&w, "dev", dev);
	jw_cstr(&w, "op", v->op);
	jw_u64(&w, "sector", e->sector);
	jw_u64(&w, "bytes", e->bytes);
	if (e->flags & BIO_F_QUEUED)
		jw_u64(&w, "queue_ns", e->queue_ns);
	else /* the request went to the driver without being queued */
		jw_null(&w, "queue_ns");
	jw_u64(&w, "latency_ns", e->latency_ns);
	if (e->flags & BIO_F_NO_ISSUE)
		jw_bool(&w, "no_issue", true);
	if (e->flags & BIO_F_MERGED)
		jw_bool(&w, "merged", true);
	if (e->flags & BIO_F_UNSEEN)
		jw_bool(&w, "unseen", true);
	jw_i64(&w, "status", e->status);
	jw_u64(&w, "pid", e->pid);
	jw_u64(&w, "tid", e->tid);
	jw_str(&w, "comm", e->comm, strnlen(e->comm, sizeof(e->comm)));
	jw_cstr(&w, "attribution", bio_attrib_name(e->attribution));
	jw_u64(&w, "cgroup_id", e->cgroup_id);
	jw_u64(&w, "mntns_id", e->mntns_id);
	jw_u64(&w, "blkcg_id", e->blkcg_id);
	if (e->flags & BIO_F_BLKCG_V1)
		jw_bool(&w, "blkcg_v1", true);
	jw_cstr(&w, "hook", bio_method_name(e->method));
	ndjson_k8s(&w, v->pod);
	jw_end(&w);
}

static void ndjson_fs(void *priv, const struct fs_view *v)
{
	const struct fs_event *e = v->e;
	char dev[24];
	struct jw w;

	dev_str(dev, sizeof(dev), e->dev);
	jw_begin(&w, priv);
	common(&w, "fs", v->wall_ns);
	jw_u64(&w, "pid", e->pid);
	jw_u64(&w, "tid", e->tid);
	jw_str(&w, "comm", e->comm, strnlen(e->comm, sizeof(e->comm)));
	jw_cstr(&w, "op", fs_op_name(e->op));
	jw_u64(&w, "bytes", (e->op == FS_OP_READ || e->op == FS_OP_WRITE) && e->ret > 0 ?
				    (uint64_t)e->ret : 0);
	jw_u64(&w, "offset", e->offset);
	if (e->size)
		jw_u64(&w, "size", e->size);
	jw_u64(&w, "latency_ns", e->latency_ns);
	jw_str(&w, "file", v->name, v->name_len);
	jw_str(&w, "path", v->path, v->path_len);
	jw_bool(&w, "path_truncated", v->path_truncated);
	jw_cstr(&w, "fs", fs_type_name(e->fs));
	jw_cstr(&w, "dev", dev);
	jw_u64(&w, "ino", e->ino);
	if (e->ret < 0)
		jw_i64(&w, "error", -e->ret);
	else if (e->op == FS_OP_OPEN && (e->method == FS_M_SYSCALLS || e->method == FS_M_RAW_SYSCALLS))
		jw_i64(&w, "fd", e->ret); /* the filesystem's open op returns 0, not the fd */
	if (e->flags & FS_F_DATASYNC)
		jw_bool(&w, "datasync", true);
	if (e->flags & FS_F_OVERLAY)
		jw_bool(&w, "overlay", true);
	if (e->flags & FS_F_READ_FAULT)
		jw_bool(&w, "read_fault", true);
	jw_u64(&w, "cgroup_id", e->cgroup_id);
	jw_u64(&w, "mntns_id", e->mntns_id);
	jw_cstr(&w, "hook", fs_method_name(e->method));
	ndjson_k8s(&w, v->pod);
	jw_end(&w);
}

static void ndjson_bio_hist(void *priv, const struct bio_hist_view *v)
{
	uint64_t lo, hi;
	char dev[24];
	struct jw w;

	dev_str(dev, sizeof(dev), v->dev);
	jw_begin(&w, priv);
	common(&w, "bio_hist", v->wall_ns);
	jw_u64(&w, "interval_ns", v->interval_ns);
	jw_u64(&w, "cgroup_id", v->cgroup_id);
	jw_str(&w, "disk", v->disk, v->disk_len);
	jw_cstr(&w, "dev", dev);
	jw_cstr(&w, "op", v->op);
	jw_cstr(&w, "unit", "usecs");
	jw_arr_open(&w, "buckets"); /* the non-empty ones */
	for (unsigned int i = 0; i < BIO_HIST_SLOTS; i++) {
		if (!v->slots[i])
			continue;
		bio_hist_bounds(i, &lo, &hi);
		jw_obj_open(&w, NULL);
		jw_u64(&w, "lo", lo);
		if (i == BIO_HIST_SLOTS - 1) /* the last bucket is open-ended */
			jw_null(&w, "hi");
		else
			jw_u64(&w, "hi", hi);
		jw_u64(&w, "count", v->slots[i]);
		jw_obj_close(&w);
	}
	jw_arr_close(&w);
	jw_u64(&w, "count", v->count);
	jw_u64(&w, "sum_ns", v->sum_ns);
	jw_u64(&w, "merged", v->merged);
	ndjson_k8s(&w, v->pod);
	jw_end(&w);
}

/* A count that may be unknown with this method: null then. */
static void u64_or_null(struct jw *w, const char *key, bool known, uint64_t v)
{
	if (known)
		jw_u64(w, key, v);
	else
		jw_null(w, key);
}

static void ndjson_cache(void *priv, const struct cache_view *v)
{
	struct jw w;

	jw_begin(&w, priv);
	common(&w, "cache", v->wall_ns);
	jw_u64(&w, "interval_ns", v->interval_ns);
	u64_or_null(&w, "accesses", v->accesses_known, v->accesses);
	u64_or_null(&w, "hits", v->accesses_known, v->hits);
	jw_u64(&w, "misses", v->misses);
	jw_u64(&w, "dirtied", v->dirtied);
	if (v->ratio_known)
		jw_double(&w, "hit_ratio", v->hit_ratio);
	else
		jw_null(&w, "hit_ratio");
	jw_bool(&w, "estimated", v->estimated);
	jw_u64(&w, "pages_added", v->added);
	jw_u64(&w, "buffers_dirtied", v->buf_dirtied);
	jw_u64(&w, "host_buffers_kb", v->host_buffers_kb);
	jw_u64(&w, "host_cached_kb", v->host_cached_kb);
	jw_u64(&w, "cgroup_id", v->cgroup_id);
	jw_u64(&w, "mntns_id", v->mntns_id);
	jw_cstr(&w, "hook", cache_method_name(v->method));
	ndjson_k8s(&w, v->pod);
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
	if (l->has_cgroup) {
		jw_u64(&w, "cgroup_id", l->cgroup_id);
		ndjson_k8s(&w, l->pod);
	}
	jw_end(&w);
}

static void ndjson_flush(void *priv)
{
	fflush(priv);
}

const struct sink_ops ndjson_sink = {
	.exec = ndjson_exec,
	.open = ndjson_open,
	.bio = ndjson_bio,
	.bio_hist = ndjson_bio_hist,
	.loss = ndjson_loss,
	.fs = ndjson_fs,
	.cache = ndjson_cache,
	.flush = ndjson_flush,
};
