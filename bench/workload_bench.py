#!/usr/bin/python3
"""Whole workloads: what a node's own work costs with podsnoop on it, against
the libbpf-tools set doing the same job. Each workload is timed as a whole, in
a cgroup of its own, under each configuration, alternating round by round:

  files        a source tree (/usr/include/linux) copied with tar into tmpfs,
               searched with grep -r, removed
  forkexec     a shell script: fork+exec of small commands and pipes
  build        podsnoop's own C sources (lib/, collector/, agent/) built with
               make -j2 into tmpfs
  pgbench-rw   PostgreSQL's pgbench, TPC-B-like read-write transactions, on a
               server this benchmark starts on a local data directory
  pgbench-ro   the same, read-only (-S)

  untraced     nothing traces
  podsnoop     podsnoop's default (every tracer), NDJSON to /dev/null
  podsnoop-ship  the same shipping to the reference collector on loopback
  podsnoop-syscalls, podsnoop-raw
               the default with exec, open and fs forced onto the syscall
               tracepoints (--hook T=syscalls) or onto the one dispatcher on
               the raw syscall hooks (--hook T=raw_syscalls); the one the
               default takes on this kernel is left out (the podsnoop row)
  filtered     podsnoop --cgroup IDLE: every task filtered out in the kernel
  filtered-syscalls, filtered-raw   the same with the methods forced
  libbpf-tools execsnoop, opensnoop, biolatency, fsslower (ext4slower where
               the data is on ext4) and cachestat together, output to /dev/null

Per workload: the time ratio to the untraced run of the same round (median and
range), the tracer's CPU over the workload; per configuration the records and
losses over the run.

Run as root:  make bench  or  bench/workload_bench.py [--rounds 5] [--quick]
              [--configs podsnoop,podsnoop-raw,...]  (untraced always runs)
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (  # noqa: E402
    AGENT, REPO, BpfStats, Cgroup, Config, Proc, Shipped, attached, alternate,
    bpf_attachments, bpf_prog_stats, cpu_s, fmt_ratio,
    fmt_range, markdown_table, need, peer, peer_lost, podsnoop, scenario_main,
    stats)

PG_BIN = "/usr/lib/postgresql/15/bin"
PEERS = ["execsnoop", "opensnoop", "biolatency", "fsslower", "cachestat"]
SUMMARY = re.compile(r"(\w+): seen (\d+), filtered (\d+), emitted (\d+), lost (\d+) \(ring "
                     r"buffer full\), (\d+) \(map full\)")
# targets (issue 20; bench/README.md)
DEFAULT_MAX, FILTERED_MAX = 1.10, 1.03
# the tracers that hook syscalls, and the methods compared for them (docs/hooks.md)
SYSCALL_TRACERS = ("exec", "open", "fs")
FORCED = (("syscalls", "syscalls"), ("raw", "raw_syscalls"))
# the hook method each of them took, from the agent's log
TRACING = re.compile(r"\b(exec|open|fs): tracing with (\S+)")


class Group:
    """Several tracers started together, stopped together (the libbpf-tools set)."""

    def __init__(self, procs):
        self.procs = procs
        self.pid = procs[0].pid
        self.pids = [p.pid for p in procs]

    def stop(self):
        return "\n".join(p.stop() for p in self.procs)


def group_cpu_s(p):
    total = 0.0
    for pid in getattr(p, "pids", [p.pid]):
        try:
            total += cpu_s(pid)
        except OSError:
            pass
    return total


def agent_summary(err):
    """Records emitted and lost (ring buffer + map full) over all tracers."""
    emitted = lost = 0
    for m in SUMMARY.finditer(err):
        emitted += int(m.group(4))
        lost += int(m.group(5)) + int(m.group(6))
    return {"records": emitted, "lost": lost,
            "methods": " ".join("%s=%s" % m for m in TRACING.findall(err))}


def default_methods():
    """{tracer: method} the agent takes by default here (`podsnoop probe`)."""
    out = subprocess.run([AGENT, "probe", "-o", "ndjson"], capture_output=True, text=True,
                         check=True).stdout
    return {r["tracer"]: r["chosen"] for r in map(json.loads, out.splitlines())
            if r.get("type") == "probe" and r["tracer"] in SYSCALL_TRACERS}


def others_on_syscall_hooks(ours):
    """Other processes with BPF programs on sys_enter/sys_exit or the
    sys_{enter,exit}_NAME tracepoints: one program on any of them puts every
    syscall of every task on the kernel's slow path, the untraced runs too."""
    return {pid for pid, what in bpf_attachments()
            if pid not in ours and str(what).startswith("sys_")}


def ratio_stats(samples, name, cname):
    """Per-round ratios of cname to untraced on workload name, over the rounds
    where both runs counted (--shared leaves a disturbed run out)."""
    return stats([c[name] / u[name] for c, u in zip(samples[cname], samples["untraced"])
                  if c.get(name) is not None and u.get(name) is not None])


def bpf_profile(cs, wls, cg, log=print):
    """One more run of each workload under each configuration with a tracer, BPF
    run-time statistics on: the agent's BPF time per run of the workload, and
    how often each program ran (a tail-called handler's time is its
    dispatcher's). Not timed against anything: the accounting slows the programs."""
    out = {}
    with BpfStats():
        for c in cs:
            if not c.name.startswith(("podsnoop", "filtered")) or c.name == "podsnoop-ship":
                continue
            p = c.start()
            out[c.name] = {}
            try:
                time.sleep(0.5)
                for name, _, w in wls:
                    before = {x["id"]: x for x in bpf_prog_stats(p.pid)}
                    w(cg)
                    progs = []
                    for x in bpf_prog_stats(p.pid):
                        b = before.get(x["id"], {"run_cnt": 0, "run_time_ns": 0})
                        n, ns = x["run_cnt"] - b["run_cnt"], x["run_time_ns"] - b["run_time_ns"]
                        if n:
                            progs.append({"name": x["name"], "runs": n, "ns": ns})
                    progs.sort(key=lambda x: -x["ns"])
                    out[c.name][name] = {"bpf_ms": sum(x["ns"] for x in progs) / 1e6,
                                         "progs": progs}
                    log("  profile %s %s: %.1f ms of BPF (%s)" % (
                        c.name, name, out[c.name][name]["bpf_ms"], ", ".join(
                            "%s %d runs %.1f ms" % (x["name"], x["runs"], x["ns"] / 1e6)
                            for x in progs[:5])))
            finally:
                p.stop()
    return out


def forced(method):
    return [a for t in SYSCALL_TRACERS for a in ("--hook", "%s=%s" % (t, method))]


def peers_counts(err):
    return {"lost": peer_lost(err), "records": None}


def fs_type(path):
    out = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True)
    return out.stdout.strip()


class Postgres:
    """A PostgreSQL server on a fresh data directory (a local disk, not tmpfs),
    its pgbench database initialized; stopped and removed at exit."""

    def __init__(self, base, scale):
        self.dir = tempfile.mkdtemp(prefix="bench-pg.", dir=base)
        os.chmod(self.dir, 0o755)
        shutil.chown(self.dir, "postgres", "postgres")  # the server's socket goes here
        self.data = os.path.join(self.dir, "data")
        self.sock = self.dir
        os.mkdir(self.data)
        shutil.chown(self.data, "postgres", "postgres")
        self.pg(os.path.join(PG_BIN, "initdb"), "-D", self.data, "-A", "trust", "--no-sync")
        self.pg(os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-w", "-l",
                os.path.join(self.data, "log"), "-o",
                "-k %s -c listen_addresses='' -p 5499" % self.sock, "start")
        self.pg(os.path.join(PG_BIN, "pgbench"), "-h", self.sock, "-p", "5499", "-i", "-q",
                "-s", str(scale), "postgres")

    def pg(self, *argv, cg=None):
        cmd = ["runuser", "-u", "postgres", "--"] + list(argv)
        r = (cg.run if cg else subprocess.run)(cmd, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.PIPE, cwd="/", text=True)
        if r.returncode:
            raise RuntimeError("%s: exit %d: %s" % (" ".join(argv), r.returncode, r.stderr))

    def bench(self, cg, txns, clients, read_only):
        self.pg(os.path.join(PG_BIN, "pgbench"), "-h", self.sock, "-p", "5499", "-n",
                "-c", str(clients), "-j", str(clients), "-t", str(txns),
                *(["-S"] if read_only else []), "postgres", cg=cg)

    def stop(self):
        try:
            self.pg(os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", "fast", "-w",
                    "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def build_makefile(top):
    """A Makefile in top building podsnoop's C sources (no BPF, no link) into top."""
    srcs = sorted(os.path.relpath(os.path.join(d, f), REPO)
                  for sub in ("lib", "collector", "agent")
                  for d, _, fs in os.walk(os.path.join(REPO, sub)) for f in fs
                  if f.endswith(".c"))
    flags = "-O1 -D_GNU_SOURCE -std=gnu11 -Ulinux -w -iquote %s -I%s/build -I%s/build/gen" % (
        REPO, REPO, REPO)
    lines = ["all: " + " ".join(s[:-2] + ".o" for s in srcs), ""]
    for s in srcs:
        lines += ["%s.o: %s/%s" % (s[:-2], REPO, s),
                  "\t@mkdir -p %s" % os.path.dirname(s),
                  "\t@cc %s -c $< -o $@" % flags, ""]
    with open(os.path.join(top, "Makefile"), "w") as f:
        f.write("\n".join(lines))


def workloads(args, shm, pg):
    """[(name, description, run(cg))]"""
    tree = "/usr/include/linux"
    n = args.scale

    def files(cg):
        dst = tempfile.mkdtemp(prefix="bench-files.", dir=shm)
        try:
            script = ("for i in $(seq %d); do mkdir $0/$i; tar -C %s -cf - . | "
                      "tar -C $0/$i -xf -; done; grep -r -c define $0 > /dev/null; "
                      "rm -rf $0/*" % (5 * n, tree))
            cg.run(["/bin/sh", "-c", script, dst], check=True)
        finally:
            shutil.rmtree(dst, ignore_errors=True)

    def forkexec(cg):
        script = ("i=0; while [ $i -lt %d ]; do /bin/true; echo $i | cat > /dev/null; "
                  "x=$(date +%%s); i=$((i+1)); done" % (300 * n))
        cg.run(["/bin/sh", "-c", script], check=True)

    def build(cg):
        top = tempfile.mkdtemp(prefix="bench-build.", dir=shm)
        try:
            build_makefile(top)
            cg.run(["make", "-s", "-j2", "-C", top], check=True, stdout=subprocess.DEVNULL)
        finally:
            shutil.rmtree(top, ignore_errors=True)

    out = [("files", "tar copy of %s (x%d) to tmpfs, grep -r, rm -rf" % (tree, 5 * n), files),
           ("forkexec", "sh: %d x (true; echo | cat; $(date))" % (300 * n), forkexec),
           ("build", "make -j2 of podsnoop's C sources (cc -O1, into tmpfs)", build)]
    if pg:
        out += [("pgbench-rw", "pgbench -c 2 -t %d (TPC-B-like), data on %s" % (
                     args.pg_txns, pg.fs), lambda cg: pg.bench(cg, args.pg_txns, 2, False)),
                ("pgbench-ro", "pgbench -S -c 2 -t %d" % (args.pg_txns * 5),
                 lambda cg: pg.bench(cg, args.pg_txns * 5, 2, True))]
    return out


def run(args):
    need(AGENT)
    # a SIGTERM stops the server and removes the data directory, as an error would
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    shm = "/dev/shm"
    pg = None
    base = os.environ.get("BENCH_PG_DIR", "/var/tmp")
    if not args.no_pg and os.path.exists(os.path.join(PG_BIN, "pgbench")):
        pg = Postgres(base, args.pg_scale)
        pg.fs = fs_type(base)
    try:
        with Cgroup() as cg, Cgroup() as idle:
            wls = workloads(args, shm, pg)
            if args.workloads:
                wls = [w for w in wls if w[0] in args.workloads.split(",")]
            fsslower = "ext4slower" if pg and pg.fs == "ext2/ext3" and peer("ext4slower") \
                else "fsslower"
            peer_paths = [peer(p if p != "fsslower" else fsslower) for p in PEERS]
            cs = [Config("untraced", "nothing"),
                  Config("podsnoop", "podsnoop (every tracer), NDJSON to /dev/null",
                         lambda: podsnoop("--cri-socket", "none"), agent_summary),
                  Config("podsnoop-ship", "podsnoop (every tracer) shipping to the reference "
                         "collector on loopback (at nice 10)",
                         lambda: Shipped("--cri-socket", "none", nice=10), agent_summary),
                  Config("filtered", "podsnoop --cgroup IDLE (every task filtered out)",
                         lambda: podsnoop("--cri-socket", "none", "--cgroup", idle.path),
                         agent_summary)]
            chosen = default_methods()
            for suffix, method in FORCED:
                if set(chosen.values()) == {method}:
                    continue  # that is the default here: the podsnoop rows
                flags = forced(method)
                cs.insert(2, Config(
                    "podsnoop-" + suffix, "podsnoop (every tracer), exec, open and fs on "
                    "%s, NDJSON to /dev/null" % method,
                    lambda f=flags: podsnoop("--cri-socket", "none", *f), agent_summary))
                cs.append(Config(
                    "filtered-" + suffix, "podsnoop --cgroup IDLE, exec, open and fs on %s" %
                    method, lambda f=flags: podsnoop("--cri-socket", "none", "--cgroup",
                                                     idle.path, *f), agent_summary))
            # the set this kernel can run: fsslower and cachestat need kprobes or
            # trampolines (fentry), which some kernels have neither of
            runnable, cannot = [], []
            for pp in (p for p in peer_paths if p) if not args.no_peers else ():
                argv = [pp] + (["-t", "ext4"] if pp.endswith("fsslower") else [])
                try:
                    Proc(argv, ready=attached()).stop()
                    runnable.append(pp)
                except RuntimeError:
                    cannot.append(os.path.basename(pp))
            peer_paths = runnable
            if peer_paths:
                def start_peers():
                    procs = []
                    try:
                        for p in peer_paths:
                            argv = [p]
                            if p.endswith("fsslower"):
                                argv += ["-t", "ext4"]
                            procs.append(Proc(argv, ready=attached()))
                    except Exception:
                        for q in procs:
                            q.stop()
                        raise
                    return Group(procs)
                cs.append(Config("libbpf-tools", "%s together > /dev/null" % ", ".join(
                    os.path.basename(p) for p in peer_paths), start_peers, peers_counts))
            if args.configs:
                want = set(args.configs.split(",")) | {"untraced"}
                cs = [c for c in cs if c.name in want]
            for _, _, w in wls:  # warm caches once
                w(cg)
            cur = {}

            def start_wrap(c):
                inner = c.start

                def f():
                    cur["p"] = inner()
                    return cur["p"]
                return f
            for c in cs:
                c.start = start_wrap(c)

            def workload(c):
                fig = {}
                p = cur.get("p")
                ours = {os.getpid()} | set(getattr(p, "pids", [p.pid]) if p else [])
                for name, _, w in wls:
                    # --shared: a run with another tracer on the syscall hooks
                    # before or after it does not count (the rest of the round does)
                    others = others_on_syscall_hooks(ours) if args.shared else set()
                    c0 = group_cpu_s(p) if p else 0.0
                    t0 = time.monotonic()
                    w(cg)
                    t1 = time.monotonic()
                    if args.shared:
                        others |= others_on_syscall_hooks(ours)
                    fig[name] = None if others else t1 - t0
                    if others:
                        fig.setdefault("disturbed", []).append(name)
                    fig[name + "_cpu_pct"] = 100.0 * ((group_cpu_s(p) if p else 0.0) - c0) / (
                        t1 - t0)
                fig["value"] = None if fig.get("disturbed") else sum(fig[n] for n, _, _ in wls)
                cur["p"] = None
                return fig
            rounds = alternate(cs, args.rounds, workload, label="workload",
                               strict=not args.shared)
            prof = {} if args.no_profile else bpf_profile(cs, wls, cg)
    finally:
        if pg:
            pg.stop()

    samples = rounds["samples"]
    rows, res_w, checks = [], {}, []
    names = {c.name for c in cs}
    # each method against the default's, round by round: (config, the one it varies)
    pairs = [(c.name, c.name.split("-")[0]) for c in cs
             if "-" in c.name and c.name.split("-")[0] in names and c.name != "podsnoop-ship"]
    cmp_rows = []
    for name, desc, _ in wls:
        res_w[name] = {"desc": desc, "configs": {}}
        for c in cs:
            runs = samples[c.name]
            st = stats([r.get(name) for r in runs])
            ratio = None if c.name == "untraced" else ratio_stats(samples, name, c.name)
            cpu = stats([r[name + "_cpu_pct"] for r in runs])
            res_w[name]["configs"][c.name] = {"stats": st, "ratio": ratio, "cpu_pct": cpu}
            rows.append([name, c.name, fmt_range(st, "%.2f"),
                         "1.00x" if c.name == "untraced" else fmt_ratio(ratio),
                         "-" if c.name == "untraced" else fmt_range(cpu, "%.1f"),
                         str(st["n"] if st else 0)])
        for cname, other in pairs:
            r = stats([a[name] / b[name] for a, b in zip(samples[cname], samples[other])
                       if a.get(name) is not None and b.get(name) is not None])
            res_w[name]["configs"][cname]["ratio_to_" + other] = r
            cmp_rows.append([name, "%s / %s" % (cname, other), fmt_ratio(r),
                             str(r["n"] if r else 0)])
        for c in cs:
            if not c.name.startswith(("podsnoop", "filtered")):
                continue
            emits = c.name.startswith("podsnoop")
            limit = DEFAULT_MAX if emits else FILTERED_MAX
            if not res_w[name]["configs"][c.name]["ratio"]:
                continue
            r = res_w[name]["configs"][c.name]["ratio"]["median"]
            peer_r = res_w[name]["configs"].get("libbpf-tools", {}).get("ratio")
            met = r <= limit and (not emits or not peer_r or r < peer_r["median"])
            checks.append("%s, %s: <= %.2fx%s -> %.2fx%s, %s" % (
                name, c.name, limit, " and below libbpf-tools" if emits else "",
                r, " (libbpf-tools %.2fx)" % peer_r["median"] if peer_r and emits else "",
                "met" if met else "MISSED"))
    table = markdown_table(["workload", "config", "seconds, median (min-max)",
                            "ratio to untraced, median of rounds (min-max)",
                            "tracer CPU % of a core, median (min-max)", "rounds"], rows)
    if cmp_rows:
        table += "\n\n" + markdown_table(["workload", "time ratio", "median of rounds (min-max)",
                                          "rounds"], cmp_rows)
    prof_rows = [[name, cname, "%.1f" % f["bpf_ms"], ", ".join(
        "%s %d x %.0f ns" % (x["name"], x["runs"], x["ns"] / x["runs"]) for x in f["progs"][:3])]
        for name, _, _ in wls for cname, per in prof.items() for f in [per[name]]]
    if prof_rows:
        table += "\n\n" + markdown_table(["workload", "config", "BPF ms per run (bpf_stats)",
                                          "programs that ran most: runs x ns per run"],
                                         prof_rows)
    rec_rows = []
    for c in cs[1:]:
        runs = samples[c.name]
        recs = [r.get("records") for r in runs if r.get("records") is not None]
        methods = sorted({r["methods"] for r in runs if r.get("methods")})
        rec_rows.append([c.name, c.desc, "%d-%d" % (min(recs), max(recs)) if recs else "-",
                         str(sum(r.get("lost") or 0 for r in runs)),
                         "; ".join(methods) or "-"])
    table += "\n\n" + markdown_table(["config", "what runs", "records per round (all "
                                      "workloads)", "events lost (all rounds)",
                                      "exec, open, fs hooked with"], rec_rows)
    res = {"scenario": "workload", "title": "whole workloads, each timed as a whole, in a "
           "cgroup of its own", "rounds": len(samples["untraced"]),
           "configs": {c.name: {"desc": c.desc, "runs": samples[c.name]} for c in cs},
           "workloads": res_w, "targets": [], "target_notes": checks, "bpf_profile": prof,
           "other_bpf": rounds["foreign"], "rounds_thrown_away": rounds["discarded"],
           "loadavg": stats(rounds["load"]), "table": table,
           "notes": ["workloads: " + "; ".join("%s: %s" % (n, d) for n, d, _ in wls)] + (
               ["not in the libbpf-tools set: %s (they do not attach on this kernel)" %
                ", ".join(cannot)] if cannot else []),
           "params": {"scale": args.scale, "pg_txns": args.pg_txns, "pg_scale": args.pg_scale,
                      "shared": args.shared}}
    return res


def add_args(ap):
    ap.add_argument("--scale", type=int, default=2, help="files: x5 tree copies; forkexec: "
                    "x300 iterations (default 2)")
    ap.add_argument("--pg-txns", type=int, default=1000,
                    help="pgbench transactions per client, read-write (read-only: 5x)")
    ap.add_argument("--pg-scale", type=int, default=2, help="pgbench -i -s")
    ap.add_argument("--no-pg", action="store_true", help="leave out pgbench")
    ap.add_argument("--no-peers", action="store_true", help="leave out the libbpf-tools set")
    ap.add_argument("--workloads", help="only these workloads, comma-separated")
    ap.add_argument("--configs", help="only these configurations, comma-separated "
                    "(untraced always runs)")
    ap.add_argument("--shared", action="store_true",
                    help="a machine other tracers run on too: only their programs on the "
                    "syscall hooks throw a round away (they change every syscall's path)")
    ap.add_argument("--no-profile", action="store_true",
                    help="leave out the BPF run-time profile run after the rounds")
    ap.add_argument("--quick", action="store_true",
                    help="small workloads: checks the machinery, measures nothing")


def _run(args):
    if args.quick:
        args.scale, args.pg_txns = 1, 100
    return run(args)


if __name__ == "__main__":
    scenario_main(_run, __doc__, add_args)
