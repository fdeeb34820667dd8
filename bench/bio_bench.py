#!/usr/bin/python3
"""Block I/O tracing cost: 4 KiB O_DIRECT random reads at queue depth 1
(build/bench/bioloop, a fixed count) on a loop device backed by a file in
/dev/shm (the same work every run: no disk, no page cache, the loop driver's
worker copies from tmpfs), from a cgroup of its own, untraced and under each
tracer, alternating round by round.

  untraced    nothing traces
  podsnoop       podsnoop -t bio --bio-min-us 0 --cgroup LOOP, NDJSON to
                 /dev/null: latency histograms and a record per request
  podsnoop-hist  podsnoop -t bio --cgroup LOOP: histograms, records only for
                 requests of 10 ms and more (the default), so none here
  filtered       podsnoop -t bio --bio-min-us 0 --cgroup OTHER: not selected
  biolatency     Debian's libbpf-tools biolatency (every device), histogram at exit

The figure is the time per read (its inverse is the IOPS); the ratio is the
IOPS cost: untraced IOPS / traced IOPS.
Run as root:  make bench  or  bench/bio_bench.py [--reads 50000] [--rounds 5]
"""
import os
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (  # noqa: E402
    Cgroup, Config, Proc, agent_counts, alternate, attached, need, peer,
    peer_lost, podsnoop, profile, ratio_result, run_timed, scenario_main,
    target_lines, tool, foreign_notes)

BIOLOOP = tool("bioloop")


class LoopDevice:
    """A loop device over a sparse file in /dev/shm."""

    def __init__(self, size_mb):
        self.file = "/dev/shm/ps-bio-bench-%s.img" % uuid.uuid4().hex[:8]
        with open(self.file, "wb") as f:
            f.truncate(size_mb << 20)
        try:
            self.dev = subprocess.run(["losetup", "--find", "--show", self.file],
                                      capture_output=True, text=True, check=True).stdout.strip()
        except Exception:
            os.unlink(self.file)
            raise

    def remove(self):
        subprocess.run(["losetup", "-d", self.dev], check=False)
        os.unlink(self.file)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def run_loop(cg, n, dev, seed):
    return run_timed(cg, [BIOLOOP, n, dev, seed], n, "the loop's reads")


def configs(loop, other, peers=True):
    cs = [
        Config("untraced", "nothing"),
        Config("podsnoop", "podsnoop -t bio --bio-min-us 0 --cgroup LOOP, NDJSON to /dev/null "
               "(histograms + a record per request)",
               lambda: podsnoop("-t", "bio", "--bio-min-us", "0", "--cgroup", loop.path),
               agent_counts("bio")),
        Config("podsnoop-hist", "podsnoop -t bio --cgroup LOOP (histograms; records only "
               "for requests >= 10 ms)",
               lambda: podsnoop("-t", "bio", "--cgroup", loop.path), agent_counts("bio")),
        Config("filtered", "podsnoop -t bio --bio-min-us 0 --cgroup OTHER",
               lambda: podsnoop("-t", "bio", "--bio-min-us", "0", "--cgroup", other.path),
               agent_counts("bio")),
    ]
    biolatency = peer("biolatency")
    if peers and biolatency:
        cs.append(Config("biolatency", "Debian biolatency (all devices) > /dev/null",
                         lambda: Proc([biolatency], ready=attached()),
                         lambda e: {"lost": peer_lost(e)}))
    return cs


def run(args):
    need(BIOLOOP)
    seq = [0]
    with LoopDevice(args.size_mb) as ld, Cgroup() as loop, Cgroup() as other:
        cs = configs(loop, other, peers=not args.no_peers)
        run_loop(loop, max(1, args.reads // 10), ld.dev, 1)

        def workload(c):
            seq[0] += 1
            ns = run_loop(loop, args.reads, ld.dev, seq[0])
            return {"value": ns / args.reads / 1000.0, "ns": ns,
                    "iops": args.reads / (ns / 1e9)}
        rounds = alternate(cs, args.rounds, workload, label="bio")
        prof = None if args.no_profile else profile(cs, workload, args.reads)

    def iops(name, runs):
        v = sorted(r["iops"] for r in runs)
        em = [r["emitted"] for r in runs if "emitted" in r]
        return "%.0f IOPS (median)%s" % (v[len(v) // 2], "; records %d-%d per run" % (
            min(em), max(em)) if em else "")
    res = ratio_result(
        "bio", "block I/O: %d random 4 KiB O_DIRECT reads per run, queue depth 1, on a loop "
        "device over /dev/shm" % args.reads, cs, rounds, "us per read", "%.2f",
        targets=[("podsnoop", 1.02, "histograms + a record per request: <= 1.02x IOPS cost, "
                  "zero loss")],
        extra=iops, extra_header="IOPS; records", prof=prof)
    res["params"] = {"reads": args.reads, "device_mb": args.size_mb}
    res["notes"] = foreign_notes(res)
    res["target_notes"] = target_lines(res)
    return res


def add_args(ap):
    ap.add_argument("--reads", type=int, default=50000, help="reads per run")
    ap.add_argument("--size-mb", type=int, default=256, help="loop device size")


if __name__ == "__main__":
    scenario_main(run, __doc__, add_args, tracer_flags=True)
