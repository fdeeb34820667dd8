#!/usr/bin/python3
"""exec() tracing cost: a fork()+execve() loop of /bin/true with arguments
(build/bench/execloop, a fixed count, each child waited for) in a cgroup of
its own, untraced and under each tracer, alternating round by round.

  untraced      nothing traces
  podsnoop      podsnoop -t exec --cgroup LOOP shipping to the reference
                collector: every exec of the loop is a record
  filtered      podsnoop -t exec --cgroup OTHER: dropped in the kernel
  execsnoop     Debian's libbpf-tools execsnoop (every task), to /dev/null
  execsnoop-cg  execsnoop -c OTHER: its cgroup filter excludes the loop

Run as root:  make bench  or  bench/exec_bench.py [--execs 5000] [--rounds 5]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (Cgroup, Config, Proc, Shipped, alternate, attached, collector_counts,  # noqa: E402
                      need, peer, peer_lost, podsnoop, podsnoop_counts, profile,
                      ratio_result,
                      scenario_main, target_lines, tool)

EXECLOOP = tool("execloop")
ARGV = ["/bin/true", "--flag=value", "some-argument", "/etc/hostname"]


def run_loop(cg, n):
    out = cg.run([EXECLOOP, str(n)] + ARGV, capture_output=True, check=True,
                 text=True).stdout.split()
    ns, ok = int(out[0]), int(out[1])
    if ok != n:
        raise RuntimeError("the loop's children failed: %d of %d exited 0" % (ok, n))
    return ns


def agent_counts(err):
    c = podsnoop_counts(err, "exec")
    if "accepted" in err:
        c.update(collector_counts(err))
        c["undelivered"] = c["emitted"] - c["delivered"]
    return c


def configs(loop, other, peers=True):
    cs = [
        Config("untraced", "nothing"),
        Config("podsnoop", "podsnoop -t exec --cgroup LOOP -> collector",
               lambda: Shipped("-t", "exec", "--cgroup", loop.path), agent_counts),
        Config("filtered", "podsnoop -t exec --cgroup OTHER (loop dropped in the kernel)",
               lambda: podsnoop("-t", "exec", "--cgroup", other.path), agent_counts),
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

    def records(name, runs):
        em = [r["emitted"] for r in runs if "emitted" in r]
        return "%d-%d per run" % (min(em), max(em)) if em else "-"
    res = ratio_result(
        "exec", "exec(): %d fork()+execve(%s) per run, each waited for" % (
            args.execs, " ".join(ARGV)), cs, rounds, "us per fork+exec", "%.1f",
        targets=[("podsnoop", 1.05, "every exec a record: <= 1.05x, zero loss")],
        extra=records, prof=prof)
    res["params"] = {"execs": args.execs, "argv": ARGV}
    res["notes"] = target_lines(res)
    return res


def add_args(ap):
    ap.add_argument("--no-profile", action="store_true",
                    help="skip the extra run per tracer with BPF run-time statistics on")
    ap.add_argument("--execs", type=int, default=5000, help="fork+exec per run")
    ap.add_argument("--no-peers", action="store_true", help="leave out Debian's execsnoop")


if __name__ == "__main__":
    scenario_main(run, __doc__, add_args)
