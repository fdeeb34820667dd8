// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The collector's output (collector.h): each batch goes into --out as one
 * unit (its batch line, records and losses), committed or cut back to the
 * last whole one; and at start, the batches an earlier run left there.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "collector/clickhouse.h"
#include "collector/collector.h"
#include "lib/jsonw.h"
#include "lib/ndjson.h"
#include "lib/pbconv.h"

static void write_batch_line(const Podsnoop__V1__Batch *b, size_t bytes, uint64_t skipped)
{
	const Podsnoop__V1__Agent *a = b->agent;
	struct jw w;

	jw_begin(&w, out);
	jw_cstr(&w, "type", "batch");
	jw_u64(&w, "ts_ns", b->sent_ns);
	jw_cstr(&w, "node", a->node);
	jw_cstr(&w, "agent_id", a->agent_id);
	jw_cstr(&w, "version", a->version);
	jw_cstr(&w, "kernel", a->kernel);
	jw_u64(&w, "started_ns", a->started_ns);
	jw_u64(&w, "seq", b->seq);
	jw_u64(&w, "records", b->n_records);
	jw_u64(&w, "losses", b->n_losses);
	jw_u64(&w, "bytes", bytes);
	if (skipped)
		jw_u64(&w, "skipped", skipped);
	jw_end(&w);
}

/*
 * The agent's loss record plus the reason (ndjson.c's loss lines carry no
 * reason: the agent's own stages do not have one).
 */
void write_loss(FILE *f, const Podsnoop__V1__Loss *l, uint64_t ts_ns)
{
	struct jw w;

	jw_begin(&w, f);
	jw_cstr(&w, "type", "loss");
	jw_u64(&w, "ts_ns", ts_ns);
	jw_cstr(&w, "tracer", l->tracer);
	jw_cstr(&w, "stage", l->stage);
	if (*l->reason)
		jw_cstr(&w, "reason", l->reason);
	jw_u64(&w, "count", l->count);
	jw_u64(&w, "total", l->total);
	if (l->task) { /* a cgroup's loss (rate_limited), as the agent's NDJSON says it */
		struct pod_ref pod;

		jw_u64(&w, "cgroup_id", l->task->cgroup_id);
		ndjson_k8s(&w, pbconv_pod_ref(l->task, &pod));
	}
	jw_end(&w);
}

static bool reject_seq(uint64_t seq)
{
	for (int i = 0; i < opt.n_reject_seq; i++)
		if (opt.reject_seq[i] == seq)
			return true;
	return false;
}

bool stall(const char *when)
{
	bool now = false;

	pthread_mutex_lock(&mu);
	if (opt.stall_count > 0 && !strcmp(when, "after") == opt.stall_after_write) {
		opt.stall_count--;
		now = true;
	}
	pthread_mutex_unlock(&mu);
	if (now) {
		log_info("fault: stalling %ld ms (%s writing)", opt.stall_ms, when);
		usleep((useconds_t)opt.stall_ms * 1000);
	}
	return now;
}

/* --save-bodies: keep the body as received, for other decoders to read. */
static void save_body(const char *agent_id, uint64_t seq, const uint8_t *body, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s-%020" PRIu64 ".pb%s", opt.save_dir, agent_id, seq,
		 len >= 2 && body[0] == 0x1f && body[1] == 0x8b ? ".gz" : "");
	f = fopen(path, "wb");
	if (!f || fwrite(body, 1, len, f) != len)
		log_err("--save-bodies: %s: %s", path, strerror(errno));
	if (f)
		fclose(f);
}

/*
 * Everything written since the last call reaches --out (and the disk, with
 * --fsync), or none of it stays: on a failed write or sync the file is cut
 * back to the end of the last whole unit. Call with mu held. 0 or -errno.
 */
static int out_commit(void)
{
	int err = 0;
	struct stat sb;

	if (fflush(out) == EOF || ferror(out))
		err = errno ? -errno : -EIO;
	else if (opt.fsync && fdatasync(fileno(out)) && errno != EINVAL && errno != EROFS)
		err = -errno; /* (a pipe cannot be synced) */
	if (!err) {
		if (out_good >= 0 && !fstat(fileno(out), &sb))
			out_good = sb.st_size;
		return 0;
	}
	__fpurge(out); /* what stdio still holds must not come out later */
	clearerr(out);
	if (out_good >= 0 && ftruncate(fileno(out), out_good))
		log_err("cannot cut %s back to its last whole batch: %s", opt.out_path,
			strerror(errno));
	return err;
}

/* Before a unit: errno tells out_commit() why stdio failed, if it does. */
static void out_begin(void)
{
	errno = 0;
}

static void write_rejected(const Podsnoop__V1__Batch *b)
{
	struct jw w;
	int err;

	out_begin();
	jw_begin(&w, out);
	jw_cstr(&w, "type", "rejected");
	jw_cstr(&w, "agent_id", b->agent->agent_id);
	jw_u64(&w, "seq", b->seq);
	jw_u64(&w, "records", b->n_records);
	jw_u64(&w, "status", 400);
	jw_end(&w);
	err = out_commit();
	if (err)
		log_err("%s: cannot write: %s", opt.out_path ? opt.out_path : "stdout",
			strerror(-err));
}

/* The batch line, the records and the losses, as one unit. Call with mu held. */
static int write_batch(struct req *r, size_t bytes, uint64_t *lost)
{
	const Podsnoop__V1__Batch *b = r->batch;

	out_begin();
	write_batch_line(b, bytes, r->skipped);
	request_write_records(r, out);
	*lost = 0;
	for (size_t i = 0; i < b->n_losses; i++) {
		write_loss(out, b->losses[i], b->sent_ns);
		*lost += b->losses[i]->count;
	}
	return out_commit();
}

/*
 * One line when ClickHouse starts failing, one when it takes batches again
 * (with how long and how many were answered 503): an outage is two lines,
 * not one per batch. err 0: this batch went in.
 */
static void ch_outage(int err, const char *why)
{
	static bool down;
	static struct timespec since;
	static uint64_t refused;
	struct timespec now;

	if (err == -EAGAIN) /* the collector's own pool: logged as busy */
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&mu);
	if (err && !down) {
		down = true;
		st.ch_down = true;
		st.ch_outages++;
		since = now;
		refused = 1;
		log_err("ClickHouse outage: %s; answering 503 with Retry-After until it takes "
			"batches again", why);
	} else if (err) {
		refused++;
	} else if (down) {
		down = false;
		st.ch_down = false;
		log_info("ClickHouse outage over after %.1f s: %" PRIu64 " batches were answered "
			 "503 (agents send them again)", (double)(now.tv_sec - since.tv_sec) +
			 (now.tv_nsec - since.tv_nsec) / 1e9, refused);
	}
	pthread_mutex_unlock(&mu);
}

/* A failed write, logged at most every 10 s with the count in between. */
static void log_write_failed(int err)
{
	static time_t last;
	static uint64_t since;
	time_t now = time(NULL);

	since++;
	if (now - last < 10)
		return;
	log_err("%s: cannot write a batch: %s; answered 503 and kept nothing of it (%" PRIu64
		" batches since the last message): agents send them again", opt.out_path ?
		opt.out_path : "stdout", strerror(-err), since);
	last = now;
	since = 0;
}

unsigned process(struct req *r, const uint8_t *body, size_t len, bool gzipped,
		 long *retry_after)
{
	const Podsnoop__V1__Batch *b;
	uint64_t lost = 0;
	unsigned status;
	int err;

	status = request_decode(r, body, len, gzipped);
	if (status == 503) {
		*retry_after = RETRY_BUSY_S;
		pthread_mutex_lock(&mu);
		st.busy++;
		pthread_mutex_unlock(&mu);
	}
	if (status != 200)
		return status;
	b = r->batch;
	if (reject_seq(b->seq)) {
		snprintf(r->msg, sizeof(r->msg), "batch %" PRIu64 " rejected by --reject-seq (%zu "
			 "records)", b->seq, b->n_records);
		pthread_mutex_lock(&mu);
		if (out)
			write_rejected(b); /* what was refused, for tests to count exactly */
		st.rejected++;
		pthread_mutex_unlock(&mu);
		return 400;
	}

	pthread_mutex_lock(&mu);
	if (dedup_seen(&seen, b->agent->agent_id, b->seq)) {
		st.duplicates++;
		pthread_mutex_unlock(&mu);
		log_debug("agent %s batch %" PRIu64 ": duplicate, dropped", b->agent->agent_id, b->seq);
		snprintf(r->msg, sizeof(r->msg), "duplicate");
		return 200;
	}
	pthread_mutex_unlock(&mu);
	if (opt.save_dir)
		save_body(b->agent->agent_id, b->seq, body, len);
	/*
	 * ClickHouse first, without the lock (inserts of many agents at once):
	 * when --out fails after it, the agent's retry replaces its rows there
	 * (ReplacingMergeTree), so nothing is doubled and nothing is lost.
	 */
	if (opt.ch_url) {
		char why[sizeof(r->msg) - 64];

		err = ch_write_batch(r, len, why, sizeof(why));
		ch_outage(err, why);
		if (err) {
			snprintf(r->msg, sizeof(r->msg), "cannot write the batch to ClickHouse: %s; "
				 "send it again later", why);
			*retry_after = err == -EAGAIN ? RETRY_BUSY_S : RETRY_CH_S;
			pthread_mutex_lock(&mu);
			if (err == -EAGAIN)
				st.busy++;
			else
				st.ch_failed++;
			pthread_mutex_unlock(&mu);
			return 503;
		}
	}
	pthread_mutex_lock(&mu);
	/* another request may have written it meanwhile (sent twice at once) */
	if (out && dedup_seen(&seen, b->agent->agent_id, b->seq)) {
		st.duplicates++;
		pthread_mutex_unlock(&mu);
		snprintf(r->msg, sizeof(r->msg), "duplicate");
		return 200;
	}
	err = out ? write_batch(r, len, &lost) : 0;
	if (!out)
		for (size_t i = 0; i < b->n_losses; i++)
			lost += b->losses[i]->count;
	if (err) {
		st.write_failed++;
		log_write_failed(err);
		pthread_mutex_unlock(&mu);
		snprintf(r->msg, sizeof(r->msg), "cannot write the batch: %s; send it again later",
			 strerror(-err));
		*retry_after = RETRY_DISK_S;
		return 503;
	}
	err = dedup_mark(&seen, b->agent->agent_id, b->seq);
	if (err)
		log_err("dedup: %s", strerror(-err));
	st.batches++;
	st.records += b->n_records - r->skipped;
	st.skipped += r->skipped;
	st.bytes += len;
	st.raw_bytes += r->raw_len;
	st.lost += lost;
	pthread_mutex_unlock(&mu);
	if (r->skipped)
		log_warn("agent %s batch %" PRIu64 ": %" PRIu64 " records of kinds this collector "
			 "does not know, skipped (a newer agent?)", b->agent->agent_id, b->seq,
			 r->skipped);
	log_debug("agent %s batch %" PRIu64 ": %zu records, %zu losses, %zu bytes",
		  b->agent->agent_id, b->seq, b->n_records, b->n_losses, len);
	snprintf(r->msg, sizeof(r->msg), "ok");
	return 200;
}

/*
 * Batches already in the output file count as seen (a restarted collector).
 * A unit the last run did not finish (killed while writing: a partial
 * line, or a batch with fewer lines than it announced) is cut off, so the
 * agent's retry of that batch is written whole. Returns the batches marked,
 * or -errno.
 */
int load_seen(const char *path)
{
	FILE *f = fopen(path, "r+");
	char *line = NULL, *p, id[DEDUP_ID_MAX + 1];
	unsigned long long seq = 0, recs, losses, skipped;
	uint64_t pending = 0;		/* lines the batch at `unit` still owes */
	off_t pos = 0, unit = 0;	/* where the next line and that batch begin */
	size_t cap = 0;
	ssize_t len;
	int n = 0, err = 0;

	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while ((len = getline(&line, &cap, f)) > 0 && line[len - 1] == '\n') {
		pos += len;
		if (pending) {
			if (!--pending && !dedup_mark(&seen, id, seq))
				n++;
			continue;
		}
		/* our own batch lines: {"type":"batch",...,"agent_id":"...",...,"seq":N,... */
		if (strncmp(line, "{\"type\":\"batch\",", 16))
			continue;
		p = strstr(line, ",\"agent_id\":\"");
		if (!p || sscanf(p, ",\"agent_id\":\"%64[0-9a-zA-Z_-]\"", id) != 1)
			continue;
		p = strstr(line, ",\"seq\":");
		if (!p || sscanf(p, ",\"seq\":%llu", &seq) != 1)
			continue;
		recs = losses = skipped = 0;
		if ((p = strstr(line, ",\"records\":")))
			sscanf(p, ",\"records\":%llu", &recs);
		if ((p = strstr(line, ",\"losses\":")))
			sscanf(p, ",\"losses\":%llu", &losses);
		if ((p = strstr(line, ",\"skipped\":")))
			sscanf(p, ",\"skipped\":%llu", &skipped);
		/* seen once its lines are all there */
		unit = pos - len;
		pending = recs - (skipped < recs ? skipped : recs) + losses;
		if (!pending && !dedup_mark(&seen, id, seq))
			n++;
	}
	if (pending || len > 0) { /* a run stopped while writing */
		off_t keep = pending ? unit : pos;
		struct stat sb;

		if (!fstat(fileno(f), &sb))
			log_warn("%s: cut off its last %lld bytes, an unfinished %s", path,
				 (long long)(sb.st_size - keep), pending ? "batch" : "line");
		if (ftruncate(fileno(f), keep))
			err = -errno;
	}
	free(line);
	fclose(f);
	return err ? err : n;
}
