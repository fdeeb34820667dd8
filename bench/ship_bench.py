#!/usr/bin/python3
"""Throughput end to end: an exec-record storm from several load generators
(build/bench/loadgen: execve() of a missing path, no fork, so each call is one
exec record) in a traced cgroup, through the agent (--tracers exec --cgroup
..., attribution, batches) to the reference collector on loopback. Rates
alternate round by round (10k/s, 100k/s, as fast as the generators go, ...).

Per rate: records generated and delivered (the collector's count), losses by
stage (kernel ring buffer and maps from the agent's summary, shipping as the
agent reported them to the collector), agent CPU over the load (all threads,
the delivery tail included, from /proc/PID/stat) and per record, agent RSS
(max sampled VmRSS, and VmHWM), collector CPU, bytes per record on the wire.

The generators run at nice 10: the collector shares this machine's CPUs here,
while in production it has its own.
--limit-rates: each rate twice more, the load spread over --limit-procs
generators each in a cgroup of its own (pods, each below the default
--rate-limit): with --rate-limit 0 and with the default limit, alternating, for
what the limiter costs the whole path.
Run as root:  make bench  or  bench/ship_bench.py [--rates 10000,100000,0]
  [--duration 10] [--procs 2] [--rounds 5] [--repetitive] [--limit-rates 100000]
"""
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (  # noqa: E402
    Cgroup, Config, OtlpShipped, Shipped, alternate, collector_counts, cpu_s, otlp_sink_counts,
    fmt_range, markdown_table, need, podsnoop_counts, scenario_main,
    stats, status_kb, total, unique, tool)

LOADGEN = tool("loadgen")
NICE = shutil.which("nice") or "/usr/bin/nice"  # by path: a PATH search execs (records) too
LIMIT_DEFAULT = "20000,100000"  # the agent's default (docs/command-line.md)
EXECS_PER_GENERATOR = 2  # the exec of nice and nice's exec of loadgen are records too


def rate_name(rate):
    return "max" if rate == 0 else ("%dk/s" % (rate // 1000) if rate % 1000 == 0 else
                                    "%d/s" % rate)


class Sampler:
    """Max VmRSS, RssAnon, RssFile of a process, sampled every 0.2 s."""

    def __init__(self, pid):
        self.pid, self.max = pid, {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
        self.done = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while True:
            for k in self.max:
                try:
                    self.max[k] = max(self.max[k], status_kb(self.pid, k))
                except OSError:
                    return
            if self.done.wait(0.2):
                return

    def stop(self):
        self.done.set()
        self.t.join()
        return self.max


def run(args):
    need(LOADGEN)
    rates = [int(r) for r in args.rates.split(",")]
    otlp_rates = [int(r) for r in args.otlp_rates.split(",") if r]
    limit_rates = [int(r) for r in args.limit_rates.split(",") if r]
    cur = {}

    def start(sink, limit="0"):
        def f():
            # one cgroup at 100k/s is far above the default --rate-limit: the limiter
            # has its own scenario (ratelimit_bench.py) and the --limit-rates configs
            cur["s"] = sink("--tracers", "exec", "--cgroup", cg.path, "--rate-limit", limit)
            return cur["s"]
        return f

    def counts(err):
        c = podsnoop_counts(err, "exec")
        c.update(otlp_sink_counts(err) if "otlp sink:" in err else collector_counts(err))
        c["agent_log_losses"] = [l.split("podsnoop: ", 1)[-1].strip() for l in err.splitlines()
                                 if re.search(r"\blost\b|dropped", l) and
                                 not re.search(r"(lost|dropped) 0\b", l)][:10]
        return c

    def workload(c):
        s = cur["s"]
        rate, pid, cpid = c.rate, s.agent.pid, s.collector.proc.pid
        tag = unique("load")
        time.sleep(0.5)
        sampler = Sampler(pid)
        c0, cc0, t0 = cpu_s(pid), cpu_s(cpid), time.monotonic()
        gens = [(pods[i] if c.pods else cg).popen(
                    [NICE, "-n", str(args.nice), LOADGEN, str(rate // c.procs),
                     str(args.duration), "%s-%d" % (tag, i)] +
                    ([] if args.repetitive else ["varied"]), stdout=subprocess.PIPE)
                for i in range(c.procs)]
        outs = [g.communicate()[0].decode() for g in gens]
        t1 = time.monotonic()
        sent = [re.search(r"sent (\d+) in ([\d.]+) s", o) for o in outs]
        generated = sum(int(m.group(1)) for m in sent)
        # the tail: until the agent has nothing left in flight (the collector's count
        # is only known at its exit), bounded; CPU over load + tail
        deadline = time.monotonic() + 30
        prev = -1
        while time.monotonic() < deadline:
            now = cpu_s(pid)
            if now == prev:
                break
            prev = now
            time.sleep(1.0)
        c1, cc1 = cpu_s(pid), cpu_s(cpid)
        rss = sampler.stop()
        return {"value": generated / max(float(m.group(2)) for m in sent),
                "generated": generated, "expected": generated + EXECS_PER_GENERATOR * c.procs,
                "load_s": t1 - t0,
                "agent_cpu_pct": 100.0 * (c1 - c0) / (t1 - t0),
                "agent_cpu_us_per_rec": 1e6 * (c1 - c0) / max(1, generated),
                "collector_cpu_pct": 100.0 * (cc1 - cc0) / (t1 - t0),
                "rss_max_kb": rss["VmRSS"], "anon_max_kb": rss["RssAnon"],
                "file_max_kb": rss["RssFile"], "vmhwm_kb": status_kb(pid, "VmHWM")}

    with Cgroup() as cg:
        pods = [cg.child() for _ in range(args.limit_procs if limit_rates else 0)]
        cs = []
        for rate, otlp in [(r, False) for r in rates] + [(r, True) for r in otlp_rates]:
            c = Config(rate_name(rate) + (" otlp" if otlp else ""), "%s, %d generators%s" % (
                "as fast as they go" if rate == 0 else "%d records/s" % rate, args.procs,
                ", OTLP/HTTP logs to a sink" if otlp else ""),
                start(OtlpShipped if otlp else Shipped), counts)
            c.rate, c.otlp, c.procs, c.pods = rate, otlp, args.procs, False
            cs.append(c)
        for rate in limit_rates:
            for limit, name in (("0", "limit off"), (LIMIT_DEFAULT, "default limit")):
                c = Config("%s pods, %s" % (rate_name(rate), name),
                           "%d records/s, %d generators in a cgroup each, --rate-limit %s" % (
                               rate, args.limit_procs, limit), start(Shipped, limit), counts)
                c.rate, c.otlp, c.procs, c.pods = rate, False, args.limit_procs, True
                cs.append(c)
        rounds = alternate(cs, args.rounds, workload, label="throughput", strict=False)
        for p in pods:
            p.remove()

    rows, res_cfgs, checks = [], {}, []
    for c in cs:
        runs = rounds["samples"][c.name]
        for r in runs:
            r["undelivered"] = r["expected"] - r["delivered"]
            r["zero_loss"] = (r["undelivered"] == 0 and r["lost"] == 0 and
                              r["reported_lost"] == 0)
        st = {k: stats([r[k] for r in runs]) for k in (
            "value", "agent_cpu_pct", "agent_cpu_us_per_rec", "rss_max_kb", "vmhwm_kb",
            "collector_cpu_pct")}
        zero = sum(1 for r in runs if r["zero_loss"])
        wire = total(runs, "wire_bytes") / max(1, total(runs, "delivered"))
        lost_cell = "none" if zero == len(runs) else (
            "kernel %d, shipping %d, not delivered %d" % (
                total(runs, "lost"), total(runs, "reported_lost"), total(runs, "undelivered")))
        rows.append([c.name, c.desc, fmt_range(st["value"], "%.0f"),
                     "%d of %d" % (zero, len(runs)), lost_cell,
                     fmt_range(st["agent_cpu_pct"], "%.1f"),
                     fmt_range(st["agent_cpu_us_per_rec"], "%.2f"),
                     fmt_range({k: v / 1024 for k, v in st["rss_max_kb"].items()}, "%.1f"),
                     "%.1f" % (st["vmhwm_kb"]["max"] / 1024),
                     fmt_range(st["collector_cpu_pct"], "%.1f"), "%.1f" % wire])
        res_cfgs[c.name] = {"rate": c.rate, "desc": c.desc, "stats": st, "runs": runs,
                            "zero_loss_runs": zero, "wire_B_per_rec": wire}
    table = markdown_table(
        ["rate", "load", "achieved records/s, median (min-max)", "runs with zero loss",
         "lost", "agent CPU % of a core", "agent CPU us/record", "agent RSS MiB, max sampled",
         "VmHWM MiB (max)", "collector CPU %", "wire B/record"], rows)
    notes, target_notes = [], []
    best = max((c for c in cs if res_cfgs[c.name]["zero_loss_runs"] == len(
        res_cfgs[c.name]["runs"])), key=lambda c: res_cfgs[c.name]["stats"]["value"]["min"],
        default=None)
    if best is not None:
        notes.append("highest rate delivered with zero loss in every round: %.0f records/s "
                     "(%s)" % (res_cfgs[best.name]["stats"]["value"]["min"], best.name))
    lossy = [c for c in cs if res_cfgs[c.name]["zero_loss_runs"] < len(res_cfgs[c.name]["runs"])]
    for c in lossy:
        for r in res_cfgs[c.name]["runs"]:
            if not r["zero_loss"]:
                notes.append("%s: %d generated, %d delivered; kernel lost %d (ring %d, maps %d), "
                             "shipping reported %d lost; agent: %s" % (
                                 c.name, r["generated"], r["delivered"] -
                                 EXECS_PER_GENERATOR * c.procs, r["lost"], r["lost_ring"],
                                 r["lost_map"], r["reported_lost"],
                                 "; ".join(r["agent_log_losses"]) or "-"))
    t100 = next((c for c in cs if c.rate == 100000 and not c.otlp and not c.pods), None)
    if t100 is not None:
        s = res_cfgs[t100.name]
        cpu, rss = s["stats"]["agent_cpu_pct"]["median"], s["stats"]["rss_max_kb"]["max"] / 1024
        ok = (s["zero_loss_runs"] == len(s["runs"]) and cpu < 25 and rss * 1.048576 < 32)
        checks.append({"config": t100.name, "target": "100k events/s end to end, zero loss, "
                       "< 25% of a core, < 32 MB RSS", "met": ok, "agent_cpu_pct": cpu,
                       "rss_max_mib": rss, "zero_loss_runs": s["zero_loss_runs"]})
        target_notes.append(
            "target 100k/s, zero loss, < 25%% of a core, < 32 MB RSS: %s (%d of %d rounds "
            "zero loss, CPU %.1f%% median, RSS max %.1f MiB = %.1f MB)" % (
                "met" if ok else "MISSED", s["zero_loss_runs"], len(s["runs"]), cpu, rss,
                rss * 1.048576))
    for rate in limit_rates:
        off, on = (res_cfgs["%s pods, %s" % (rate_name(rate), n)] for n in
                   ("limit off", "default limit"))
        ratio = (on["stats"]["agent_cpu_us_per_rec"]["median"] /
                 max(1e-9, off["stats"]["agent_cpu_us_per_rec"]["median"]))
        zero = on["zero_loss_runs"] == len(on["runs"])
        target_notes.append(
            "%s in %d pods, default --rate-limit vs off: %d zero-loss rounds of %d, agent CPU "
            "per record %.2f vs %.2f us (%.2fx), achieved %.0f vs %.0f records/s (medians)" % (
                rate_name(rate), args.limit_procs, on["zero_loss_runs"], len(on["runs"]),
                on["stats"]["agent_cpu_us_per_rec"]["median"],
                off["stats"]["agent_cpu_us_per_rec"]["median"], ratio,
                on["stats"]["value"]["median"], off["stats"]["value"]["median"]))
        checks.append({"config": "%s pods" % rate_name(rate), "target": "the default "
                       "--rate-limit leaves the throughput scenario unchanged: zero loss",
                       "met": zero, "cpu_ratio": ratio})
    for o in (c for c in cs if c.otlp):
        n = next((c for c in cs if c.rate == o.rate and not c.otlp and not c.pods), None)
        if n is None:
            continue
        so, sn = res_cfgs[o.name], res_cfgs[n.name]
        ratio = (so["stats"]["agent_cpu_us_per_rec"]["median"] /
                 max(1e-9, sn["stats"]["agent_cpu_us_per_rec"]["median"]))
        zero = so["zero_loss_runs"] == len(so["runs"])
        ok = zero and ratio <= 1.5
        checks.append({"config": o.name, "target": "OTLP: zero loss, agent CPU per record "
                       "<= 1.5x the native shipping's", "met": ok, "cpu_ratio": ratio,
                       "zero_loss_runs": so["zero_loss_runs"]})
        target_notes.append(
            "target %s through OTLP, zero loss, agent CPU per record <= 1.5x native (%s): %s "
            "(%d of %d rounds zero loss, %.2f vs %.2f us/record: %.2fx)" % (
                rate_name(o.rate), n.name, "met" if ok else "MISSED", so["zero_loss_runs"],
                len(so["runs"]), so["stats"]["agent_cpu_us_per_rec"]["median"],
                sn["stats"]["agent_cpu_us_per_rec"]["median"], ratio))
    return {"scenario": "throughput", "title": "throughput: exec records from %d load generators "
            "(%s), %g s per run, through the agent to the collector on loopback" % (
                args.procs, "repetitive" if args.repetitive else "varied", args.duration),
            "params": {"rates": rates, "otlp_rates": otlp_rates, "duration_s": args.duration, "procs": args.procs,
                       "nice": args.nice, "varied": not args.repetitive},
            "rounds": len(rounds["samples"][cs[0].name]), "configs": res_cfgs,
            "targets": checks, "notes": notes, "target_notes": target_notes, "other_bpf": rounds["foreign"],
            "rounds_disturbed": rounds["disturbed"], "loadavg": stats(rounds["load"]),
            "table": table}


def add_args(ap):
    ap.add_argument("--rates", default="10000,100000,0",
                    help="records/s, comma-separated; 0: as fast as the generators go")
    ap.add_argument("--otlp-rates", default="100000",
                    help="records/s through --otlp-endpoint to an OTLP sink, comma-separated "
                    "(0: as fast as they go; empty: none)")
    ap.add_argument("--limit-rates", default="",
                    help="records/s, comma-separated: each run over --limit-procs cgroups, "
                    "--rate-limit 0 against the default (empty: none)")
    ap.add_argument("--limit-procs", type=int, default=6,
                    help="generators (one cgroup each) of the --limit-rates configs")
    ap.add_argument("--duration", type=float, default=10, help="seconds of load per run")
    ap.add_argument("--procs", type=int, default=2, help="load generator processes")
    ap.add_argument("--nice", type=int, default=10, help="niceness of the generators")
    ap.add_argument("--repetitive", action="store_true",
                    help="argv [psload, TAG, N] only (gzip does better than on real execs)")


if __name__ == "__main__":
    scenario_main(run, __doc__, add_args)
