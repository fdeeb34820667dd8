#!/usr/bin/env python3
"""open() tracing cost: an openat()+close() loop, untraced and under each tracer,
alternating the configurations round by round in one run (this VM's speed drifts
by 10-25% between runs, so only figures from the same run are compared).

Configurations (the loop always runs in a cgroup v2 directory made here):
  untraced    no tracer
  podsnoop    podsnoop -t open --cgroup LOOP_CGROUP, NDJSON to /dev/null: every
              open of the loop is a record
  filtered    podsnoop -t open --cgroup OTHER_CGROUP: the loop is outside the
              selection, its opens are dropped in the kernel
  opensnoop   Debian's libbpf-tools opensnoop, output to /dev/null (traces every
              task; it has no cgroup filter)
  floor       programs that do nothing on the same two tracepoints (bench/tp_floor*):
              what hooking sys_{enter,exit}_openat costs before any work is done

Prints, per configuration, the median time of the loop, the median of the
per-round ratios to the untraced run of the same round, the ratio of the
fastest runs (the least disturbed by whatever else runs on the machine), and
the events lost.
Run as root:  bench/open_bench.py [--opens 200000] [--rounds 9] [--json FILE]
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(REPO, "build")
AGENT = os.path.join(BUILD, "podsnoop")
LOOP_SRC = os.path.join(REPO, "bench", "openloop.c")
LOOP_BIN = os.path.join(BUILD, "bench", "openloop")
FLOOR_SRC = os.path.join(REPO, "bench", "tp_floor")
FLOOR_OBJ = os.path.join(BUILD, "bench", "tp_floor.bpf.o")
FLOOR_BIN = os.path.join(BUILD, "bench", "tp_floor")
OPENSNOOP = shutil.which("opensnoop") or "/usr/sbin/opensnoop"

sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
from podsnoop_harness import cgroup2_mount  # noqa: E402


def stale(out, src):
    return not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src)


def build():
    os.makedirs(os.path.dirname(LOOP_BIN), exist_ok=True)
    if stale(LOOP_BIN, LOOP_SRC):
        subprocess.run(["gcc", "-O2", "-o", LOOP_BIN, LOOP_SRC], check=True)
    arch = {"x86_64": "x86", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    if stale(FLOOR_OBJ, FLOOR_SRC + ".bpf.c"):
        subprocess.run(["clang", "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_" + arch,
                        "-I" + os.path.join(REPO, "bpf", "vmlinux", arch),
                        "-c", FLOOR_SRC + ".bpf.c", "-o", FLOOR_OBJ], check=True)
    if stale(FLOOR_BIN, FLOOR_SRC + ".c"):
        subprocess.run(["gcc", "-O2", "-o", FLOOR_BIN, FLOOR_SRC + ".c", "-lbpf", "-lelf",
                        "-lz"], check=True)


def run_loop(cgroup, opens, path):
    procs = os.path.join(cgroup, "cgroup.procs")

    def enter():
        with open(procs, "w") as f:
            f.write("0")
    out = subprocess.run([LOOP_BIN, str(opens), path], preexec_fn=enter,
                         capture_output=True, check=True, text=True).stdout.split()
    ns, ok = int(out[0]), int(out[1])
    if ok != opens:
        sys.exit("the loop's opens failed: %d of %d" % (ok, opens))
    return ns


class Tracer:
    """A tracer process in the background, started and ready, stopped with SIGINT."""

    def __init__(self, argv, ready):
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit("%s exited: %s" % (argv[0], self.stderr()))
            if ready(self):
                return
            time.sleep(0.05)
        self.proc.kill()
        sys.exit("%s did not become ready: %s" % (argv[0], self.stderr()))

    def stderr(self):
        self.err.seek(0)
        return self.err.read()

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.stderr()


def podsnoop(select_cgroup):
    return Tracer([AGENT, "-t", "open", "--cgroup", select_cgroup],
                  lambda t: "info: ready" in t.stderr())


def podsnoop_counts(err):
    m = re.search(r"open: seen (\d+), filtered (\d+), emitted (\d+), lost (\d+) \(ring buffer "
                  r"full\), (\d+) \(map full\)", err)
    if not m:
        sys.exit("no podsnoop summary in:\n" + err)
    seen, filtered, emitted, lost, map_full = map(int, m.groups())
    return {"seen": seen, "filtered": filtered, "emitted": emitted, "lost": lost + map_full}


def opensnoop():
    # it prints its header once attached; give the header a moment to reach stdout too
    t = Tracer(["stdbuf", "-oL", OPENSNOOP], lambda t: True)
    time.sleep(1.5)
    return t


def opensnoop_counts(err):
    lost = sum(int(n) for n in re.findall(r"[Ll]ost (\d+) events", err))
    return {"lost": lost}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--opens", type=int, default=200000, help="open+close pairs per run")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--no-opensnoop", action="store_true")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the tracers load BPF programs")
    if not os.access(AGENT, os.X_OK):
        sys.exit("build podsnoop first: make")
    build()

    base = cgroup2_mount()
    loop_cg = os.path.join(base, "psbench-loop-" + uuid.uuid4().hex[:8])
    other_cg = os.path.join(base, "psbench-other-" + uuid.uuid4().hex[:8])
    os.mkdir(loop_cg)
    os.mkdir(other_cg)
    fd, path = tempfile.mkstemp(prefix="psbench-open-")
    os.close(fd)

    configs = ["untraced", "podsnoop", "filtered", "floor"]
    if not args.no_opensnoop and os.path.exists(OPENSNOOP):
        configs.append("opensnoop")
    times = {c: [] for c in configs}
    ratios = {c: [] for c in configs}
    counts = {c: [] for c in configs}
    try:
        run_loop(loop_cg, args.opens // 10, path)  # warm up page cache and dentries
        for r in range(args.rounds):
            order = configs[r % len(configs):] + configs[:r % len(configs)]
            row = {}
            for c in order:
                if c == "untraced":
                    row[c] = run_loop(loop_cg, args.opens, path)
                elif c == "podsnoop":
                    t = podsnoop(loop_cg)
                    row[c] = run_loop(loop_cg, args.opens, path)
                    counts[c].append(podsnoop_counts(t.stop()))
                elif c == "floor":
                    t = Tracer([FLOOR_BIN, FLOOR_OBJ], lambda t: "ready" in t.stderr())
                    row[c] = run_loop(loop_cg, args.opens, path)
                    t.stop()
                elif c == "filtered":
                    t = podsnoop(other_cg)
                    row[c] = run_loop(loop_cg, args.opens, path)
                    counts[c].append(podsnoop_counts(t.stop()))
                else:
                    t = opensnoop()
                    row[c] = run_loop(loop_cg, args.opens, path)
                    counts[c].append(opensnoop_counts(t.stop()))
            for c in configs:
                times[c].append(row[c])
                ratios[c].append(row[c] / row["untraced"])
            print("round %d: %s" % (r + 1, "  ".join("%s %.3fs (%.2fx)" % (
                c, row[c] / 1e9, row[c] / row["untraced"]) for c in configs)), flush=True)
    finally:
        os.unlink(path)
        for cg in (loop_cg, other_cg):
            try:
                os.rmdir(cg)
            except OSError:
                pass

    print()
    print("%d openat()+close() per run, %d rounds, one loop process on %s" % (
        args.opens, args.rounds, os.uname().release))
    print("%-10s %10s %9s %8s %8s %s" % ("config", "median s", "us/open", "ratio", "min-ratio",
                                          "events lost"))
    result = {"opens": args.opens, "rounds": args.rounds, "configs": {}}
    for c in configs:
        med = statistics.median(times[c])
        ratio = statistics.median(ratios[c])
        lost = sum(x["lost"] for x in counts[c]) if counts[c] else 0
        extra = ""
        if c in ("podsnoop", "filtered"):
            em = [x["emitted"] for x in counts[c]]
            extra = " (records emitted per run: min %d, max %d)" % (min(em), max(em))
        min_ratio = min(times[c]) / min(times["untraced"])
        print("%-10s %10.3f %9.2f %7.2fx %7.2fx  %s%s" % (
            c, med / 1e9, med / args.opens / 1e3, ratio, min_ratio,
            lost if counts[c] else "-", extra))
        result["configs"][c] = {"median_ns": med, "ratio": ratio, "min_ratio": min_ratio,
                                "ratios": ratios[c],
                                "times_ns": times[c], "counts": counts[c]}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
