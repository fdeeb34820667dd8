#!/usr/bin/python3
"""open() tracing cost: an openat()+close() loop (build/bench/openloop, a fixed
count) in a cgroup of its own, untraced and under each tracer, the
configurations alternating round by round.

  untraced         nothing traces
  podsnoop         podsnoop -t open --cgroup LOOP shipping to the reference
                   collector (NDJSON to /dev/null): every open of the loop
                   is a record, delivered end to end
  podsnoop-ndjson  the same, NDJSON on stdout to /dev/null (no shipping)
  filtered         podsnoop -t open --cgroup OTHER: the loop is outside the
                   selection, its opens are dropped in the kernel
  floor            two empty programs on sys_enter_openat / sys_exit_openat
                   (bench/tp_floor*): what the hooks cost before any work
  opensnoop        Debian's libbpf-tools opensnoop (every task; it has no
                   cgroup filter), output to /dev/null
  opensnoop-pid    opensnoop -p PID of another process: the loop filtered out

Run as root:  make bench  or  bench/open_bench.py [--opens 200000] [--rounds 5]
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (Cgroup, Config, Proc, Shipped, alternate, attached, collector_counts,  # noqa: E402
                      logged, need, peer, peer_lost, podsnoop, podsnoop_counts, profile,
                      ratio_result,
                      scenario_main, target_lines, tool)


OPENLOOP = tool("openloop")
FLOOR = tool("tp_floor")
FLOOR_OBJ = tool("tp_floor.bpf.o")


def run_loop(cg, opens, path):
    out = cg.run([OPENLOOP, str(opens), path], capture_output=True, check=True,
                 text=True).stdout.split()
    ns, ok = int(out[0]), int(out[1])
    if ok != opens:
        raise RuntimeError("the loop's opens failed: %d of %d" % (ok, opens))
    return ns


def agent_counts(err):
    c = podsnoop_counts(err, "open")
    if "accepted" in err:
        c.update(collector_counts(err))
        c["undelivered"] = c["emitted"] - c["delivered"]
    return c


def configs(loop, other, peers=True):
    cs = [
        Config("untraced", "nothing"),
        Config("podsnoop", "podsnoop -t open --cgroup LOOP -> collector",
               lambda: Shipped("-t", "open", "--cgroup", loop.path), agent_counts),
        Config("podsnoop-ndjson", "podsnoop -t open --cgroup LOOP, NDJSON to /dev/null",
               lambda: podsnoop("-t", "open", "--cgroup", loop.path), agent_counts),
        Config("filtered", "podsnoop -t open --cgroup OTHER (loop dropped in the kernel)",
               lambda: podsnoop("-t", "open", "--cgroup", other.path), agent_counts),
        Config("floor", "2 empty programs on sys_{enter,exit}_openat",
               lambda: Proc([FLOOR, FLOOR_OBJ], ready=logged("ready"))),
    ]
    opensnoop = peer("opensnoop")
    if peers and opensnoop:
        cs += [
            Config("opensnoop", "Debian opensnoop (all tasks) > /dev/null",
                   lambda: Proc([opensnoop], ready=attached()),
                   lambda e: {"lost": peer_lost(e)}),
            Config("opensnoop-pid", "opensnoop -p OTHER_PID > /dev/null",
                   lambda: Proc([opensnoop, "-p", str(os.getpid())], ready=attached()),
                   lambda e: {"lost": peer_lost(e)}),
        ]
    return cs


def run(args):
    need(OPENLOOP, FLOOR, FLOOR_OBJ)
    fd, path = tempfile.mkstemp(prefix="ps-open-bench-")
    os.close(fd)
    try:
        with Cgroup() as loop, Cgroup() as other:
            cs = configs(loop, other, peers=not args.no_peers)
            run_loop(loop, args.opens // 10, path)  # page cache, dentries

            def workload(c):
                ns = run_loop(loop, args.opens, path)
                return {"value": ns / args.opens, "ns": ns}
            rounds = alternate(cs, args.rounds, workload, label="open")
            prof = None if args.no_profile else profile(cs, workload, args.opens)
    finally:
        os.unlink(path)

    def records(name, runs):
        em = [r["emitted"] for r in runs if "emitted" in r]
        return "%d-%d per run" % (min(em), max(em)) if em else "-"
    res = ratio_result(
        "open", "open(): %d openat()+close() per run, one process" % args.opens, cs, rounds,
        "ns per open+close", "%.0f",
        targets=[("podsnoop", 1.3, "every open a record: <= 1.3x, zero loss"),
                 ("filtered", 1.03, "filtered out in the kernel: <= 1.03x, zero loss")],
        extra=records, prof=prof)
    res["params"] = {"opens": args.opens}
    res["notes"] = target_lines(res)
    return res


def add_args(ap):
    ap.add_argument("--no-profile", action="store_true",
                    help="skip the extra run per tracer with BPF run-time statistics on")
    ap.add_argument("--opens", type=int, default=200000, help="open+close pairs per run")
    ap.add_argument("--no-peers", action="store_true", help="leave out Debian's opensnoop")


if __name__ == "__main__":
    scenario_main(run, __doc__, add_args)
