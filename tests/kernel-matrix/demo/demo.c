// SPDX-License-Identifier: GPL-2.0
/*
 * km-demo: proves the eBPF chain inside a kernel-matrix guest (or on any host).
 *
 * For each hook kind it loads one program of demo.bpf.o (the others have autoload off),
 * attaches it, makes real activity and reads the program's counters:
 *   a child moved into a fresh cgroup2 child cgroup opens KM_MARKER 5 times and execs
 *   `dd ... oflag=direct` onto the disk dir; this process, outside that cgroup, opens
 *   KM_MARKER 3 times and execs `true`.
 * Every program filters in the kernel by bpf_get_current_cgroup_id() == cfg map value.
 * Prints one line per check:  KM-CHECK <name> ok|fail|unsupported <detail>
 *   unsupported = the kernel refused the hook with an error meaning "not here"
 *                 (ESRCH, ENOENT, EOPNOTSUPP, ENOTSUPP, EPERM); fail = anything else.
 * Exit: 0 if no check failed, 1 if one did, 2 on a setup error.
 *
 * Usage: km-demo [--obj demo.bpf.o] [--disk DIR] [--cgroup2 DIR] [--verbose]
 *   --disk defaults to $KM_DISK or /mnt, --cgroup2 to $KM_CGROUP2 or the first cgroup2
 *   mount in /proc/self/mounts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "demo.h"

#define N_IN 5
#define N_OUT 3
#ifndef ENOTSUPP
#define ENOTSUPP 524
#endif

enum activity { ACT_ALL, ACT_OUTSIDE_ONLY };
enum verdict { V_OPENS, V_EXEC, V_BLOCK, V_NEGATIVE };

struct check {
	const char *name;
	const char *prog;
	enum activity act;
	enum verdict verdict;
};

static const struct check checks[] = {
	{ "tracepoint", "tp_openat", ACT_ALL, V_OPENS },
	{ "raw_tp", "raw_sys_enter", ACT_ALL, V_OPENS },
	{ "fentry", "fentry_openat2", ACT_ALL, V_OPENS },
	{ "kprobe", "kprobe_openat2", ACT_ALL, V_OPENS },
	{ "tp_btf_exec", "tpbtf_exec", ACT_ALL, V_EXEC },
	{ "tp_btf_block_rq_issue", "tpbtf_rq_issue", ACT_ALL, V_BLOCK },
	{ "tp_btf_block_io_start", "tpbtf_io_start", ACT_ALL, V_BLOCK },
	{ "cgroup_negative", "tp_openat", ACT_OUTSIDE_ONLY, V_NEGATIVE },
};

static const char *obj_path = "demo.bpf.o";
static const char *disk_dir;
static char cg_root[256], cg_dir[512];
static __u64 cg_id;
static int verbose, io_enabled, nfail;
static char last_libbpf_msg[512];
static char dd_note[640];

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[1024];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = 0;
	if (level <= LIBBPF_WARN && n && !last_libbpf_msg[0] && !strstr(buf, "-- BEGIN")) {
		/* the first warning after a reset is the most telling one for the detail */
		const char *m = strncmp(buf, "libbpf: ", 8) ? buf : buf + 8;

		snprintf(last_libbpf_msg, sizeof(last_libbpf_msg), "%.500s", m);
	}
	if (verbose || (level == LIBBPF_WARN && getenv("KM_DEMO_LIBBPF_WARN")))
		fprintf(stderr, "libbpf: %s\n", buf);
	return 0;
}

static void report(const char *name, const char *status, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	for (char *p = detail; *p; p++) /* one line per check */
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	printf("KM-CHECK %s %s %s\n", name, status, detail);
	if (!strcmp(status, "fail"))
		nfail++;
}

static int find_cgroup2(char *out, size_t len)
{
	FILE *f = fopen("/proc/self/mounts", "r");
	char dev[256], dir[256], type[64];
	int found = 0;

	if (!f)
		return -1;
	while (fscanf(f, "%255s %255s %63s %*[^\n]", dev, dir, type) == 3) {
		if (!strcmp(type, "cgroup2")) {
			snprintf(out, len, "%s", dir);
			found = 1;
			break;
		}
	}
	fclose(f);
	return found ? 0 : -1;
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), r;

	if (fd < 0)
		return -errno;
	r = write(fd, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -errno;
	close(fd);
	return r;
}

static void open_marker(int n)
{
	for (int i = 0; i < n; i++) {
		int fd = open(KM_MARKER, O_RDONLY | O_CLOEXEC);

		if (fd >= 0)
			close(fd);
	}
}

static int run_wait(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Real activity: in-cgroup child (opens, exec of dd O_DIRECT), outside (opens, exec). */
static void activity(enum activity act)
{
	char procs[600], ofarg[512], pid[32];
	pid_t c;
	int rc;

	dd_note[0] = 0;
	if (act == ACT_ALL) {
		c = fork();
		if (c == 0) {
			snprintf(procs, sizeof(procs), "%s/cgroup.procs", cg_dir);
			snprintf(pid, sizeof(pid), "%d", getpid());
			if (write_file(procs, pid))
				_exit(100);
			open_marker(N_IN);
			snprintf(ofarg, sizeof(ofarg), "of=%s/km-demo-dd", disk_dir);
			execlp("dd", "dd", "if=/dev/zero", ofarg, "bs=64k", "count=16",
			       "oflag=direct", "conv=fsync", "status=none", (char *)NULL);
			_exit(101);
		}
		rc = run_wait(c);
		if (rc == 100)
			snprintf(dd_note, sizeof(dd_note), " (child could not join %s)", cg_dir);
		else if (rc)
			snprintf(dd_note, sizeof(dd_note), " (dd to %s exited %d)", disk_dir, rc);
	}
	open_marker(N_OUT);
	if (act == ACT_ALL) {
		c = fork();
		if (c == 0) {
			execlp("true", "true", (char *)NULL);
			_exit(127);
		}
		run_wait(c);
	}
}

static int unsupported_err(int err)
{
	err = err < 0 ? -err : err;
	return err == ESRCH || err == ENOENT || err == EOPNOTSUPP || err == ENOTSUPP ||
	       err == EPERM;
}

static const char *errstr(int err)
{
	static char buf[64];

	err = err < 0 ? -err : err;
	if (err == ENOTSUPP)
		return "ENOTSUPP (524)";
	snprintf(buf, sizeof(buf), "%s", strerror(err));
	return buf;
}

static void run_check(const struct check *ck)
{
	struct bpf_object *obj;
	struct bpf_program *p, *prog = NULL;
	struct bpf_link *link;
	struct km_cfg c = { .cgid = cg_id };
	__u64 v[KM_NCOUNTERS] = { 0 };
	__u32 zero = 0;
	int err, cfd, nfd;

	last_libbpf_msg[0] = 0;
	obj = bpf_object__open_file(obj_path, NULL);
	if (!obj) {
		report(ck->name, "fail", "open %s: %s", obj_path, errstr(errno));
		return;
	}
	bpf_object__for_each_program(p, obj) {
		int me = !strcmp(bpf_program__name(p), ck->prog);

		bpf_program__set_autoload(p, me);
		if (me)
			prog = p;
	}
	if (!prog) {
		report(ck->name, "fail", "no program %s in %s", ck->prog, obj_path);
		goto out;
	}
	err = bpf_object__load(obj);
	if (err) {
		report(ck->name, unsupported_err(err) ? "unsupported" : "fail",
		       "%s: load: %s [libbpf: %s]", bpf_program__section_name(prog), errstr(err),
		       last_libbpf_msg);
		goto out;
	}
	cfd = bpf_object__find_map_fd_by_name(obj, "cfg");
	nfd = bpf_object__find_map_fd_by_name(obj, "counts");
	if (cfd < 0 || nfd < 0 || bpf_map_update_elem(cfd, &zero, &c, BPF_ANY)) {
		report(ck->name, "fail", "maps cfg/counts: %s", errstr(errno));
		goto out;
	}
	link = bpf_program__attach(prog);
	if (!link) {
		err = -errno;
		report(ck->name, unsupported_err(err) ? "unsupported" : "fail",
		       "%s: attach: %s [libbpf: %s]", bpf_program__section_name(prog), errstr(err),
		       last_libbpf_msg);
		goto out;
	}
	activity(ck->act);
	bpf_link__destroy(link);
	for (__u32 i = 0; i < KM_NCOUNTERS; i++)
		bpf_map_lookup_elem(nfd, &i, &v[i]);

	const char *sec = bpf_program__section_name(prog);
	__u64 hit = v[KM_C_HIT], miss = v[KM_C_MISS], all = v[KM_C_ALL], bio = v[KM_C_BIO_CG];

	switch (ck->verdict) {
	case V_OPENS:
		report(ck->name, hit == N_IN && miss == N_OUT ? "ok" : "fail",
		       "%s: marker opens counted in-cgroup=%llu/%d outside=%llu/%d", sec,
		       (unsigned long long)hit, N_IN, (unsigned long long)miss, N_OUT);
		break;
	case V_EXEC:
		report(ck->name, hit == 1 && miss >= 1 ? "ok" : "fail",
		       "%s: execs in-cgroup=%llu/1 outside=%llu (>=1) all=%llu", sec,
		       (unsigned long long)hit, (unsigned long long)miss,
		       (unsigned long long)all);
		break;
	case V_BLOCK:
		report(ck->name, all > 0 ? "ok" : "fail",
		       "%s: requests=%llu issued-by-cgroup-task=%llu bio-charged-to-cgroup=%llu%s%s",
		       sec, (unsigned long long)all, (unsigned long long)hit,
		       (unsigned long long)bio, io_enabled ? "" : " (io controller off)", dd_note);
		if (!strcmp(ck->prog, "tpbtf_rq_issue")) {
			if (!io_enabled)
				report("block_cgroup", "unsupported",
				       "io controller could not be enabled under %s", cg_root);
			else
				report("block_cgroup", bio > 0 ? "ok" : "fail",
				       "rq->bio->bi_blkg->blkcg cgroup id == child cgroup: %llu of %llu requests",
				       (unsigned long long)bio, (unsigned long long)all);
		}
		break;
	case V_NEGATIVE:
		report(ck->name, hit == 0 && miss == N_OUT ? "ok" : "fail",
		       "%s: opens by a process outside the cgroup: seen=%llu/%d counted=%llu (must be 0)",
		       sec, (unsigned long long)miss, N_OUT, (unsigned long long)hit);
		break;
	}
out:
	bpf_object__close(obj);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "obj", required_argument, 0, 'o' },	 { "disk", required_argument, 0, 'd' },
		{ "cgroup2", required_argument, 0, 'c' }, { "verbose", no_argument, 0, 'v' },
		{ "help", no_argument, 0, 'h' },	 { 0 },
	};
	struct utsname u;
	struct stat st;
	char buf[600];
	int o, fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	setvbuf(stderr, NULL, _IONBF, 0);
	disk_dir = getenv("KM_DISK") ? getenv("KM_DISK") : "/mnt";
	if (getenv("KM_CGROUP2"))
		snprintf(cg_root, sizeof(cg_root), "%s", getenv("KM_CGROUP2"));
	while ((o = getopt_long(argc, argv, "o:d:c:vh", opts, NULL)) != -1) {
		switch (o) {
		case 'o': obj_path = optarg; break;
		case 'd': disk_dir = optarg; break;
		case 'c': snprintf(cg_root, sizeof(cg_root), "%s", optarg); break;
		case 'v': verbose = 1; break;
		default:
			fprintf(stderr, "usage: %s [--obj FILE] [--disk DIR] [--cgroup2 DIR] [--verbose]\n",
				argv[0]);
			return o == 'h' ? 0 : 2;
		}
	}
	libbpf_set_print(libbpf_print);
	uname(&u);
	printf("KM-INFO km-demo kernel=%s libbpf=%d.%d obj=%s disk=%s\n", u.release,
	       libbpf_major_version(), libbpf_minor_version(), obj_path, disk_dir);

	/* cgroup2: a child cgroup for the "in" processes; this process stays outside. */
	if (!cg_root[0] && find_cgroup2(cg_root, sizeof(cg_root))) {
		report("cgroup2", "fail", "no cgroup2 mount in /proc/self/mounts");
		return 2;
	}
	snprintf(cg_dir, sizeof(cg_dir), "%s/km-demo-%d", cg_root, getpid());
	snprintf(buf, sizeof(buf), "%s/cgroup.subtree_control", cg_root);
	io_enabled = write_file(buf, "+io") == 0;
	if (mkdir(cg_dir, 0755) && errno != EEXIST) {
		report("cgroup2", "fail", "mkdir %s: %s", cg_dir, strerror(errno));
		return 2;
	}
	if (stat(cg_dir, &st)) {
		report("cgroup2", "fail", "stat %s: %s", cg_dir, strerror(errno));
		return 2;
	}
	cg_id = st.st_ino; /* a cgroup2 directory's inode number is its cgroup id */
	report("cgroup2", "ok", "child cgroup %s id=%llu io-controller=%s", cg_dir,
	       (unsigned long long)cg_id, io_enabled ? "on" : "off");

	fd = open(KM_MARKER, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);

	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
		run_check(&checks[i]);

	unlink(KM_MARKER);
	snprintf(buf, sizeof(buf), "%s/km-demo-dd", disk_dir);
	unlink(buf);
	if (rmdir(cg_dir))
		printf("KM-INFO rmdir %s: %s\n", cg_dir, strerror(errno));
	printf("KM-INFO km-demo done: %d check(s) failed\n", nfail);
	return nfail ? 1 : 0;
}
