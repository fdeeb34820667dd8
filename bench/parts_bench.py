#!/usr/bin/python3
"""What the parts of a traced open() cost here, one at a time: each program of
bench/parts.bpf.c does one thing podsnoop's open tracer does per record
(a timestamp, the path read from user memory, the task's identity, the
per-call task storage, the copy into the ring buffer) and is attached alone to
sys_enter_getppid; a getppid() loop (build/bench/sysloop) pays it on every
call. A part's cost is its run's time per call minus the empty program's of
the same round; the empty program's minus the untraced run's is the hook's.

Why: the open scenario's targets are ratios of a ~2 us open+close; these
figures say how many nanoseconds each unavoidable part takes of that budget
(run.py puts the two side by side when both scenarios ran).

Run as root:  make bench  or  bench/parts_bench.py [--calls 1000000] [--rounds 5]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (  # noqa: E402
    Cgroup, Config, Proc, alternate, fmt_range, logged, markdown_table, need,
    scenario_main, stats, summarize, tool)

SYSLOOP = tool("sysloop")
LOADER = tool("tp_floor")
PARTS_OBJ = tool("parts.bpf.o")

# program, what it does; the open tracer's record takes each part this many times
PARTS = [
    ("p_empty", "empty program (a per-CPU lookup)", 0),
    ("p_helper", "one call of the cheapest helper", 0),
    ("p_clock", "a timestamp (bpf_ktime_get_boot_ns)", 2),
    ("p_user_read", "a ~30-byte string from user memory (bpf_probe_read_user_str)", 1),
    ("p_kernel_read", "the same size from kernel memory (bpf_probe_read_kernel_str)", 0),
    ("p_task_fields", "cgroup id, pids, uid, mntns, comm through trusted pointers", 1),
    ("p_task_storage", "task storage get (creating) and write", 1),
    ("p_ring_output", "a 120-byte record into the ring buffer", 1),
]


def configs():
    cs = [Config("untraced", "nothing")]
    for prog, desc, _ in PARTS:
        cs.append(Config(prog, desc, (lambda p=prog: Proc([LOADER, PARTS_OBJ, p],
                                                          ready=logged("ready")))))
    return cs


def run(args):
    need(SYSLOOP, LOADER, PARTS_OBJ)
    cs = configs()
    with Cgroup() as cg:
        def workload(c):
            out = cg.run([SYSLOOP, str(args.calls)], capture_output=True, check=True,
                         text=True).stdout.split()
            return {"value": int(out[0]) / args.calls}
        rounds = alternate(cs, args.rounds, workload, label="parts")
    samples = rounds["samples"]
    summ = summarize(samples)
    empty = samples["p_empty"]
    res_cfgs, rows = {}, []
    for c in cs:
        vals = [r["value"] for r in samples[c.name]]
        if c.name == "untraced":
            added = None
        elif c.name == "p_empty":
            added = stats([v - u["value"] for v, u in zip(vals, samples["untraced"])])
        else:
            added = stats([v - e["value"] for v, e in zip(vals, empty)])
        res_cfgs[c.name] = {"desc": c.desc, "stats": summ[c.name]["stats"], "added_ns": added,
                            "runs": samples[c.name]}
        rows.append([c.name, c.desc, fmt_range(summ[c.name]["stats"], "%.0f"),
                     "-" if added is None else
                     ("%s (the hook)" if c.name == "p_empty" else "%s") %
                     fmt_range(added, "%.0f")])
    per_record = [(p, n) for p, _, n in PARTS if n]
    total = sum(res_cfgs[p]["added_ns"]["median"] * n for p, n in per_record)
    res = {"scenario": "parts",
           "title": "parts of a traced open(): one program at a time on sys_enter_getppid, "
                    "%d getppid() per run" % args.calls,
           "rounds": len(empty), "configs": res_cfgs, "other_bpf": rounds["foreign"],
           "rounds_thrown_away": rounds["discarded"], "loadavg": stats(rounds["load"]),
           "params": {"calls": args.calls}, "parts_per_record_ns": total,
           "table": markdown_table(
               ["program", "what it does", "ns per getppid(), median (min-max)",
                "ns it adds, median of rounds (min-max): to the empty program; "
                "the empty program to untraced"], rows)}
    res["notes"] = [
        "what an open record needs of these, whatever the hook: %s = %.0f ns per open" % (
            " + ".join("%s%s" % ("%d x " % n if n > 1 else "", p) for p, n in per_record),
            total)]
    return res


def budget_note(open_res, parts_res):
    """The open scenario's 1.3x target in nanoseconds, against the hook's floor
    and the parts (both runs of the same `make bench`)."""
    c = open_res["configs"]
    base = c["untraced"]["stats"]["median"]
    floor = c["floor"]["stats"]["median"] - base
    emit = c["podsnoop"]["stats"]["median"] - base
    parts = parts_res["parts_per_record_ns"]
    return ("the 1.3x target of an emitting open is %.0f ns over the untraced open+close "
            "(%.0f ns); the syscall tracepoints' empty programs take %.0f of it and the "
            "parts every record needs %.0f more: %.0f ns (%.2fx) before any selection, "
            "counting or reading the ring; podsnoop measured %.0f ns (%.2fx) in this run" % (
                0.3 * base, base, floor, parts, floor + parts, 1 + (floor + parts) / base,
                emit, 1 + emit / base))


def add_args(ap):
    ap.add_argument("--calls", type=int, default=1000000, help="getppid() calls per run")


if __name__ == "__main__":
    scenario_main(run, __doc__, add_args)
