/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The agent's settings, as parsed from the command line. */
#ifndef PS_CONFIG_H
#define PS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "agent/ship/ship_config.h"

/* kernel-internal type names have no place in user space (bpftool does the same) */
#pragma GCC poison u8 u16 u32 u64 s8 s16 s32 s64

#define CFG_MAX_SELECT 256	/* --cgroup / --mntns entries */
#define CFG_MAX_TRACERS 16
#define CFG_MAX_HELPERS 4	/* hook choices that are not tracers (helper_table) */

/* Defaults of the flags (--help prints them from here; the tracers' own are in bpf/<t>.h) */
#define CFG_DRAIN_MS_DEF 50
#define CFG_ATTRIB_WAIT_MS_DEF 500
#define CFG_METRICS_SERIES_DEF 2048	/* POD_METRICS_MAX_SERIES */
#define CFG_METRICS_SERIES_MAX 1000000
#define CFG_META_RESYNC_S_DEF 30
#define CFG_META_GRACE_S_DEF 60
/* --rate-limit N[,BURST]: records a second per (cgroup, tracer); BURST: seconds of N */
#define CFG_RATE_LIMIT_DEF 20000
#define CFG_RATE_BURST_S_DEF 5
#define CFG_RATE_LIMIT_MAX 100000000u	/* a period of 10 ns */
#define CFG_RATE_BURST_MAX 1000000000u

enum ps_cmd { CMD_RUN, CMD_PROBE };
enum ps_output { OUT_NDJSON, OUT_TEXT };
enum ps_attrib_by { ATTRIB_BY_AUTO, ATTRIB_BY_CGROUP, ATTRIB_BY_MNTNS };

struct ps_config {
	enum ps_cmd cmd;
	uint32_t tracers;		/* bit i: tracer_table[i] selected */
	bool tracers_given;		/* --tracers was used: a failing tracer is fatal */
	enum ps_output output;
	bool output_given;
	const char *cgroups[CFG_MAX_SELECT];
	int n_cgroups;
	uint64_t mntns[CFG_MAX_SELECT];
	int n_mntns;
	bool exclude_host;
	double duration;		/* seconds; 0: until SIGINT/SIGTERM */
	int verbose;
	const char *hooks[CFG_MAX_TRACERS]; /* --hook: forced method per tracer */
	uint32_t max_args;
	uint32_t max_args_bytes;
	uint32_t drain_ms;		/* ring buffer drain period */
	uint32_t ringbuf_kb;		/* per-tracer ring buffer size; 0: tracer default */
	uint32_t rate_limit;		/* records/s per (cgroup, tracer); 0: no limit */
	uint32_t rate_burst;		/* records a cgroup may write at once */
	bool shed;			/* --shed: a nearly full ring shared fairly by cgroups */
	uint64_t fs_min_us;		/* fs: report operations at least this slow; 0: all */
	uint32_t fs_types;		/* fs: filesystem types, bit per enum fs_type */
	uint32_t interval_s;		/* periodic records (cache, bio histograms) every this many seconds */
	const char *listen;		/* --listen ADDR: /healthz /readyz /metrics; NULL: off */
	uint32_t metrics_series;	/* per-pod families: label sets kept, each */
	bool check_config;		/* --check-config: validate flags, load nothing, exit */
	bool open_failed;		/* open: only calls that failed */
	uint32_t bio_min_us;		/* bio: per-request records from this latency up */
	uint32_t bio_hist_entries;	/* bio: histograms kept per interval */

	/* pod attribution and selection by Kubernetes identity (attrib.h) */
	const char *cri_socket;		/* NULL: auto-detect; "none": no CRI */
	const char *kubelet_url;	/* NULL: no kubelet */
	const char *kubelet_token;	/* NULL: the service account's */
	const char *kubelet_ca;		/* NULL: the service account's (or system CAs) */
	bool kubelet_insecure;
	const char *namespaces[CFG_MAX_SELECT];
	int n_namespaces;
	const char *pods[CFG_MAX_SELECT];
	int n_pods;
	const char *selectors[CFG_MAX_SELECT];	/* each: "k=v,k2!=v2" */
	int n_selectors;
	uint32_t attrib_wait_ms;	/* longest a record waits for its pod's metadata */
	uint32_t meta_resync_s;		/* full resync period */
	uint32_t meta_grace_s;		/* metadata kept after a container is gone */
	enum ps_attrib_by attribute_by;
	const char *helper_hooks[CFG_MAX_HELPERS]; /* --hook NAME=METHOD of helper_table[i] */
	struct ship_config ship;	/* --collector and the other shipping flags */
};

void config_defaults(struct ps_config *cfg);

/*
 * Parse argv into cfg. Returns 0 to run, 1 when --help/--version was handled
 * (exit 0), -EINVAL after printing a one-line error (exit 2).
 */
int config_parse(struct ps_config *cfg, int argc, char **argv);
/* The settings, one "key: value" line each (--check-config). */
void config_print(const struct ps_config *cfg, FILE *f);

#endif
