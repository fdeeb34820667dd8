// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <string.h>

#include "pbconv.h"

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

/* ---- exec ---- */

static uint32_t exec_method_from_name(const char *name)
{
	for (uint32_t m = EXEC_M_SYSCALLS; m <= EXEC_M_SCHED_RAW; m++)
		if (strcmp(exec_method_name(m), name) == 0)
			return m;
	return 0;
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
