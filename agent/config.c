// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "agent/config.h"
#include "agent/http/endpoints.h"
#include "agent/attrib/kubelet.h"
#include "agent/log.h"
#include "agent/attrib/selector.h"
#include "agent/tracers/tracer.h"
#include "lib/version.h"
#include "bpf/exec.h"
#include "bpf/bio.h"
#include "bpf/fs.h"
#include "agent/tracers/fs.h"

void config_defaults(struct ps_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->cmd = CMD_RUN;
	cfg->output = OUT_NDJSON;
	cfg->max_args = EXEC_ARGC_DEF;
	cfg->max_args_bytes = EXEC_ARGS_BYTES_DEF;
	cfg->drain_ms = CFG_DRAIN_MS_DEF;
	cfg->rate_limit = CFG_RATE_LIMIT_DEF;
	cfg->rate_burst = CFG_RATE_LIMIT_DEF * CFG_RATE_BURST_S_DEF;
	cfg->shed = true;
	cfg->fs_min_us = FS_MIN_US_DEF;
	cfg->fs_types = FS_T_BIT(FS_T_EXT4);
	cfg->interval_s = BIO_INTERVAL_DEF;
	cfg->bio_min_us = BIO_MIN_US_DEF;
	cfg->metrics_series = CFG_METRICS_SERIES_DEF;
	cfg->bio_hist_entries = BIO_HIST_ENTRIES_DEF;
	cfg->attrib_wait_ms = CFG_ATTRIB_WAIT_MS_DEF;
	cfg->meta_resync_s = CFG_META_RESYNC_S_DEF;
	cfg->meta_grace_s = CFG_META_GRACE_S_DEF;
	ship_config_defaults(&cfg->ship);
}

/* "cgwatch=tp_btf|tracepoint|none: pod attribution" under --hook */
static void usage_helper(FILE *f, const struct hook_helper *h)
{
	fprintf(f, "                            %s=", h->name);
	for (size_t j = 0; j < h->n_methods; j++)
		fprintf(f, "%s%s", j ? "|" : "", h->methods[j].name);
	fprintf(f, "%s: %s\n", h->none ? "|none" : "", h->what);
	if (h->none)
		fprintf(f, "                            (none: %s)\n", h->none);
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: podsnoop [OPTIONS]            trace and print events\n"
"       podsnoop probe [-o text|ndjson] show the hooks this kernel offers, per tracer\n"
"\n"
"Traces exec, open, block I/O, slow filesystem operations and the page cache\n"
"with eBPF (the tracers below), filtered in the kernel by cgroup and mount\n"
"namespace, and prints one record per event.\n"
"\n"
"Tracers:\n"
"  -t, --tracers LIST        comma-separated tracers to run (default: all):\n"
"                            ");
	for (size_t i = 0; i < tracer_count; i++)
		fprintf(f, "%s%s", i ? ", " : "", tracer_table[i]->name);
	fputs("\n"
"      --hook TRACER=METHOD  force a hook method instead of the best available\n"
"                            (see `podsnoop probe`), e.g. --hook exec=sched_btf;\n", f);
	for (size_t i = 0; i < helper_count; i++)
		usage_helper(f, helper_table[i]);
	fprintf(f, "\n"
"Selection (in the kernel; a task matches if ANY selector matches):\n"
"  -c, --cgroup PATH         tasks in this cgroup v2 directory or any descendant,\n"
"                            also descendants created later. PATH is a directory\n"
"                            under the cgroup2 mount or relative to its root,\n"
"                            e.g. /kubepods/besteffort. Repeatable.\n"
"  -m, --mntns ID            tasks in this mount namespace (the inode number of\n"
"                            /proc/PID/ns/mnt). Repeatable.\n"
"      --exclude-host        drop tasks in the agent's own mount namespace\n"
"  -n, --namespace NS        pods in this Kubernetes namespace. Repeatable.\n"
"      --pod NAME            pods with this name. Repeatable.\n"
"  -l, --selector K=V,...    pods whose labels match (K=V, K==V, K!=V, K, !K;\n"
"                            all must hold). Repeatable: all must hold.\n"
"                            Pods must match --namespace AND --pod AND\n"
"                            --selector; the agent keeps their cgroup ids (mount\n"
"                            namespaces on cgroup v1 nodes) in the kernel filter\n"
"                            as pods come and go. A selection that matches no\n"
"                            pod selects nothing.\n"
"\n"
"Pod attribution (records get a k8s object: namespace, pod, container):\n"
"      --cri-socket PATH     the container runtime's CRI socket (default: the\n"
"                            first of /run/containerd/containerd.sock,\n"
"                            /run/crio/crio.sock, ... that exists; 'none': no CRI)\n"
"      --kubelet URL         also read pods from the kubelet, e.g.\n"
"                            https://$NODE_NAME:10250 (GET URL/pods)\n"
"      --kubelet-token PATH  bearer token file (default: the service account's,\n"
"                            " KUBELET_TOKEN_FILE ")\n"
"      --kubelet-ca PATH     CA bundle for the kubelet's certificate (default:\n"
"                            the service account's ca.crt, else system CAs)\n"
"      --kubelet-insecure    do not verify the kubelet's certificate\n"
"      --attrib-wait-ms N    longest a record from a just-started container waits\n"
"                            for its pod's metadata, 0..10000 (default %u);\n"
"                            then it goes out with what its cgroup path tells\n"
"      --meta-resync SECS    full metadata resync period, 1..3600 (default %u)\n"
"      --meta-grace SECS     keep metadata of gone containers and cgroups this\n"
"                            long for late records, 0..86400 (default %u)\n"
"      --attribute-by HOW    auto (default), cgroup, or mntns (cgroup v1 nodes,\n"
"                            where every task shares one v2 cgroup; auto picks it\n"
"                            there)\n"
"\n"
"Output:\n"
"  -o, --output FMT          ndjson (default): one JSON object per line;\n"
"                            text: execsnoop-style columns, ext4slower lines\n"
"                            for fs, cachestat rows for cache, opensnoop and\n"
"                            biosnoop lines, biolatency-style histograms\n"
"  -d, --duration SECS       run this long, flush and exit 0 (default: until\n"
"                            SIGINT or SIGTERM, which also flush and exit 0)\n"
"\n"
"exec:\n"
"      --max-args N          arguments kept per exec, 1..%u (default %u)\n"
"      --max-args-bytes N    bytes of arguments kept, 64..%u (default %u);\n"
"                            beyond either limit args_truncated is set\n"
"\n"
"fs (ext4slower/fsslower per pod: read, write, open, fsync):\n"
"      --fs-min-us N         report operations taking at least N microseconds\n"
"                            (default %u, i.e. 10 ms; 0 reports every operation)\n"
"      --fs-type LIST        filesystems to watch: ext4, xfs, btrfs, comma-\n"
"                            separated (default ext4; ext2/ext3 mounted through\n"
"                            the ext4 driver count as ext4; files reached through\n"
"                            overlayfs count as their real filesystem's)\n"
"\n"
"open (opensnoop per pod):\n"
"      --open-failed         only opens that failed (ret < 0)\n"
"\n"
"bio (biosnoop and biolatency per pod and disk):\n"
"      --bio-min-us N        a record per request only when its device time\n"
"                            is at least N microseconds (default %u; 0: every\n"
"                            request); the histograms count every request\n"
"      --bio-hist-entries N  histograms kept per interval, 1..%u (default %u);\n"
"                            requests that do not fit are counted as lost\n"
"\n"
"cache and bio:\n"
"      --interval SECS       every SECS seconds, 1..3600 (default %u): cache:\n"
"                            one row per cgroup with page-cache activity; bio:\n"
"                            latency histograms per cgroup, disk and op\n"
"\n"
"Endpoints:\n"
"      --listen ADDR         serve /healthz, /readyz and /metrics (Prometheus)\n"
"                            over HTTP on ADDR: HOST:PORT, [V6]:PORT or :PORT\n"
"                            (every address), e.g. --listen :9464\n"
"      --metrics-series N    per-pod families of /metrics keep at most N label\n"
"                            sets each, the rest folded into one _other series\n"
"                            (default %u)\n"
"\n",
		CFG_ATTRIB_WAIT_MS_DEF, CFG_META_RESYNC_S_DEF, CFG_META_GRACE_S_DEF,
		EXEC_ARGC_CAP, EXEC_ARGC_DEF, EXEC_ARGS_BYTES_CAP, EXEC_ARGS_BYTES_DEF,
		FS_MIN_US_DEF, BIO_MIN_US_DEF, BIO_HIST_ENTRIES_CAP, BIO_HIST_ENTRIES_DEF,
		BIO_INTERVAL_DEF, CFG_METRICS_SERIES_DEF);
	ship_config_usage(f);
	otlp_config_usage(f);
	fprintf(f,
"Tuning and diagnostics:\n"
"      --rate-limit N[,BURST]\n"
"                            at most N records a second per cgroup and tracer\n"
"                            (exec, open, bio, fs), BURST at once (default\n"
"                            %u,%u; 0: no limit); refused records are\n"
"                            counted per cgroup: loss records, rate_limited\n"
"      --shed on|off         when a ring buffer is 3/4 full, refuse the records\n"
"                            of cgroups above their fair share of it, counted\n"
"                            per cgroup: loss records, shed (default on)\n"
"      --drain-ms N          drain ring buffers every N ms, 1..1000 (default %u);\n"
"                            the kernel also wakes the agent when 1/8 of a ring\n"
"                            buffer is queued\n"
"      --ringbuf-kb N        ring buffer size per tracer in KiB, a power of two,\n"
"                            4..1048576 (default per tracer:\n"
"                           ", CFG_RATE_LIMIT_DEF, CFG_RATE_LIMIT_DEF * CFG_RATE_BURST_S_DEF,
		CFG_DRAIN_MS_DEF);
	for (size_t i = 0, n = 0; i < tracer_count; i++)
		if (tracer_table[i]->ringbuf_bytes)
			fprintf(f, "%s %s %u", n++ ? "," : "", tracer_table[i]->name,
				tracer_table[i]->ringbuf_bytes / 1024);
	fputs(")\n"
"  -v, --verbose             more logging; -vv adds libbpf and verifier logs\n"
"      --check-config        check the flags and privileges, print the settings,\n"
"                            load nothing and exit (0: they would run)\n"
"  -V, --version             print the version\n"
"  -h, --help                this help\n"
"\n"
"Examples:\n"
"  podsnoop                                   all tracers, every task, NDJSON\n"
"  podsnoop -o text --exclude-host            containers only, as a table\n"
"  podsnoop -c /kubepods/besteffort -d 30     one QoS class for 30 seconds\n"
"  podsnoop -m 4026532561 -t exec             one container by mount namespace\n"
"  podsnoop -t fs --fs-min-us 1000 -o text    ext4 operations slower than 1 ms\n"
"  podsnoop -t cache --interval 1 -o text     cachestat per pod, every second\n"
"  podsnoop --hook cache=tracepoint           force the tracepoint estimate\n"
"  podsnoop -t open --open-failed -o text     failed opens, opensnoop -x style\n"
"  podsnoop -t bio --interval 5 -o text       block I/O latency every 5 seconds\n"
"  podsnoop -t bio --bio-min-us 0             every block request\n"
"  podsnoop -n shop -l app=web -o text       one app's pods, with pod names\n"
"  podsnoop --kubelet https://$NODE_NAME:10250 --pod web-0\n"
"  podsnoop probe                             which hooks this kernel offers\n"
"  podsnoop --listen 127.0.0.1:9464           with health and metrics endpoints\n"
"  podsnoop --collector https://collector:8443/v1/batches \\\n"
"      --collector-ca /etc/podsnoop/ca.pem --spool-dir /var/lib/podsnoop/spool\n"
"                                             ship to a collector, nothing local\n"
"\n"
"Exit status: 0 on success (also after SIGINT/SIGTERM), 1 when tracing\n"
"could not start, 2 on bad usage.\n", f);
}

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
	va_list ap;

	fputs("podsnoop: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see --help)\n", stderr);
	return -EINVAL;
}

static int parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (!s || !*s || *s == '-' || *s == '+')
		return bad("%s: '%s' is not a number", opt, s ? s : "");
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return bad("%s: '%s' is not a number", opt, s);
	if (v < min || v > max)
		return bad("%s: %llu is out of range %" PRIu64 "..%" PRIu64, opt, v, min, max);
	*out = v;
	return 0;
}

static int parse_tracers(struct ps_config *cfg, const char *list)
{
	char buf[256], *save = NULL, *tok;
	int idx;

	if (strlen(list) >= sizeof(buf))
		return bad("--tracers: list too long");
	strcpy(buf, list);
	cfg->tracers = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		idx = tracer_index(tok);
		if (idx < 0)
			return bad("--tracers: unknown tracer '%s'", tok);
		cfg->tracers |= 1u << idx;
	}
	if (!cfg->tracers)
		return bad("--tracers: empty list");
	cfg->tracers_given = true;
	return 0;
}

static int parse_hook(struct ps_config *cfg, const char *arg)
{
	const char *eq = strchr(arg, '=');
	const struct hook_helper *h;
	char name[64];
	int idx;

	if (!eq || eq == arg || !eq[1] || (size_t)(eq - arg) >= sizeof(name))
		return bad("--hook: expected TRACER=METHOD, got '%s'", arg);
	memcpy(name, arg, (size_t)(eq - arg));
	name[eq - arg] = '\0';
	idx = tracer_index(name);
	if (idx >= 0) {
		if (!tracer_method(tracer_table[idx], eq + 1))
			return bad("--hook: tracer %s has no method '%s'", name, eq + 1);
		cfg->hooks[idx] = eq + 1;
		return 0;
	}
	idx = helper_index(name);
	if (idx < 0)
		return bad("--hook: unknown tracer '%s'", name);
	h = helper_table[idx];
	if (!(h->none && strcmp(eq + 1, "none") == 0) &&
	    !hook_find(h->methods, h->n_methods, eq + 1))
		return bad("--hook: %s has no method '%s'", name, eq + 1);
	cfg->helper_hooks[idx] = eq + 1;
	return 0;
}

/* --rate-limit N[,BURST] */
static int parse_rate_limit(struct ps_config *cfg, const char *arg)
{
	char n[32];
	const char *comma = strchr(arg, ',');
	size_t len = comma ? (size_t)(comma - arg) : strlen(arg);
	uint64_t rate, burst;
	int err;

	if (len >= sizeof(n))
		return bad("--rate-limit: '%s' is not N or N,BURST", arg);
	memcpy(n, arg, len);
	n[len] = '\0';
	err = parse_u64("--rate-limit", n, 0, CFG_RATE_LIMIT_MAX, &rate);
	if (err)
		return err;
	_Static_assert((uint64_t)CFG_RATE_LIMIT_MAX * CFG_RATE_BURST_S_DEF <= CFG_RATE_BURST_MAX,
		       "the default burst of the highest rate is a burst one may give");
	if (!comma) {
		burst = rate * CFG_RATE_BURST_S_DEF;
	} else {
		if (!rate)
			return bad("--rate-limit: a burst needs a rate (0 turns the limit off)");
		err = parse_u64("--rate-limit: BURST", comma + 1, 1, CFG_RATE_BURST_MAX, &burst);
		if (err)
			return err;
	}
	cfg->rate_limit = (uint32_t)rate;
	cfg->rate_burst = (uint32_t)burst;
	return 0;
}

enum {
	OPT_EXCLUDE_HOST = 256,
	OPT_HOOK,
	OPT_MAX_ARGS,
	OPT_MAX_ARGS_BYTES,
	OPT_DRAIN_MS,
	OPT_RINGBUF_KB,
	OPT_RATE_LIMIT,
	OPT_SHED,
	OPT_FS_MIN_US,
	OPT_FS_TYPE,
	OPT_INTERVAL,
	OPT_LISTEN,
	OPT_METRICS_SERIES,
	OPT_CHECK_CONFIG,
	OPT_OPEN_FAILED,
	OPT_BIO_MIN_US,
	OPT_BIO_HIST_ENTRIES,
	OPT_POD,
	OPT_CRI_SOCKET,
	OPT_KUBELET,
	OPT_KUBELET_TOKEN,
	OPT_KUBELET_CA,
	OPT_KUBELET_INSECURE,
	OPT_ATTRIB_WAIT_MS,
	OPT_META_RESYNC,
	OPT_META_GRACE,
	OPT_ATTRIBUTE_BY,
};

/* --namespace, --pod, --selector: non-empty, bounded */
static int add_select(const char *opt, const char **list, int *n, const char *v)
{
	if (*n >= CFG_MAX_SELECT)
		return bad("%s: at most %d", opt, CFG_MAX_SELECT);
	if (!*v)
		return bad("%s: empty value", opt);
	list[(*n)++] = v;
	return 0;
}


static int parse_fs_types(struct ps_config *cfg, const char *list)
{
	char buf[128], *save = NULL, *tok;
	int t;

	if (strlen(list) >= sizeof(buf))
		return bad("--fs-type: list too long");
	strcpy(buf, list);
	cfg->fs_types = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		t = fs_type_from_name(tok);
		if (t < 0)
			return bad("--fs-type: unknown filesystem '%s' (ext4, xfs, btrfs)", tok);
		cfg->fs_types |= 1u << t;
	}
	if (!cfg->fs_types)
		return bad("--fs-type: empty list");
	return 0;
}

int config_parse(struct ps_config *cfg, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tracers", required_argument, NULL, 't' },
		SHIP_LONG_OPTIONS,
		{ "output", required_argument, NULL, 'o' },
		{ "cgroup", required_argument, NULL, 'c' },
		{ "mntns", required_argument, NULL, 'm' },
		{ "exclude-host", no_argument, NULL, OPT_EXCLUDE_HOST },
		{ "duration", required_argument, NULL, 'd' },
		{ "hook", required_argument, NULL, OPT_HOOK },
		{ "max-args", required_argument, NULL, OPT_MAX_ARGS },
		{ "max-args-bytes", required_argument, NULL, OPT_MAX_ARGS_BYTES },
		{ "drain-ms", required_argument, NULL, OPT_DRAIN_MS },
		{ "ringbuf-kb", required_argument, NULL, OPT_RINGBUF_KB },
		{ "rate-limit", required_argument, NULL, OPT_RATE_LIMIT },
		{ "shed", required_argument, NULL, OPT_SHED },
		{ "fs-min-us", required_argument, NULL, OPT_FS_MIN_US },
		{ "fs-type", required_argument, NULL, OPT_FS_TYPE },
		{ "interval", required_argument, NULL, OPT_INTERVAL },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "metrics-series", required_argument, NULL, OPT_METRICS_SERIES },
		{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
		{ "open-failed", no_argument, NULL, OPT_OPEN_FAILED },
		{ "bio-min-us", required_argument, NULL, OPT_BIO_MIN_US },
		{ "bio-hist-entries", required_argument, NULL, OPT_BIO_HIST_ENTRIES },
		{ "namespace", required_argument, NULL, 'n' },
		{ "pod", required_argument, NULL, OPT_POD },
		{ "selector", required_argument, NULL, 'l' },
		{ "cri-socket", required_argument, NULL, OPT_CRI_SOCKET },
		{ "kubelet", required_argument, NULL, OPT_KUBELET },
		{ "kubelet-token", required_argument, NULL, OPT_KUBELET_TOKEN },
		{ "kubelet-ca", required_argument, NULL, OPT_KUBELET_CA },
		{ "kubelet-insecure", no_argument, NULL, OPT_KUBELET_INSECURE },
		{ "attrib-wait-ms", required_argument, NULL, OPT_ATTRIB_WAIT_MS },
		{ "meta-resync", required_argument, NULL, OPT_META_RESYNC },
		{ "meta-grace", required_argument, NULL, OPT_META_GRACE },
		{ "attribute-by", required_argument, NULL, OPT_ATTRIBUTE_BY },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	uint64_t v;
	char *end;
	int c, err;

	config_defaults(cfg);
	if (argc > 1 && strcmp(argv[1], "probe") == 0) {
		cfg->cmd = CMD_PROBE;
		argv++;
		argc--;
	}
	/*
	 * 0, not 1: glibc then forgets where it was inside a cluster of short
	 * options ("-qv"), which an earlier parse that stopped at an error
	 * left pointing into its own argv
	 */
	optind = 0;
	opterr = 0; /* we print our own one-line errors */
	while ((c = getopt_long(argc, argv, ":t:o:c:m:d:n:l:vVh", opts, NULL)) != -1) {
		err = 0;
		switch (c) {
		case 't':
			err = parse_tracers(cfg, optarg);
			break;
		case 'o':
			cfg->output_given = true;
			if (strcmp(optarg, "ndjson") == 0)
				cfg->output = OUT_NDJSON;
			else if (strcmp(optarg, "text") == 0)
				cfg->output = OUT_TEXT;
			else
				err = bad("--output: '%s' is not ndjson or text", optarg);
			break;
		case 'c':
			if (cfg->n_cgroups >= CFG_MAX_SELECT)
				err = bad("--cgroup: at most %d", CFG_MAX_SELECT);
			else if (!*optarg)
				err = bad("--cgroup: empty path");
			else
				cfg->cgroups[cfg->n_cgroups++] = optarg;
			break;
		case 'm':
			if (cfg->n_mntns >= CFG_MAX_SELECT)
				err = bad("--mntns: at most %d", CFG_MAX_SELECT);
			else if (!(err = parse_u64("--mntns", optarg, 1, UINT64_MAX, &v)))
				cfg->mntns[cfg->n_mntns++] = v;
			break;
		case OPT_EXCLUDE_HOST:
			cfg->exclude_host = true;
			break;
		case 'd':
			errno = 0;
			cfg->duration = strtod(optarg, &end);
			if (errno || end == optarg || *end || !isfinite(cfg->duration) ||
			    cfg->duration <= 0 || cfg->duration > 1e9)
				err = bad("--duration: '%s' is not a positive number of seconds",
					  optarg);
			break;
		case OPT_HOOK:
			err = parse_hook(cfg, optarg);
			break;
		case OPT_MAX_ARGS:
			if (!(err = parse_u64("--max-args", optarg, 1, EXEC_ARGC_CAP, &v)))
				cfg->max_args = (uint32_t)v;
			break;
		case OPT_MAX_ARGS_BYTES:
			if (!(err = parse_u64("--max-args-bytes", optarg, 64, EXEC_ARGS_BYTES_CAP, &v)))
				cfg->max_args_bytes = (uint32_t)v;
			break;
		case OPT_DRAIN_MS:
			if (!(err = parse_u64("--drain-ms", optarg, 1, 1000, &v)))
				cfg->drain_ms = (uint32_t)v;
			break;
		case OPT_RINGBUF_KB:
			/* a power of two of whole pages, as BPF_MAP_TYPE_RINGBUF requires */
			if (!(err = parse_u64("--ringbuf-kb", optarg, 4, 1 << 20, &v))) {
				if (v & (v - 1))
					err = bad("--ringbuf-kb: %llu is not a power of two",
						  (unsigned long long)v);
				else
					cfg->ringbuf_kb = (uint32_t)v;
			}
			break;
		case OPT_RATE_LIMIT:
			err = parse_rate_limit(cfg, optarg);
			break;
		case OPT_SHED:
			if (strcmp(optarg, "on") == 0)
				cfg->shed = true;
			else if (strcmp(optarg, "off") == 0)
				cfg->shed = false;
			else
				err = bad("--shed: '%s' is not on or off", optarg);
			break;
		case OPT_FS_MIN_US:
			/* up to an hour */
			if (!(err = parse_u64("--fs-min-us", optarg, 0, 3600000000ull, &v)))
				cfg->fs_min_us = v;
			break;
		case OPT_FS_TYPE:
			err = parse_fs_types(cfg, optarg);
			break;
		case OPT_INTERVAL:
			if (!(err = parse_u64("--interval", optarg, 1, 3600, &v)))
				cfg->interval_s = (uint32_t)v;
			break;
		case OPT_LISTEN: {
			char host[256];
			uint16_t port;

			if (endpoints_parse_addr(optarg, host, sizeof(host), &port))
				err = bad("--listen: '%s' is not HOST:PORT, [V6]:PORT or :PORT", optarg);
			else
				cfg->listen = optarg;
			break;
		}
		case OPT_METRICS_SERIES:
			if (!(err = parse_u64("--metrics-series", optarg, 1, CFG_METRICS_SERIES_MAX, &v)))
				cfg->metrics_series = (uint32_t)v;
			break;
		case OPT_CHECK_CONFIG:
			cfg->check_config = true;
			break;
		case OPT_OPEN_FAILED:
			cfg->open_failed = true;
			break;
		case OPT_BIO_MIN_US:
			/* 2^32 us is over an hour: no request is that slow */
			if (!(err = parse_u64("--bio-min-us", optarg, 0, UINT32_MAX, &v)))
				cfg->bio_min_us = (uint32_t)v;
			break;
		case OPT_BIO_HIST_ENTRIES:
			if (!(err = parse_u64("--bio-hist-entries", optarg, 1, BIO_HIST_ENTRIES_CAP, &v)))
				cfg->bio_hist_entries = (uint32_t)v;
			break;
		case 'n':
			err = add_select("--namespace", cfg->namespaces, &cfg->n_namespaces, optarg);
			break;
		case OPT_POD:
			err = add_select("--pod", cfg->pods, &cfg->n_pods, optarg);
			break;
		case 'l': {
			static struct pod_selector check; /* big: not on the stack */
			char why[200];

			memset(&check, 0, sizeof(check));
			if (sel_parse(&check, optarg, why, sizeof(why)))
				err = bad("--selector '%s': %s", optarg, why);
			else
				err = add_select("--selector", cfg->selectors, &cfg->n_selectors, optarg);
			break;
		}
		case OPT_CRI_SOCKET: {
			const char *path = optarg;
			size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;

			if (strncmp(path, "unix://", 7) == 0)
				path += 7;
			if (!*path)
				err = bad("--cri-socket: empty path");
			else if (strlen(path) > max)
				err = bad("--cri-socket: '%s' is %zu bytes long, a unix socket path "
					  "at most %zu", path, strlen(path), max);
			cfg->cri_socket = optarg;
			break;
		}
		case OPT_KUBELET:
			if (strncmp(optarg, "https://", 8) != 0 && strncmp(optarg, "http://", 7) != 0)
				err = bad("--kubelet: '%s' is not an http(s):// URL", optarg);
			cfg->kubelet_url = optarg;
			break;
		case OPT_KUBELET_TOKEN:
			cfg->kubelet_token = optarg;
			break;
		case OPT_KUBELET_CA:
			cfg->kubelet_ca = optarg;
			break;
		case OPT_KUBELET_INSECURE:
			cfg->kubelet_insecure = true;
			break;
		case OPT_ATTRIB_WAIT_MS:
			if (!(err = parse_u64("--attrib-wait-ms", optarg, 0, 10000, &v)))
				cfg->attrib_wait_ms = (uint32_t)v;
			break;
		case OPT_META_RESYNC:
			if (!(err = parse_u64("--meta-resync", optarg, 1, 3600, &v)))
				cfg->meta_resync_s = (uint32_t)v;
			break;
		case OPT_META_GRACE:
			if (!(err = parse_u64("--meta-grace", optarg, 0, 86400, &v)))
				cfg->meta_grace_s = (uint32_t)v;
			break;
		case OPT_ATTRIBUTE_BY:
			if (strcmp(optarg, "auto") == 0)
				cfg->attribute_by = ATTRIB_BY_AUTO;
			else if (strcmp(optarg, "cgroup") == 0)
				cfg->attribute_by = ATTRIB_BY_CGROUP;
			else if (strcmp(optarg, "mntns") == 0)
				cfg->attribute_by = ATTRIB_BY_MNTNS;
			else
				err = bad("--attribute-by: '%s' is not auto, cgroup or mntns", optarg);
			break;
		case OPT_SHIP_FIRST ... OPT_SHIP_LAST:
			err = ship_config_opt(&cfg->ship, c, optarg, bad);
			break;
		case 'v':
			cfg->verbose++;
			break;
		case 'V':
			printf("podsnoop %s\n", PODSNOOP_VERSION);
			return 1;
		case 'h':
			usage(stdout);
			return 1;
		case ':':
			err = bad("%s needs a value", argv[optind - 1]);
			break;
		default:
			if (optopt)
				err = bad("unknown option '-%c'", optopt);
			else
				err = bad("unknown option '%s'", argv[optind - 1]);
			break;
		}
		if (err)
			return err;
	}
	if (optind < argc)
		return bad("unexpected argument '%s'", argv[optind]);
	if (!cfg->tracers)
		cfg->tracers = (1u << tracer_count) - 1;
	if (cfg->cmd == CMD_PROBE &&
	    (cfg->n_cgroups || cfg->n_mntns || cfg->duration > 0 || cfg->listen ||
	     cfg->n_namespaces || cfg->n_pods || cfg->n_selectors || cfg->ship.given ||
	     cfg->ship.otlp.given))
		return bad("probe takes only --output, --hook and --verbose");
	return ship_config_check(&cfg->ship, bad);
}

void config_print(const struct ps_config *cfg, FILE *f)
{
	char url[1024];

	fprintf(f, "tracers:");
	for (size_t i = 0; i < tracer_count; i++)
		if (cfg->tracers & (1u << i))
			fprintf(f, " %s%s%s", tracer_table[i]->name, cfg->hooks[i] ? "=" : "",
				cfg->hooks[i] ? cfg->hooks[i] : "");
	fprintf(f, "\noutput: %s\n", cfg->output == OUT_TEXT ? "text" : "ndjson");
	for (int i = 0; i < cfg->n_cgroups; i++)
		fprintf(f, "cgroup: %s\n", cfg->cgroups[i]);
	for (int i = 0; i < cfg->n_mntns; i++)
		fprintf(f, "mntns: %llu\n", (unsigned long long)cfg->mntns[i]);
	fprintf(f, "exclude-host: %s\n", cfg->exclude_host ? "yes" : "no");
	fprintf(f, "listen: %s\nmetrics-series: %u\n", cfg->listen ? cfg->listen : "off",
		cfg->metrics_series);
	fprintf(f, "duration: %g\nmax-args: %u\nmax-args-bytes: %u\ndrain-ms: %u\n",
		cfg->duration, cfg->max_args, cfg->max_args_bytes, cfg->drain_ms);
	if (cfg->ringbuf_kb)
		fprintf(f, "ringbuf-kb: %u\n", cfg->ringbuf_kb);
	if (cfg->rate_limit)
		fprintf(f, "rate-limit: %u,%u\n", cfg->rate_limit, cfg->rate_burst);
	else
		fprintf(f, "rate-limit: off\n");
	fprintf(f, "shed: %s\n", cfg->shed ? "on" : "off");
	fprintf(f, "fs-min-us: %llu\nfs-type:", (unsigned long long)cfg->fs_min_us);
	for (int t = 0; t < FS_T_MAX; t++)
		if (cfg->fs_types & FS_T_BIT(t))
			fprintf(f, " %s", fs_type_name((uint32_t)t));
	fprintf(f, "\ninterval: %u\n", cfg->interval_s);
	fprintf(f, "open-failed: %s\nbio-min-us: %u\nbio-hist-entries: %u\n",
		cfg->open_failed ? "yes" : "no", cfg->bio_min_us, cfg->bio_hist_entries);
	for (int i = 0; i < cfg->n_namespaces; i++)
		fprintf(f, "namespace: %s\n", cfg->namespaces[i]);
	for (int i = 0; i < cfg->n_pods; i++)
		fprintf(f, "pod: %s\n", cfg->pods[i]);
	for (int i = 0; i < cfg->n_selectors; i++)
		fprintf(f, "selector: %s\n", cfg->selectors[i]);
	fprintf(f, "cri-socket: %s\nkubelet: %s\n", cfg->cri_socket ? cfg->cri_socket : "auto",
		cfg->kubelet_url ? log_url(cfg->kubelet_url, url, sizeof(url)) : "off");
	if (cfg->kubelet_url)
		fprintf(f, "kubelet-token: %s\nkubelet-ca: %s\nkubelet-insecure: %s\n",
			cfg->kubelet_token ? cfg->kubelet_token : "default",
			cfg->kubelet_ca ? cfg->kubelet_ca : "default",
			cfg->kubelet_insecure ? "yes" : "no");
	fprintf(f, "attrib-wait-ms: %u\nmeta-resync: %u\nmeta-grace: %u\nattribute-by: %s\n",
		cfg->attrib_wait_ms, cfg->meta_resync_s, cfg->meta_grace_s,
		cfg->attribute_by == ATTRIB_BY_MNTNS ? "mntns" :
		cfg->attribute_by == ATTRIB_BY_CGROUP ? "cgroup" : "auto");
	for (size_t i = 0; i < helper_count; i++)
		if (cfg->helper_hooks[i])
			fprintf(f, "hook: %s=%s\n", helper_table[i]->name, cfg->helper_hooks[i]);
	ship_config_print(&cfg->ship, f);
}
