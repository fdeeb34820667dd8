#!/usr/bin/python3
"""Start-up: time from starting the agent to its "ready" line (every tracer's
programs loaded and attached, the ring buffers polled), and what it then holds:
memory charged for its BPF maps (ring buffers included) and programs (from
/proc/PID/fdinfo), its RSS and PSS, and everything charged to the memory
cgroup it runs in alone (memory.usage_in_bytes or memory.current: BPF maps,
page tables and the process's own pages: the figure a container limit sees). All tracers, then each alone, alternating
round by round; Debian's libbpf-tools for comparison of the memory (their
start is not timed: they print nothing once attached).

Run as root:  make bench  or  bench/startup_bench.py [--rounds 5]
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (  # noqa: E402
    AGENT, Config, MemCgroup, Proc, alternate, attached, bpf_memlock, fmt_range,
    logged, markdown_table, need, peer, pss_kb, scenario_main, stats, status_kb)

TRACERS = ["exec", "open", "bio", "fs", "cache"]
PEERS = ["execsnoop", "opensnoop", "biolatency"]
MEM_TARGET_MIB = 32  # charged to the default agent's cgroup (bench/README.md)


def run(args):
    need(AGENT)
    cur = {}

    def in_memcg(argv, ready):
        cg = MemCgroup()
        try:
            p = Proc(argv, ready=ready, preexec_fn=cg.enter)
        except Exception:
            cg.remove()
            raise
        stop = p.stop

        def stop_and_remove():
            try:
                return stop()
            finally:
                cg.remove()
        p.stop, cur["p"], cur["cg"] = stop_and_remove, p, cg
        return p

    def start_agent(*flags):
        return lambda: in_memcg([AGENT, "--cri-socket", "none"] + list(flags),
                                logged("info: ready"))

    def start_peer(path):
        return lambda: in_memcg([path], attached())

    configs = [Config("all", "podsnoop (all tracers: %s)" % ", ".join(TRACERS),
                      start_agent())]
    configs += [Config(t, "podsnoop -t " + t, start_agent("-t", t)) for t in TRACERS]
    if not args.no_peers:
        configs += [Config(p, "Debian " + p, start_peer(peer(p))) for p in PEERS if peer(p)]

    def workload(c):
        p = cur["p"]
        time.sleep(0.3)
        m = bpf_memlock(p.pid)
        m.update({"value": p.ready_s * 1000 if c.name not in PEERS else None,
                  "rss_kb": status_kb(p.pid, "VmRSS"), "vmhwm_kb": status_kb(p.pid, "VmHWM"),
                  "pss_kb": pss_kb(p.pid), "charged_bytes": cur["cg"].charged()})
        return m
    rounds = alternate(configs, args.rounds, workload, label="start-up", strict=False)

    rows, res_cfgs, mib = [], {}, 1 << 20
    for c in configs:
        runs = rounds["samples"][c.name]
        st = stats([r["value"] for r in runs])
        last = runs[-1]
        rows.append([c.name, c.desc, fmt_range(st, "%.0f") if st else "-", last["progs"],
                     last["maps"], "%.1f" % (last["map_bytes"] / mib),
                     "%.1f" % (last["ringbuf_bytes"] / mib), "%.2f" % (last["prog_bytes"] / mib),
                     "%.1f" % (max(r["rss_kb"] for r in runs) / 1024),
                     "%.1f" % (max(r["pss_kb"] for r in runs) / 1024),
                     "%.1f" % (max(r["charged_bytes"] for r in runs) / mib)])
        res_cfgs[c.name] = {"desc": c.desc, "stats": st, "runs": runs}
    table = markdown_table(["config", "what", "ms to ready (all attached), median (min-max)",
                            "programs", "maps", "map memory MiB", "of which ring buffers MiB",
                            "program memory MiB", "RSS MiB at ready", "PSS MiB",
                            "charged to its memory cgroup MiB"], rows)
    a = res_cfgs["all"]
    notes = ["all tracers: ready in %.0f ms (median; %.0f-%.0f), %.1f MiB charged for BPF maps "
             "(%.1f MiB of it ring buffers, sized by --ringbuf-kb), %.2f MiB for programs; "
             "%.1f MiB charged to the agent's memory cgroup in all (max of rounds)" % (
                 a["stats"]["median"], a["stats"]["min"], a["stats"]["max"],
                 a["runs"][-1]["map_bytes"] / mib, a["runs"][-1]["ringbuf_bytes"] / mib,
                 a["runs"][-1]["prog_bytes"] / mib,
                 max(r["charged_bytes"] for r in a["runs"]) / mib),
             "RSS counts the ring buffers the reader maps; PSS splits pages shared with other "
             "processes (the binary, libraries); the cgroup's charge is what a memory limit on "
             "the agent's container sees"]
    charged = max(r["charged_bytes"] for r in a["runs"]) / mib
    target_notes = ["all tracers: target <= %d MiB charged to the agent's memory cgroup: "
                    "%.1f MiB, %s" % (MEM_TARGET_MIB, charged,
                                      "met" if charged <= MEM_TARGET_MIB else "MISSED")]
    return {"scenario": "startup", "target_notes": target_notes, "title": "start-up: agent start to every tracer attached; "
            "memory charged for BPF maps and programs (/proc/PID/fdinfo memlock)",
            "rounds": len(rounds["samples"]["all"]), "configs": res_cfgs, "targets": [],
            "notes": notes, "other_bpf": rounds["foreign"], "loadavg": stats(rounds["load"]),
            "table": table}


def add_args(ap):
    ap.add_argument("--no-peers", action="store_true", help="leave out Debian's libbpf-tools")


if __name__ == "__main__":
    scenario_main(run, __doc__, add_args)
