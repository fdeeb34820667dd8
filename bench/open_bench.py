#!/usr/bin/python3
"""open() tracing cost: an openat()+close() loop (build/bench/openloop, a fixed
count) in a cgroup of its own, untraced and under each tracer, the
configurations alternating round by round.

  untraced         nothing traces
  podsnoop         podsnoop -t open --cgroup LOOP shipping to the reference
                   collector (NDJSON to /dev/null; at nice 10, as it runs on
                   another machine in production): every open of the loop is
                   a record, delivered end to end
  podsnoop-ndjson  the same, NDJSON on stdout to /dev/null (no shipping)
  filtered         podsnoop -t open --cgroup OTHER: the loop is outside the
                   selection, its opens are dropped in the kernel
  floor            two empty programs on sys_enter_openat / sys_exit_openat
                   (bench/tp_floor*): what the hooks cost before any work
  floor-twice      the same empty programs attached twice: what a second
                   program on an already-hooked tracepoint adds
  opensnoop        Debian's libbpf-tools opensnoop (every task; it has no
                   cgroup filter), output to /dev/null
  opensnoop-pid    opensnoop -p PID of another process: the loop filtered out

Run as root:  make bench  or  bench/open_bench.py [--opens 200000] [--rounds 5]
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (  # noqa: E402
    Cgroup, Config, Proc, Shipped, agent_counts, alternate, attached,
    fmt_ratio, logged, need, peer, peer_lost, podsnoop, profile,
    ratio_result, records_cell, run_timed, scenario_main, stats, target_lines, tool,
    foreign_notes)


OPENLOOP = tool("openloop")
FLOOR = tool("tp_floor")
FLOOR_OBJ = tool("tp_floor.bpf.o")


def run_loop(cg, opens, path):
    return run_timed(cg, [OPENLOOP, opens, path], opens, "the loop's opens")


class Pair:
    """Two background processes as one configuration."""

    def __init__(self, a, b):
        self.a, self.b, self.pid = a, b, a.pid

    def stop(self):
        return self.a.stop() + self.b.stop()


def configs(loop, other, peers=True):
    cs = [
        Config("untraced", "nothing"),
        Config("podsnoop", "podsnoop -t open --cgroup LOOP -> collector (at nice 10)",
               lambda: Shipped("-t", "open", "--cgroup", loop.path, nice=10),
               agent_counts("open")),
        Config("podsnoop-ndjson", "podsnoop -t open --cgroup LOOP, NDJSON to /dev/null",
               lambda: podsnoop("-t", "open", "--cgroup", loop.path), agent_counts("open")),
        Config("filtered", "podsnoop -t open --cgroup OTHER (loop dropped in the kernel)",
               lambda: podsnoop("-t", "open", "--cgroup", other.path), agent_counts("open")),
        Config("floor", "2 empty programs on sys_{enter,exit}_openat",
               lambda: Proc([FLOOR, FLOOR_OBJ], ready=logged("ready"))),
        Config("floor-twice", "the same empty programs attached twice",
               lambda: Pair(Proc([FLOOR, FLOOR_OBJ], ready=logged("ready")),
                            Proc([FLOOR, FLOOR_OBJ], ready=logged("ready")))),
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

    res = ratio_result(
        "open", "open(): %d openat()+close() per run, one process" % args.opens, cs, rounds,
        "ns per open+close", "%.0f",
        targets=[("podsnoop", 1.3, "every open a record: <= 1.3x, zero loss"),
                 ("filtered", 1.03, "filtered out in the kernel: <= 1.03x, zero loss")],
        extra=records_cell, prof=prof)
    res["params"] = {"opens": args.opens}
    res["notes"] = foreign_notes(res)
    res["target_notes"] = target_lines(res)
    f1, f2 = res["configs"]["floor"]["runs"], res["configs"]["floor-twice"]["runs"]
    marginal = [b["value"] / a["value"] for a, b in zip(f1, f2)]
    res["floor_second_ratio"] = stats(marginal)
    res["notes"].append(
        "the hooks' floor: empty programs on the two tracepoints cost %s of the untraced loop; "
        "the same programs attached twice, per round against the floor: %.3fx (%.3f-%.3f). "
        "The first BPF program on a syscall tracepoint pays the kernel's perf dispatch on "
        "every call; more programs there add only their own run time" % (
            fmt_ratio(res["configs"]["floor"]["ratio"]), res["floor_second_ratio"]["median"],
            res["floor_second_ratio"]["min"], res["floor_second_ratio"]["max"]))
    return res


def add_args(ap):
    ap.add_argument("--opens", type=int, default=200000, help="open+close pairs per run")


if __name__ == "__main__":
    scenario_main(run, __doc__, add_args, tracer_flags=True)
