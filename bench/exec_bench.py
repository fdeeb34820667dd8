#!/usr/bin/python3
"""exec() tracing cost: a fork()+execve() loop of /bin/true with arguments
(build/bench/execloop, a fixed count, each child waited for) in a cgroup of
its own, untraced and under each tracer, alternating round by round.

  untraced      nothing traces
  podsnoop      podsnoop -t exec --cgroup LOOP shipping to the reference
                collector (at nice 10): every exec of the loop is a record
  filtered      podsnoop -t exec --cgroup OTHER: dropped in the kernel
  execsnoop     Debian's libbpf-tools execsnoop (every task), to /dev/null
  execsnoop-cg  execsnoop -c OTHER: its cgroup filter excludes the loop

Run as root:  make bench  or  bench/exec_bench.py [--execs 5000] [--rounds 5]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (  # noqa: E402
    Cgroup, Config, Proc, Shipped, agent_counts, alternate, attached,
    need, peer, peer_lost, podsnoop, profile, ratio_result, records_cell, run_timed,
    scenario_main, target_lines, tool, foreign_notes)

EXECLOOP = tool("execloop")
ARGV = ["/bin/true", "--flag=value", "some-argument", "/etc/hostname"]


def run_loop(cg, n):
    return run_timed(cg, [EXECLOOP, n] + ARGV, n, "the loop's children exiting 0")


def configs(loop, other, peers=True):
    cs = [
        Config("untraced", "nothing"),
        Config("podsnoop", "podsnoop -t exec --cgroup LOOP -> collector (at nice 10)",
               lambda: Shipped("-t", "exec", "--cgroup", loop.path, nice=10),
               agent_counts("exec")),
        Config("filtered", "podsnoop -t exec --cgroup OTHER (loop dropped in the kernel)",
               lambda: podsnoop("-t", "exec", "--cgroup", other.path), agent_counts("exec")),
    ]
    execsnoop = peer("execsnoop")
    if peers and execsnoop:
        cs += [
            Config("execsnoop", "Debian execsnoop (all tasks) > /dev/null",
                   lambda: Proc([execsnoop], ready=attached()),
                   lambda e: {"lost": peer_lost(e)}),
            Config("execsnoop-cg", "execsnoop -c OTHER > /dev/null",
                   lambda: Proc([execsnoop, "-c", other.path], ready=attached()),
                   lambda e: {"lost": peer_lost(e)}),
        ]
    return cs


def run(args):
    need(EXECLOOP)
    with Cgroup() as loop, Cgroup() as other:
        cs = configs(loop, other, peers=not args.no_peers)
        run_loop(loop, max(1, args.execs // 10))

        def workload(c):
            ns = run_loop(loop, args.execs)
            return {"value": ns / args.execs / 1000.0, "ns": ns}
        rounds = alternate(cs, args.rounds, workload, label="exec")
        prof = None if args.no_profile else profile(cs, workload, args.execs)

    res = ratio_result(
        "exec", "exec(): %d fork()+execve(%s) per run, each waited for" % (
            args.execs, " ".join(ARGV)), cs, rounds, "us per fork+exec", "%.1f",
        targets=[("podsnoop", 1.05, "every exec a record: <= 1.05x, zero loss")],
        extra=records_cell, prof=prof)
    res["params"] = {"execs": args.execs, "argv": ARGV}
    res["notes"] = foreign_notes(res)
    res["target_notes"] = target_lines(res)
    return res


def add_args(ap):
    ap.add_argument("--execs", type=int, default=5000, help="fork+exec per run")


if __name__ == "__main__":
    scenario_main(run, __doc__, add_args, tracer_flags=True)
