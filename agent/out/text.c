// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Text output: execsnoop-style columns for a terminal. */
#include <string.h>
#include <time.h>

#include "agent/out/output.h"

/* Print bytes with anything unprintable escaped, so a line stays one line. */
static void put_escaped(FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\\')
			fputs("\\\\", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			putc_unlocked(c, f);
	}
}

static void put_time(FILE *f, uint64_t wall_ns)
{
	time_t secs = (time_t)(wall_ns / 1000000000ull);
	struct tm tm;
	char buf[16];

	localtime_r(&secs, &tm);
	strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
	fputs(buf, f);
}

static bool header_done;

/* NAMESPACE POD CONTAINER: "-" when unknown; a container known only by its id shows the id */
static void put_k8s(FILE *f, const struct pod_ref *p)
{
	const char *ns = p && p->namespace_[0] ? p->namespace_ : "-";
	const char *pod = p && p->pod[0] ? p->pod : "-";
	const char *ctr = p && p->container[0] ? p->container : "-";

	if (p && !p->container[0] && p->container_id[0])
		fprintf(f, "%-12s %-24s %-12.12s ", ns, pod, p->container_id);
	else
		fprintf(f, "%-12s %-24s %-12s ", ns, pod, ctr);
}

static void text_exec(void *priv, const struct exec_view *v)
{
	const struct exec_event *e = v->e;
	const char *a = v->args;
	FILE *f = priv;

	if (!header_done) {
		fprintf(f, "%-8s %-12s %-24s %-12s %-16s %-7s %-7s %4s %s\n", "TIME", "NAMESPACE",
			"POD", "CONTAINER", "PCOMM", "PID", "PPID", "RET", "ARGS");
		header_done = true;
	}
	put_time(f, v->wall_ns);
	putc_unlocked(' ', f);
	put_k8s(f, v->pod);
	fprintf(f, "%-16.16s %-7u %-7u %4d ", e->comm, e->pid, e->ppid, e->retval);
	if (!v->argc) /* execve(path, NULL, ...): show what ran */
		put_escaped(f, v->filename, v->filename_len);
	for (uint32_t i = 0; i < v->argc; i++) {
		size_t n = strlen(a);

		if (i)
			putc_unlocked(' ', f);
		put_escaped(f, a, n);
		a += n + 1;
	}
	if (v->args_truncated)
		fputs(" ...", f);
	putc_unlocked('\n', f);
}

/* "namespace/pod" when attribution knows the pod, else the cgroup id. */
static void put_owner(FILE *f, const struct pod_ref *pod, uint64_t cgroup_id)
{
	if (pod && pod->pod && pod->pod[0])
		fprintf(f, "%s/%s", pod->namespace_ ? pod->namespace_ : "", pod->pod);
	else
		fprintf(f, "cgroup:%llu", (unsigned long long)cgroup_id);
}

static bool open_header_done, bio_header_done;

/* opensnoop's columns: FD is -1 and ERR the errno for a failed open */
static void text_open(void *priv, const struct open_view *v)
{
	const struct open_event *e = v->e;
	FILE *f = priv;

	if (!open_header_done) {
		fprintf(f, "%-8s %-7s %-16s %4s %3s %9s %s\n", "TIME", "PID", "COMM", "FD", "ERR",
			"LAT(us)", "PATH");
		open_header_done = true;
	}
	put_time(f, v->wall_ns);
	fprintf(f, " %-7u %-16.16s %4d %3d %9.1f ", e->pid, e->comm, e->ret >= 0 ? e->ret : -1,
		e->ret >= 0 ? 0 : -e->ret, (double)e->latency_ns / 1e3);
	put_escaped(f, v->path, v->path_len);
	if (v->truncated)
		fputs(" ...", f);
	putc_unlocked('\n', f);
}

/* biosnoop's columns, with the queue time (-Q) and the owner of the I/O */
static void text_bio(void *priv, const struct bio_view *v)
{
	const struct bio_event *e = v->e;
	FILE *f = priv;

	if (!bio_header_done) {
		fprintf(f, "%-8s %-16s %-7s %-8s %-4s %-12s %-8s %8s %8s %s\n", "TIME", "COMM", "PID",
			"DISK", "T", "SECTOR", "BYTES", "QUE(ms)", "LAT(ms)", "OWNER");
		bio_header_done = true;
	}
	put_time(f, v->wall_ns);
	fprintf(f, " %-16.16s %-7u ", e->comm[0] ? e->comm : "?", e->pid);
	put_escaped(f, v->disk, v->disk_len);
	fprintf(f, "%*s %-4s %-12llu %-8u ", v->disk_len < 8 ? (int)(8 - v->disk_len) : 0, "",
		v->op, (unsigned long long)e->sector, e->bytes);
	if (e->flags & BIO_F_QUEUED) /* "-": went to the driver without being queued */
		fprintf(f, "%8.3f ", (double)e->queue_ns / 1e6);
	else
		fprintf(f, "%8s ", "-");
	fprintf(f, "%8.3f ", (double)e->latency_ns / 1e6);
	put_owner(f, v->pod, e->cgroup_id);
	fprintf(f, " (%s)\n", bio_attrib_name(e->attribution));
}

static void put_stars(FILE *f, uint64_t val, uint64_t max, int width)
{
	int n = max ? (int)((val < max ? val : max) * (uint64_t)width / max) : 0;

	for (int i = 0; i < width; i++)
		putc_unlocked(i < n ? '*' : ' ', f);
}

/* biolatency's table, one per cgroup (or pod), disk and op */
static void text_bio_hist(void *priv, const struct bio_hist_view *v)
{
	unsigned int i, last = 0;
	uint64_t lo, hi, max = 0;
	FILE *f = priv;

	for (i = 0; i < BIO_HIST_SLOTS; i++) {
		if (v->slots[i])
			last = i;
		if (v->slots[i] > max)
			max = v->slots[i];
	}
	fputc('\n', f);
	put_time(f, v->wall_ns);
	fputs(" ", f);
	put_owner(f, v->pod, v->cgroup_id);
	fputs(" disk ", f);
	put_escaped(f, v->disk, v->disk_len);
	fprintf(f, " (%u:%u) op %s: %llu requests in %.1f s, avg %.1f us\n", v->dev >> 20,
		v->dev & 0xfffff, v->op, (unsigned long long)v->count, (double)v->interval_ns / 1e9,
		v->count ? (double)v->sum_ns / 1e3 / (double)v->count : 0.0);
	fprintf(f, "%*s%-*s : count    distribution\n", 5, "", 19, "usecs");
	for (i = 0; i <= last; i++) {
		bio_hist_bounds(i, &lo, &hi);
		fprintf(f, "%*llu -> %-*llu : %-8llu |", 10, (unsigned long long)lo, 10,
			(unsigned long long)hi, (unsigned long long)v->slots[i]);
		put_stars(f, v->slots[i], max, 40);
		fputs("|\n", f);
	}
}

static bool fs_header_done, cache_header_done;

/* ext4slower's columns; T is R(ead), W(rite), O(pen) or S(ync). */
static void text_fs(void *priv, const struct fs_view *v)
{
	static const char op_letter[FS_OP_MAX] = { '?', 'R', 'W', 'O', 'S' };
	const struct fs_event *e = v->e;
	FILE *f = priv;
	long long bytes = (e->op == FS_OP_READ || e->op == FS_OP_WRITE) ? e->ret : 0;

	if (!fs_header_done) {
		fprintf(f, "%-8s %-14s %-7s %1s %-7s %-8s %7s %s\n", "TIME", "COMM", "PID", "T",
			"BYTES", "OFF_KB", "LAT(ms)", "FILENAME");
		fs_header_done = true;
	}
	put_time(f, v->wall_ns);
	fprintf(f, " %-14.14s %-7u %c %-7lld %-8llu %7.2f ", e->comm, e->pid,
		e->op < FS_OP_MAX ? op_letter[e->op] : '?', bytes,
		(unsigned long long)(e->offset / 1024), (double)e->latency_ns / 1e6);
	put_escaped(f, v->name, v->name_len);
	fputs("  ", f);
	put_owner(f, v->pod, e->cgroup_id);
	putc_unlocked('\n', f);
}

/* cachestat's columns, one row per pod (cgroup) per interval. */
static void text_cache(void *priv, const struct cache_view *v)
{
	const char *est = v->estimated ? "~" : "";
	char hits[32] = "-", ratio[32] = "-";
	FILE *f = priv;

	if (!cache_header_done) {
		if (v->estimated)
			fprintf(f, "# HITS and HITRATIO marked ~ are estimates (%s method: no hook on "
				   "folio_mark_accessed here)\n",
				cache_method_name(v->method));
		fprintf(f, "%-8s %8s %8s %8s %8s %12s %10s  %s\n", "TIME", "HITS", "MISSES",
			"DIRTIES", "HITRATIO", "BUFFERS_MB", "CACHED_MB", "POD");
		cache_header_done = true;
	}
	/* an estimate reads "~123", right-aligned like the rest */
	if (v->accesses_known)
		snprintf(hits, sizeof(hits), "%s%llu", est, (unsigned long long)v->hits);
	if (v->ratio_known)
		snprintf(ratio, sizeof(ratio), "%s%.2f%%", est, v->hit_ratio * 100.0);
	put_time(f, v->wall_ns);
	fprintf(f, " %8s %8llu %8llu %8s", hits, (unsigned long long)v->misses,
		(unsigned long long)v->dirtied, ratio);
	fprintf(f, " %12llu %10llu  ", (unsigned long long)(v->host_buffers_kb / 1024),
		(unsigned long long)(v->host_cached_kb / 1024));
	put_owner(f, v->pod, v->cgroup_id);
	putc_unlocked('\n', f);
}

static void text_loss(void *priv, const struct loss_rec *l)
{
	if (!l->has_cgroup) {
		fprintf(priv, "# LOST %llu %s events (%s), %llu since start\n",
			(unsigned long long)l->count, l->tracer, l->stage,
			(unsigned long long)l->total);
		return;
	}
	fprintf(priv, "# LOST %llu %s events (%s), %llu since start, of ",
		(unsigned long long)l->count, l->tracer, l->stage, (unsigned long long)l->total);
	put_owner(priv, l->pod, l->cgroup_id);
	putc_unlocked('\n', priv);
}

static void text_flush(void *priv)
{
	fflush(priv);
}

const struct sink_ops text_sink = {
	.exec = text_exec,
	.open = text_open,
	.bio = text_bio,
	.bio_hist = text_bio_hist,
	.loss = text_loss,
	.fs = text_fs,
	.cache = text_cache,
	.flush = text_flush,
};
