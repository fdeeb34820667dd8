#!/usr/bin/python3
"""Every benchmark in one run (`make bench`): open, the parts of an open record,
exec, block I/O, throughput, ingestion into ClickHouse, attribution delay, start-up,
whole workloads. Each scenario alternates its configurations round by round and
compares against the untraced runs of the same rounds.

Writes build/bench/results.json (after each scenario, so a failure keeps what
was measured) and bench/results/latest.json, prints every table, and after a
complete run rewrites the tables in docs/performance.md and the verdicts on the
internal targets in bench/README.md, each between its markers (--no-docs: not).

  make bench [BENCH_ARGS="--only open,exec --rounds 7 --no-docs"]
  /usr/bin/python3 bench/run.py [--only LIST] [--skip LIST] [--rounds N] [--quick]
"""
import argparse
import importlib
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

PERF_DOC = os.path.join(benchlib.REPO, "docs", "performance.md")
TARGETS_DOC = os.path.join(benchlib.REPO, "bench", "README.md")
LATEST = os.path.join(benchlib.REPO, "bench", "results", "latest.json")
BEGIN, END = "<!-- bench:begin (make bench rewrites this part) -->", "<!-- bench:end -->"
T_BEGIN = "<!-- bench:targets:begin (make bench rewrites this part) -->"
T_END = "<!-- bench:targets:end -->"

# name, module, rounds, parameters for `make bench`; --quick: a smoke run of the machinery
SCENARIOS = [
    ("open", "open_bench", 9, {"opens": 200000, "no_peers": False, "no_profile": False}, {"opens": 20000}),
    ("parts", "parts_bench", 5, {"calls": 1000000}, {"calls": 100000}),
    ("exec", "exec_bench", 7, {"execs": 4000, "no_peers": False, "no_profile": False}, {"execs": 300}),
    ("bio", "bio_bench", 9, {"reads": 60000, "size_mb": 256, "no_peers": False, "no_profile": False},
     {"reads": 3000}),
    ("throughput", "ship_bench", 5, {"rates": "10000,100000,0", "otlp_rates": "100000",
                                     "duration": 10, "procs": 2,
                                     "nice": 10, "repetitive": False}, {"duration": 2}),
    ("clickhouse", "ch_bench", 3, {"records": 1000000, "senders": 4, "batch_records": 5000},
     {"records": 50000}),
    ("attribution", "attrib_delay", 5, {"pods": 4}, {"pods": 1}),
    ("startup", "startup_bench", 5, {"no_peers": False}, {}),
    ("workload", "workload_bench", 5, {"scale": 2, "pg_txns": 1000, "pg_scale": 2, "no_pg": False,
                                       "no_peers": False, "quick": False},
     {"scale": 1, "pg_txns": 100}),
]


def measured_on(results):
    m = results["machine"]
    return ("Measured %s with `make bench` (%.0f minutes; `bench/run.py`, results in "
            "`bench/results/latest.json`) on: Linux %s, %s, %d CPUs (%s%s), %s GiB, "
            "clocksource %s; podsnoop %s, Debian libbpf-tools %s. Load average %.1f at the "
            "start." % (m["date"], results["duration_s"] / 60, m["kernel"], m["os"], m["cpus"],
                        m["cpu"], ", virtual machine" if m["virtualized"] else "",
                        m["memory_gib"], m["clocksource"], m["podsnoop_commit"],
                        m["libbpf_tools"] or "-", m["loadavg_start"]))


def render(results):
    """docs/performance.md's tables: machine, date, how to reproduce, every table."""
    m = results["machine"]
    out = [BEGIN, "", measured_on(results), ""]
    if m["other_bpf"]:
        out += ["Other BPF programs attached during the whole run (not ours; they are in every "
                "configuration, the untraced one included): " + "; ".join(m["other_bpf"]) + ".",
                ""]
    out += ["Every scenario alternates its configurations round by round (A, B, C, A, B, "
            "C, ...; the order rotates), so all figures of a table come from the same "
            "minutes; ratios are the median (min-max) of per-round ratios to the untraced "
            "run of the same round. A round during which another program attached or "
            "detached BPF programs is run again.", ""]
    for name, *_ in SCENARIOS:
        r = results["scenarios"].get(name)
        if not r:
            continue
        out += ["**%s** (%d rounds%s)" % (r["title"], r["rounds"], "; %d thrown away" % r[
            "rounds_thrown_away"] if r.get("rounds_thrown_away") else ""), "", r["table"], ""]
        out += ["- " + n for n in r.get("notes", [])]
        out.append("")
    out.append(END)
    return "\n".join(out)


def render_targets(results):
    """bench/README.md's verdicts: each internal target, met or missed, in this run."""
    out = [T_BEGIN, "", measured_on(results), ""]
    for name, *_ in SCENARIOS:
        r = results["scenarios"].get(name)
        if r and r.get("target_notes"):
            out += ["- %s: %s" % (name, n) for n in r["target_notes"]]
    out += ["", T_END]
    return "\n".join(out)


def update_doc(path, begin, end, section):
    with open(path) as f:
        text = f.read()
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: section, text,
                      flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    names = [s[0] for s in SCENARIOS]
    ap.add_argument("--only", help="scenarios to run, comma-separated: " + ",".join(names))
    ap.add_argument("--skip", default="", help="scenarios to leave out")
    ap.add_argument("--rounds", type=int, help="rounds for every scenario (default: per "
                    "scenario, at least 5)")
    ap.add_argument("--quick", action="store_true",
                    help="small counts and 2 rounds: checks the machinery, measures nothing")
    ap.add_argument("--json", default=os.path.join(benchlib.BENCH_BUILD, "results.json"))
    ap.add_argument("--no-docs", "--no-readme", dest="no_docs", action="store_true",
                    help="leave docs/performance.md and bench/README.md as they are")
    args = ap.parse_args()
    only = args.only.split(",") if args.only else names
    skip = args.skip.split(",") if args.skip else []
    for n in only + skip:
        if n not in names:
            ap.error("no scenario %r (scenarios: %s)" % (n, ", ".join(names)))
    benchlib.need(benchlib.AGENT)
    t0 = time.time()
    results = {"machine": benchlib.machine(), "command": " ".join(sys.argv),
               "scenarios": {}, "failed": {}}
    print("podsnoop benchmarks: " + benchlib.describe_machine(results["machine"]))
    for o in results["machine"]["other_bpf"]:
        print("  other BPF programs attached: " + o)
    for name, module, rounds, params, quick in SCENARIOS:
        if name not in only or name in skip:
            continue
        p = dict(params, **(quick if args.quick else {}))
        p["rounds"] = args.rounds or (2 if args.quick else rounds)
        print("\n== %s (%d rounds)" % (name, p["rounds"]), flush=True)
        try:
            res = importlib.import_module(module).run(argparse.Namespace(**p))
        except Exception as e:  # noqa: BLE001  (the other scenarios still run)
            import traceback
            traceback.print_exc()
            results["failed"][name] = repr(e)
            continue
        res["params"] = dict(res.get("params", {}), rounds=p["rounds"])
        results["scenarios"][name] = res
        print("\n" + res["table"])
        for n in res.get("notes", []) + res.get("target_notes", []):
            print("- " + n)
        results["duration_s"] = time.time() - t0
        benchlib.write_json(args.json, results)
    sc = results["scenarios"]
    if "open" in sc and "parts" in sc:
        sc["open"].setdefault("target_notes", []).append(
            importlib.import_module("parts_bench").budget_note(sc["open"], sc["parts"]))
        print("- " + sc["open"]["target_notes"][-1])
    results["duration_s"] = time.time() - t0
    results["machine"]["loadavg_end"] = os.getloadavg()[0]
    benchlib.write_json(args.json, results)
    # docs/performance.md and latest.json show one complete run, never a mix of runs
    full = not args.quick and set(results["scenarios"]) == set(names)
    if full:
        benchlib.write_json(LATEST, results)
        if not args.no_docs:
            update_doc(PERF_DOC, BEGIN, END, render(results))
            update_doc(TARGETS_DOC, T_BEGIN, T_END, render_targets(results))
            print("\ndocs/performance.md and bench/README.md: results rewritten")
    print("\nresults: %s%s (%.1f minutes)" % (args.json, " and " + LATEST if full else "",
                                             results["duration_s"] / 60))
    if results["failed"]:
        print("FAILED scenarios: " + ", ".join(results["failed"]))
        sys.exit(1)


if __name__ == "__main__":
    main()
