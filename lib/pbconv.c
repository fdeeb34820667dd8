// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/pbconv.h"
#include "bpf/cache.h"

/* protobuf-c packs a NULL string as absent only in some paths: give it "". */
static char *pb_str(const char *s)
{
	return (char *)(s ? s : "");
}

static const char *view_str(const char *s)
{
	return s && *s ? s : NULL;
}

Podsnoop__V1__Task *pbconv_task(struct pb_task_buf *b, uint32_t pid, uint32_t tid, uint32_t ppid,
				uint32_t uid, uint32_t gid, const char *comm, size_t comm_size,
				uint64_t cgroup_id, uint64_t mntns_id, const struct pod_ref *pod)
{
	Podsnoop__V1__Task *t = &b->task;

	podsnoop__v1__task__init(t);
	t->pid = pid;
	t->tid = tid;
	t->ppid = ppid;
	t->uid = uid;
	t->gid = gid;
	if (comm) {
		t->comm.data = (uint8_t *)comm;
		t->comm.len = strnlen(comm, comm_size);
	}
	t->cgroup_id = cgroup_id;
	t->mntns_id = mntns_id;
	if (pod) {
		podsnoop__v1__pod__init(&b->pod);
		b->pod.namespace_ = pb_str(pod->namespace_);
		b->pod.name = pb_str(pod->pod);
		b->pod.uid = pb_str(pod->pod_uid);
		b->pod.container = pb_str(pod->container);
		b->pod.container_id = pb_str(pod->container_id);
		b->pod.runtime = pb_str(pod->runtime);
		t->pod = &b->pod;
	}
	return t;
}

const struct pod_ref *pbconv_pod_ref(const Podsnoop__V1__Task *t, struct pod_ref *out)
{
	const Podsnoop__V1__Pod *p = t ? t->pod : NULL;

	if (!p)
		return NULL;
	out->namespace_ = view_str(p->namespace_);
	out->pod = view_str(p->name);
	out->pod_uid = view_str(p->uid);
	out->container = view_str(p->container);
	out->container_id = view_str(p->container_id);
	out->runtime = view_str(p->runtime);
	return out;
}

/*
 * The code a name function gives name for, among first..last; 0 when none
 * does (a name from a newer agent: the record is still written, as
 * "unknown").
 */
static uint32_t code_of(const char *(*name_fn)(uint32_t), uint32_t first, uint32_t last,
			const char *name)
{
	for (uint32_t c = first; c <= last; c++)
		if (strcmp(name_fn(c), name) == 0)
			return c;
	return 0;
}

/* The kernel's dev_t as the BPF side reads it: 12-bit major, 20-bit minor. */
static void dev_split(uint32_t dev, uint32_t *major, uint32_t *minor)
{
	*major = dev >> 20;
	*minor = dev & ((1u << 20) - 1);
}

static int dev_join(uint32_t major, uint32_t minor, __u32 *dev)
{
	if (major >= (1u << 12) || minor >= (1u << 20))
		return -EINVAL;
	*dev = major << 20 | minor;
	return 0;
}

/* A fixed-size char field of a kernel struct from a bytes field. */
static int copy_chars(char *dst, size_t size, const ProtobufCBinaryData *src)
{
	if (src->len > size || (src->len && memchr(src->data, '\0', src->len)))
		return -EINVAL;
	memset(dst, 0, size);
	if (src->len)
		memcpy(dst, src->data, src->len);
	return 0;
}

static const uint8_t *bytes_ptr(const ProtobufCBinaryData *d)
{
	return d->data ? d->data : (const uint8_t *)"";
}

/* ---- exec ---- */

static uint32_t exec_method_from_name(const char *name)
{
	return code_of(exec_method_name, EXEC_M_SYSCALLS, EXEC_M_RAW_SYSCALLS, name);
}

const Podsnoop__V1__Record *pbconv_exec(struct pb_exec_buf *b, const struct exec_view *v)
{
	const struct exec_event *e = v->e;
	Podsnoop__V1__Exec *m = &b->exec;
	const char *a = v->args;
	uint32_t argc = v->argc < EXEC_ARGC_CAP ? v->argc : EXEC_ARGC_CAP;

	podsnoop__v1__exec__init(m);
	m->ts_ns = v->wall_ns;
	m->task = pbconv_task(&b->task, e->pid, e->tid, e->ppid, e->uid, e->gid, e->comm,
			      sizeof(e->comm), e->cgroup_id, e->mntns_id, v->pod);
	m->filename.data = (uint8_t *)v->filename;
	m->filename.len = v->filename_len;
	for (uint32_t i = 0; i < argc; i++) {
		size_t n = strlen(a); /* the decoder guarantees the NUL */

		b->args[i].data = (uint8_t *)a;
		b->args[i].len = n;
		a += n + 1;
	}
	m->n_args = argc;
	m->args = b->args;
	m->args_truncated = v->args_truncated || argc < v->argc;
	m->retval = e->retval;
	m->hook = (char *)exec_method_name(e->method);
	m->read_fault = !!(e->flags & EXEC_F_READ_FAULT);

	podsnoop__v1__record__init(&b->rec);
	b->rec.kind_case = PODSNOOP__V1__RECORD__KIND_EXEC;
	b->rec.exec = m;
	return &b->rec;
}

int pbconv_exec_view(const Podsnoop__V1__Exec *m, struct exec_view_buf *b, struct exec_view *v)
{
	const Podsnoop__V1__Task *t = m->task;
	struct exec_event *e = &b->e;
	size_t off = 0;

	if (m->filename.len >= EXEC_FILENAME_MAX || m->n_args > EXEC_ARGC_CAP ||
	    (m->filename.len && memchr(m->filename.data, '\0', m->filename.len)) ||
	    (t && t->comm.len > sizeof(e->comm)))
		return -EINVAL;
	memset(e, 0, offsetof(struct exec_event, buf));
	memset(v, 0, sizeof(*v));
	if (t) {
		e->pid = t->pid;
		e->tid = t->tid;
		e->ppid = t->ppid;
		e->uid = t->uid;
		e->gid = t->gid;
		if (t->comm.len)
			memcpy(e->comm, t->comm.data, t->comm.len);
		e->cgroup_id = t->cgroup_id;
		e->mntns_id = t->mntns_id;
	}
	e->retval = m->retval;
	e->method = exec_method_from_name(m->hook);
	if (m->read_fault)
		e->flags |= EXEC_F_READ_FAULT;
	/* the arguments back to back, each NUL-terminated, as the kernel lays them */
	for (size_t i = 0; i < m->n_args; i++) {
		const ProtobufCBinaryData *a = &m->args[i];

		if (a->len >= 2 * EXEC_ARGS_BYTES_CAP - off ||
		    (a->len && memchr(a->data, '\0', a->len)))
			return -EINVAL;
		if (a->len)
			memcpy(e->buf + off, a->data, a->len);
		e->buf[off + a->len] = '\0';
		off += a->len + 1;
	}
	v->e = e;
	v->pod = pbconv_pod_ref(t, &b->pod);
	v->wall_ns = m->ts_ns;
	v->filename = (const char *)m->filename.data;
	v->filename_len = m->filename.len;
	v->args = e->buf;
	v->args_len = off;
	v->argc = (uint32_t)m->n_args;
	v->args_truncated = m->args_truncated;
	return 0;
}

/* ---- open ---- */

const Podsnoop__V1__Record *pbconv_open(struct pb_open_buf *b, const struct open_view *v)
{
	const struct open_event *e = v->e;
	Podsnoop__V1__Open *m = &b->open;

	podsnoop__v1__open__init(m);
	m->ts_ns = v->wall_ns;
	m->task = pbconv_task(&b->task, e->pid, e->tid, 0, e->uid, 0, e->comm, sizeof(e->comm),
			      e->cgroup_id, e->mntns_id, v->pod);
	m->syscall = (char *)open_syscall_name(e->syscall);
	m->dirfd = e->dirfd;
	m->no_dirfd = !!(e->rflags & OPEN_F_NO_DIRFD);
	m->path.data = (uint8_t *)v->path;
	m->path.len = v->path_len;
	m->path_truncated = v->truncated;
	m->flags = e->flags;
	m->mode = e->mode;
	m->ret = e->ret;
	m->latency_ns = e->latency_ns;
	m->hook = (char *)open_method_name(e->method);
	m->read_fault = !!(e->rflags & OPEN_F_READ_FAULT);

	podsnoop__v1__record__init(&b->rec);
	b->rec.kind_case = PODSNOOP__V1__RECORD__KIND_OPEN;
	b->rec.open = m;
	return &b->rec;
}

int pbconv_open_view(const Podsnoop__V1__Open *m, struct open_view_buf *b, struct open_view *v)
{
	const Podsnoop__V1__Task *t = m->task;
	struct open_event *e = &b->e;

	if (m->path.len >= OPEN_PATH_MAX ||
	    (m->path.len && memchr(m->path.data, '\0', m->path.len)))
		return -EINVAL;
	memset(e, 0, OPEN_EVENT_HDR_SIZE);
	memset(v, 0, sizeof(*v));
	if (t) {
		e->pid = t->pid;
		e->tid = t->tid;
		e->uid = t->uid;
		e->cgroup_id = t->cgroup_id;
		e->mntns_id = t->mntns_id;
		if (copy_chars(e->comm, sizeof(e->comm), &t->comm))
			return -EINVAL;
	}
	e->syscall = (__u16)code_of(open_syscall_name, OPEN_SC_OPEN, OPEN_SC_OPENAT2, m->syscall);
	e->dirfd = m->dirfd;
	e->flags = m->flags;
	e->mode = m->mode;
	e->ret = m->ret;
	e->latency_ns = m->latency_ns;
	e->method = (__u8)code_of(open_method_name, OPEN_M_SYSCALLS, OPEN_M_RAW_SYSCALLS, m->hook);
	e->rflags = (m->no_dirfd ? OPEN_F_NO_DIRFD : 0) | (m->read_fault ? OPEN_F_READ_FAULT : 0) |
		    (m->path_truncated ? OPEN_F_TRUNCATED : 0);
	v->e = e;
	v->pod = pbconv_pod_ref(t, &b->pod);
	v->wall_ns = m->ts_ns;
	v->path = (const char *)bytes_ptr(&m->path);
	v->path_len = m->path.len;
	v->truncated = m->path_truncated;
	return 0;
}

/* ---- bio ---- */

const Podsnoop__V1__Record *pbconv_bio(struct pb_bio_buf *b, const struct bio_view *v)
{
	const struct bio_event *e = v->e;
	Podsnoop__V1__Bio *m = &b->bio;

	podsnoop__v1__bio__init(m);
	m->ts_ns = v->wall_ns;
	m->task = pbconv_task(&b->task, e->pid, e->tid, 0, 0, 0, e->comm, sizeof(e->comm),
			      e->cgroup_id, e->mntns_id, v->pod);
	m->disk.data = (uint8_t *)v->disk;
	m->disk.len = v->disk_len;
	dev_split(e->dev, &m->dev_major, &m->dev_minor);
	m->op = (char *)v->op;
	m->sector = e->sector;
	m->bytes = e->bytes;
	m->queued = !!(e->flags & BIO_F_QUEUED);
	m->queue_ns = e->queue_ns;
	m->latency_ns = e->latency_ns;
	m->no_issue = !!(e->flags & BIO_F_NO_ISSUE);
	m->status = e->status;
	m->attribution = (char *)bio_attrib_name(e->attribution);
	m->blkcg_id = e->blkcg_id;
	m->blkcg_v1 = !!(e->flags & BIO_F_BLKCG_V1);
	m->merged = !!(e->flags & BIO_F_MERGED);
	m->hook = (char *)bio_method_name(e->method);

	podsnoop__v1__record__init(&b->rec);
	b->rec.kind_case = PODSNOOP__V1__RECORD__KIND_BIO;
	b->rec.bio = m;
	return &b->rec;
}

int pbconv_bio_view(const Podsnoop__V1__Bio *m, struct bio_view_buf *b, struct bio_view *v)
{
	const Podsnoop__V1__Task *t = m->task;
	struct bio_event *e = &b->e;

	memset(e, 0, sizeof(*e));
	memset(v, 0, sizeof(*v));
	if (m->bytes > UINT32_MAX || strlen(m->op) >= sizeof(v->op) ||
	    copy_chars(e->disk, sizeof(e->disk), &m->disk) ||
	    dev_join(m->dev_major, m->dev_minor, &e->dev))
		return -EINVAL;
	if (t) {
		e->pid = t->pid;
		e->tid = t->tid;
		e->cgroup_id = t->cgroup_id;
		e->mntns_id = t->mntns_id;
		if (copy_chars(e->comm, sizeof(e->comm), &t->comm))
			return -EINVAL;
	}
	e->sector = m->sector;
	e->bytes = (__u32)m->bytes;
	e->queue_ns = m->queue_ns;
	e->latency_ns = m->latency_ns;
	e->status = m->status;
	e->attribution = (__u8)code_of(bio_attrib_name, BIO_A_NONE, BIO_A_BLKCG, m->attribution);
	e->blkcg_id = m->blkcg_id;
	e->method = (__u8)code_of(bio_method_name, BIO_M_IO_START, BIO_M_GETRQ_RAW, m->hook);
	e->flags = (m->queued ? BIO_F_QUEUED : 0) | (m->no_issue ? BIO_F_NO_ISSUE : 0) |
		   (m->blkcg_v1 ? BIO_F_BLKCG_V1 : 0) | (m->merged ? BIO_F_MERGED : 0);
	v->e = e;
	v->pod = pbconv_pod_ref(t, &b->pod);
	v->wall_ns = m->ts_ns;
	v->disk = e->disk;
	v->disk_len = m->disk.len;
	snprintf(v->op, sizeof(v->op), "%s", m->op);
	return 0;
}

/* ---- bio_hist ---- */

const Podsnoop__V1__Record *pbconv_bio_hist(struct pb_bio_hist_buf *b,
					    const struct bio_hist_view *v)
{
	Podsnoop__V1__BioHist *m = &b->hist;
	size_t n = 0;

	podsnoop__v1__bio_hist__init(m);
	m->ts_ns = v->wall_ns;
	m->task = pbconv_task(&b->task, 0, 0, 0, 0, 0, NULL, 0, v->cgroup_id, 0, v->pod);
	m->interval_ns = v->interval_ns;
	m->disk.data = (uint8_t *)v->disk;
	m->disk.len = v->disk_len;
	dev_split(v->dev, &m->dev_major, &m->dev_minor);
	m->op = (char *)v->op;
	m->unit = "usecs";
	for (unsigned int i = 0; i < BIO_HIST_SLOTS; i++) {
		Podsnoop__V1__BioHist__Bucket *k = &b->buckets[n];

		if (!v->slots[i])
			continue;
		podsnoop__v1__bio_hist__bucket__init(k);
		bio_hist_bounds(i, &k->lower, &k->upper);
		if (i == BIO_HIST_SLOTS - 1)
			k->upper = 0; /* open-ended */
		k->count = v->slots[i];
		b->bucket_ptrs[n++] = k;
	}
	m->n_buckets = n;
	m->buckets = b->bucket_ptrs;
	m->count = v->count;
	m->sum_ns = v->sum_ns;
	m->merged = v->merged;

	podsnoop__v1__record__init(&b->rec);
	b->rec.kind_case = PODSNOOP__V1__RECORD__KIND_BIO_HIST;
	b->rec.bio_hist = m;
	return &b->rec;
}

int pbconv_bio_hist_view(const Podsnoop__V1__BioHist *m, struct bio_hist_view_buf *b,
			 struct bio_hist_view *v)
{
	memset(b->slots, 0, sizeof(b->slots));
	memset(v, 0, sizeof(*v));
	if (strcmp(m->unit, "usecs") || strlen(m->op) >= sizeof(b->op) ||
	    dev_join(m->dev_major, m->dev_minor, &v->dev))
		return -EINVAL;
	/* each bucket must be one of the agent's, given once */
	for (size_t j = 0; j < m->n_buckets; j++) {
		const Podsnoop__V1__BioHist__Bucket *k = m->buckets[j];
		unsigned int i;
		uint64_t lo, hi;

		for (i = 0; i < BIO_HIST_SLOTS; i++) {
			bio_hist_bounds(i, &lo, &hi);
			if (lo == k->lower)
				break;
		}
		if (i == BIO_HIST_SLOTS || b->slots[i] || !k->count ||
		    k->upper != (i == BIO_HIST_SLOTS - 1 ? 0 : hi))
			return -EINVAL;
		b->slots[i] = k->count;
	}
	snprintf(b->op, sizeof(b->op), "%s", m->op);
	v->cgroup_id = m->task ? m->task->cgroup_id : 0;
	v->pod = pbconv_pod_ref(m->task, &b->pod);
	v->wall_ns = m->ts_ns;
	v->interval_ns = m->interval_ns;
	v->disk = (const char *)bytes_ptr(&m->disk);
	v->disk_len = m->disk.len;
	v->op = b->op;
	v->slots = b->slots;
	v->count = m->count;
	v->sum_ns = m->sum_ns;
	v->merged = m->merged;
	return 0;
}

/* ---- fs ---- */

const Podsnoop__V1__Record *pbconv_fs(struct pb_fs_buf *b, const struct fs_view *v)
{
	const struct fs_event *e = v->e;
	Podsnoop__V1__Fs *m = &b->fs;

	podsnoop__v1__fs__init(m);
	m->ts_ns = v->wall_ns;
	m->task = pbconv_task(&b->task, e->pid, e->tid, 0, 0, 0, e->comm, sizeof(e->comm),
			      e->cgroup_id, e->mntns_id, v->pod);
	m->op = (char *)fs_op_name(e->op);
	m->ret = e->ret;
	m->offset = e->offset;
	m->size = e->size;
	m->latency_ns = e->latency_ns;
	m->file.data = (uint8_t *)v->name;
	m->file.len = v->name_len;
	m->path.data = (uint8_t *)v->path;
	m->path.len = v->path_len;
	m->path_truncated = v->path_truncated;
	m->fstype = (char *)fs_type_name(e->fs);
	dev_split(e->dev, &m->dev_major, &m->dev_minor);
	m->ino = e->ino;
	m->datasync = !!(e->flags & FS_F_DATASYNC);
	m->overlay = !!(e->flags & FS_F_OVERLAY);
	m->read_fault = !!(e->flags & FS_F_READ_FAULT);
	m->hook = (char *)fs_method_name(e->method);

	podsnoop__v1__record__init(&b->rec);
	b->rec.kind_case = PODSNOOP__V1__RECORD__KIND_FS;
	b->rec.fs = m;
	return &b->rec;
}

int pbconv_fs_view(const Podsnoop__V1__Fs *m, struct fs_view_buf *b, struct fs_view *v)
{
	const Podsnoop__V1__Task *t = m->task;
	struct fs_event *e = &b->e;

	memset(e, 0, FS_EVENT_HDR_SIZE);
	memset(v, 0, sizeof(*v));
	e->op = code_of(fs_op_name, FS_OP_READ, FS_OP_MAX - 1, m->op);
	e->fs = code_of(fs_type_name, 0, FS_T_MAX - 1, m->fstype);
	/* the writer names ops and types from tables: refuse what they do not hold */
	if (!e->op || strcmp(fs_type_name(e->fs), m->fstype) ||
	    m->path.len > FS_PATH_MAX + FS_NAME_MAX || m->file.len > m->path.len ||
	    dev_join(m->dev_major, m->dev_minor, &e->dev))
		return -EINVAL;
	if (t) {
		e->pid = t->pid;
		e->tid = t->tid;
		e->cgroup_id = t->cgroup_id;
		e->mntns_id = t->mntns_id;
		if (copy_chars(e->comm, sizeof(e->comm), &t->comm))
			return -EINVAL;
	}
	e->ret = m->ret;
	e->offset = m->offset;
	e->size = m->size;
	e->latency_ns = m->latency_ns;
	e->ino = m->ino;
	e->method = code_of(fs_method_name, FS_M_FENTRY, FS_M_RAW_SYSCALLS, m->hook);
	e->flags = (m->datasync ? FS_F_DATASYNC : 0) | (m->overlay ? FS_F_OVERLAY : 0) |
		   (m->read_fault ? FS_F_READ_FAULT : 0) |
		   (m->path_truncated ? FS_F_PATH_TRUNCATED : 0);
	v->e = e;
	v->pod = pbconv_pod_ref(t, &b->pod);
	v->wall_ns = m->ts_ns;
	v->path = (const char *)bytes_ptr(&m->path);
	v->path_len = m->path.len;
	v->name = (const char *)bytes_ptr(&m->file);
	v->name_len = m->file.len;
	v->path_truncated = m->path_truncated;
	return 0;
}

/* ---- cache ---- */

const Podsnoop__V1__Record *pbconv_cache(struct pb_cache_buf *b, const struct cache_view *v)
{
	Podsnoop__V1__Cache *m = &b->cache;

	podsnoop__v1__cache__init(m);
	m->ts_ns = v->wall_ns;
	m->task = pbconv_task(&b->task, 0, 0, 0, 0, 0, NULL, 0, v->cgroup_id, v->mntns_id, v->pod);
	m->interval_ns = v->interval_ns;
	m->accesses_known = v->accesses_known;
	m->accesses = v->accesses;
	m->hits = v->hits;
	m->misses = v->misses;
	m->dirtied = v->dirtied;
	m->hit_ratio_known = v->ratio_known;
	m->hit_ratio = v->hit_ratio;
	m->estimated = v->estimated;
	m->pages_added = v->added;
	m->buffers_dirtied = v->buf_dirtied;
	m->host_buffers_kb = v->host_buffers_kb;
	m->host_cached_kb = v->host_cached_kb;
	m->hook = (char *)cache_method_name(v->method);

	podsnoop__v1__record__init(&b->rec);
	b->rec.kind_case = PODSNOOP__V1__RECORD__KIND_CACHE;
	b->rec.cache = m;
	return &b->rec;
}

int pbconv_cache_view(const Podsnoop__V1__Cache *m, struct cache_view_buf *b,
		      struct cache_view *v)
{
	memset(v, 0, sizeof(*v));
	v->wall_ns = m->ts_ns;
	v->interval_ns = m->interval_ns;
	v->cgroup_id = m->task ? m->task->cgroup_id : 0;
	v->mntns_id = m->task ? m->task->mntns_id : 0;
	v->pod = pbconv_pod_ref(m->task, &b->pod);
	v->method = code_of(cache_method_name, CACHE_M_FENTRY, CACHE_M_TRACEPOINT, m->hook);
	v->accesses_known = m->accesses_known;
	v->estimated = m->estimated;
	v->ratio_known = m->hit_ratio_known;
	v->accesses = m->accesses;
	v->hits = m->hits;
	v->misses = m->misses;
	v->dirtied = m->dirtied;
	v->added = m->pages_added;
	v->buf_dirtied = m->buffers_dirtied;
	v->hit_ratio = m->hit_ratio;
	v->host_buffers_kb = m->host_buffers_kb;
	v->host_cached_kb = m->host_cached_kb;
	return 0;
}
