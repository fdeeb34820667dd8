"""What every benchmark in bench/ shares: tracers started and stopped in the
background, configurations alternated round by round, medians, min/max and
ratios to the untraced run of the same round, other BPF programs that could
disturb a round, the machine's description, JSON and table output.

A scenario builds a list of Config objects and a workload function, and calls
alternate(): round after round every configuration runs once (the order
rotating, so that no configuration always follows the same one), each run
a dict of figures. summarize() turns those into medians, min/max and ratios.
Run with Debian's /usr/bin/python3, as root.
"""
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
from podsnoop_harness import BUILD, Cgroup, cgroup2_mount, unique  # noqa: E402,F401

AGENT = os.path.join(BUILD, "podsnoop")
BENCH_BUILD = os.path.join(BUILD, "bench")
HZ = os.sysconf("SC_CLK_TCK")
PEER_PKG = "libbpf-tools"


def tool(name):
    """A bench helper built by make (bench/NAME.c -> build/bench/NAME)."""
    return os.path.join(BENCH_BUILD, name)


def need(*paths):
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmarks load BPF programs and make cgroups")
    for p in paths:
        if not os.path.exists(p):
            sys.exit("%s is missing: run `make bench` (or `make`) first" % p)


def peer(name):
    """Path of a Debian libbpf-tools program, or None."""
    return shutil.which(name) or next((p for p in ("/usr/sbin/" + name,) if os.path.exists(p)),
                                      None)


# ---------------------------------------------------------------- processes

def bpf_attachments():
    """[(pid, comm?, attach point)] of every BPF program attached to a perf event
    or raw tracepoint, from `bpftool perf`."""
    try:
        out = subprocess.run(["bpftool", "perf", "-j"], capture_output=True, text=True,
                             timeout=30).stdout
        entries = json.loads(out or "[]")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return []
    res = []
    for e in entries:
        what = e.get("tracepoint") or e.get("func") or e.get("filename") or e.get("prog_type")
        res.append((e["pid"], what))
    return res


def comm(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:120]
    except OSError:
        return "?"


class Proc:
    """A process in the background (tracer, collector, agent), its stderr kept in a
    file. ready(proc) is polled until true; stop() sends SIGINT and returns stderr."""

    def __init__(self, argv, ready=None, stdout=subprocess.DEVNULL, timeout=60, **kw):
        self.argv = [str(a) for a in argv]
        self.err = tempfile.TemporaryFile(mode="w+")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdout=stdout, stderr=self.err, **kw)
        self.pid = self.proc.pid
        self.ready_s = None
        deadline = time.monotonic() + timeout
        while ready is not None:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited: %s" % (self.argv[0], self.stderr()))
            if ready(self):
                break
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("%s did not become ready: %s" % (self.argv[0], self.stderr()))
            time.sleep(0.005)
        self.ready_s = time.monotonic() - self.t0

    def stderr(self):
        self.err.seek(0)
        return self.err.read()

    def stop(self, sig=signal.SIGINT, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.stderr()

    def alive(self):
        return self.proc.poll() is None


def attached(min_progs=1, settle=0.3):
    """A ready() for programs that print nothing once attached (the libbpf-tools):
    BPF programs of the process appear in `bpftool perf`, and their number holds
    for `settle` seconds."""
    state = {"n": 0, "since": None}

    def ready(p):
        n = sum(1 for pid, _ in bpf_attachments() if pid == p.pid)
        now = time.monotonic()
        if n != state["n"]:
            state["n"], state["since"] = n, now
            return False
        return n >= min_progs and now - state["since"] >= settle
    return ready


def logged(text):
    return lambda p: text in p.stderr()


def podsnoop(*args, stdout=subprocess.DEVNULL):
    """The agent with these flags, output (NDJSON) to /dev/null unless stdout is given."""
    return Proc([AGENT] + list(args), ready=logged("info: ready"), stdout=stdout)


SUMMARY_RE = (r"%s: seen (\d+), filtered (\d+), emitted (\d+), lost (\d+) \(ring buffer "
              r"full\), (\d+) \(map full\), read errors (\d+)")


def podsnoop_counts(stderr, tracer):
    """The agent's exit summary for one tracer: seen, filtered, emitted, lost (ring
    buffer full + map full), read_err."""
    m = re.search(SUMMARY_RE % tracer, stderr)
    if not m:
        raise RuntimeError("no %s summary from podsnoop in:\n%s" % (tracer, stderr))
    seen, filtered, emitted, lost, map_full, read_err = map(int, m.groups())
    return {"seen": seen, "filtered": filtered, "emitted": emitted, "lost": lost + map_full,
            "lost_ring": lost, "lost_map": map_full, "read_err": read_err}


def agent_counts(tracer):
    """counts() for the agent's configurations: its exit summary for the tracer
    and, when it shipped, the collector's count and what did not arrive."""
    def counts(err):
        c = podsnoop_counts(err, tracer)
        if "accepted" in err:
            c.update(collector_counts(err))
            c["undelivered"] = c["emitted"] - c["delivered"]
        return c
    return counts


def run_timed(cg, argv, n, what):
    """Run a bench workload (prints "NANOSECONDS OK") in cgroup cg; the
    nanoseconds, after checking that all n operations succeeded."""
    out = cg.run([str(a) for a in argv], capture_output=True, check=True,
                 text=True).stdout.split()
    ns, ok = int(out[0]), int(out[1])
    if ok != n:
        raise RuntimeError("%s: %d of %d succeeded" % (what, ok, n))
    return ns


def peer_lost(stderr):
    """Events a libbpf-tools program reported lost ("Lost N events on CPU #c!")."""
    return sum(int(n) for n in re.findall(r"[Ll]ost (\d+) events", stderr))


def cpu_s(pid):
    """utime + stime of a process (all its threads), seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def pss_kb(pid):
    """Proportional set size of a process (/proc/PID/smaps_rollup), KiB."""
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


class MemCgroup:
    """A memory cgroup of its own for one process (cgroup v1's memory hierarchy
    where it is mounted, as on this VM, else cgroup v2 with the memory
    controller): charged() is what the kernel charged to it, kernel memory (BPF
    maps) included: memory.usage_in_bytes (v1) or memory.current (v2). Pass
    preexec_fn=cg.enter to Popen (Proc); remove() after the process exited."""

    def __init__(self):
        v1 = "/sys/fs/cgroup/memory"
        if os.path.exists(os.path.join(v1, "memory.usage_in_bytes")):
            base, self.file = v1, "memory.usage_in_bytes"
        else:
            base, self.file = cgroup2_mount(), "memory.current"
        self.path = os.path.join(base, unique("bench-mem"))
        os.mkdir(self.path)
        if not os.path.exists(os.path.join(self.path, self.file)):
            os.rmdir(self.path)
            raise RuntimeError("no memory controller in " + base)

    def enter(self):
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    def charged(self):
        with open(os.path.join(self.path, self.file)) as f:
            return int(f.read())

    def remove(self):
        for _ in range(50):
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.1)


def fdinfo(pid):
    """/proc/PID/fdinfo of every BPF map and program fd of a process, as dicts
    (links, which name their program, left out)."""
    d = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(d):
        try:
            with open(os.path.join(d, fd)) as f:
                info = dict(l.rstrip("\n").split(":\t", 1) for l in f if ":\t" in l)
        except OSError:
            continue
        if "link_id" not in info and ("map_id" in info or "prog_id" in info):
            yield info


def bpf_memlock(pid):
    """BPF maps and programs a process holds, from /proc/PID/fdinfo: bytes of
    memory charged for its maps (ring buffers included) and programs."""
    maps, progs = {}, {}
    for info in fdinfo(pid):
        if "map_id" in info:
            maps[info["map_id"]] = (int(info.get("memlock", 0)), int(info.get("map_type", -1)))
        elif "prog_id" in info:
            progs[info["prog_id"]] = int(info.get("memlock", 0))
    return {"maps": len(maps), "map_bytes": sum(m for m, _ in maps.values()),
            "ringbuf_bytes": sum(m for m, t in maps.values() if t == 27),  # BPF_MAP_TYPE_RINGBUF
            "progs": len(progs), "prog_bytes": sum(progs.values())}


# ------------------------------------------------------------------- rounds

class Config:
    """One configuration of a scenario. start() returns a Proc (or None: nothing
    runs beside the workload); counts(stderr) turns its stderr into figures
    (events lost...) merged into the run's."""

    def __init__(self, name, desc, start=None, counts=None):
        self.name, self.desc = name, desc
        self.start = start or (lambda: None)
        self.counts = counts or (lambda err: {})


def _foreign(ours):
    """Other programs' BPF attachments: {pid: (command, sorted attach points)}."""
    res = {}
    for pid, what in bpf_attachments():
        if pid in ours:
            continue
        res.setdefault(pid, set()).add(str(what))
    return {pid: sorted(w) for pid, w in res.items()}


def _describe_foreign(f):
    return ["pid %d (%s): %s" % (pid, comm(pid), ", ".join(w)) for pid, w in sorted(f.items())]


def alternate(configs, rounds, workload, label="", quiet_wait=60, log=print, strict=True,
              settle=0.5):
    """Run every configuration once per round, for `rounds` valid rounds.

    workload(config) runs the measured work while config's tracer is up (and
    `settle` seconds after it said it was ready: an agent finishes its start in
    the background) and returns a dict of figures. Each round's order rotates. A round during which
    another program attached or detached BPF programs (another session's agent,
    a test run) is thrown away and run again, after waiting up to quiet_wait
    seconds for the machine to return to what it was at the start: such a
    program changes the baseline itself (one syscall tracepoint puts every
    syscall of every task on the kernel's slow path; a second program on the
    same tracepoint costs far less than the first).

    strict=False keeps such rounds (scenarios whose figures do not depend on
    other tracers: throughput, start-up) and only counts them.

    Returns {"samples": {name: [figures per round]}, "foreign": [...],
    "discarded": n, "disturbed": n, "load": [loadavg per round]}.
    """
    samples = {c.name: [] for c in configs}
    ours = {os.getpid()}
    base = _foreign(ours)
    discarded, disturbed, loads, r = 0, 0, [], 0
    while len(samples[configs[0].name]) < rounds:
        if discarded > 2 * rounds:
            raise RuntimeError("%s: other programs kept attaching BPF programs (%d rounds "
                               "thrown away); run on a quiet machine" % (label, discarded))
        k = r % len(configs)
        order = configs[k:] + configs[:k]
        r += 1
        row, clean = {}, True
        for c in order:
            if strict and _foreign(ours) != base:
                clean = False
                deadline = time.monotonic() + quiet_wait
                while time.monotonic() < deadline and _foreign(ours) != base:
                    time.sleep(1)
                break
            p = c.start()
            if p is not None:
                ours.update(getattr(p, "pids", [p.pid]))
            try:
                time.sleep(settle)
                fig = workload(c)
            finally:
                err = p.stop() if p is not None else ""
            fig.update(c.counts(err))
            row[c.name] = fig
            if _foreign(ours) != base:
                if not strict:
                    disturbed += 1
                    base = _foreign(ours)
                    continue
                clean = False
                break
        if not clean:
            discarded += 1
            now = _foreign(ours)
            log("  %s round %d thrown away: other BPF programs came or went: %s" % (
                label, r, "; ".join(_describe_foreign(
                    {p: w for p, w in now.items() if base.get(p) != w}) or
                    ["(detached) " + x for x in _describe_foreign(
                        {p: w for p, w in base.items() if now.get(p) != w})])))
            continue
        loads.append(os.getloadavg()[0])
        for c in configs:
            samples[c.name].append(row[c.name])
        log("  %s round %d/%d: %s" % (label, len(loads), rounds, "  ".join(
            "%s %s" % (c.name, _short(row[c.name])) for c in configs)))
    return {"samples": samples, "foreign": _describe_foreign(base), "discarded": discarded,
            "disturbed": disturbed, "load": loads}


def _short(fig):
    v = fig.get("value")
    return ("%.4g" % v) if isinstance(v, (int, float)) else "-"


# --------------------------------------------------------------- statistics

def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def summarize(samples, key="value", baseline="untraced"):
    """Per configuration: stats of samples[c][i][key] and, when a baseline
    configuration exists, the per-round ratios value / baseline value of the
    same round (median, min, max) and the ratio of the fastest runs."""
    out = {}
    base = samples.get(baseline)
    for name, runs in samples.items():
        vals = [r.get(key) for r in runs]
        s = {"values": vals, "stats": stats(vals)}
        if base is not None and all(v is not None for v in vals):
            ratios = [v / b[key] for v, b in zip(vals, base)]
            s["ratios"] = ratios
            s["ratio"] = stats(ratios)
            s["ratio_fastest"] = min(vals) / min(b[key] for b in base)
        out[name] = s
    return out


def total(runs, key):
    vals = [r.get(key) for r in runs if r.get(key) is not None]
    return sum(vals) if vals else None


# ------------------------------------------------------------ the machine

def _read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def _git(*args):
    try:
        return subprocess.run(["git", "-C", REPO] + list(args), capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except OSError:
        return ""


def _dpkg_version(pkg):
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                              text=True).stdout.strip() or None
    except OSError:
        return None


def machine():
    cpu = re.search(r"model name\s*:\s*(.*)", _read("/proc/cpuinfo"))
    flags = _read("/proc/cpuinfo")
    mem = re.search(r"MemTotal:\s*(\d+)", _read("/proc/meminfo"))
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": platform.release(),
        "os": (re.search(r'PRETTY_NAME="([^"]*)"', _read("/etc/os-release")) or
               re.search("(.*)", "")).group(1),
        "cpu": cpu.group(1) if cpu else platform.machine(),
        "cpus": os.cpu_count(),
        "virtualized": " hypervisor" in flags,
        "memory_gib": round(int(mem.group(1)) / 1048576, 1) if mem else None,
        "clocksource": _read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
        "loadavg_start": os.getloadavg()[0],
        "podsnoop_commit": _git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else ""),
        "libbpf_tools": _dpkg_version(PEER_PKG),
        "other_bpf": _describe_foreign(_foreign({os.getpid()})),
    }


def describe_machine(m):
    return ("%s; Linux %s, %s, %d CPU%s (%s), %s GiB; clocksource %s" % (
        m["date"], m["kernel"], m["os"], m["cpus"], "s" if m["cpus"] != 1 else "",
        m["cpu"] + (", virtual machine" if m["virtualized"] else ""), m["memory_gib"],
        m["clocksource"]))


# ------------------------------------------------------------------ output

def fmt_ratio(r):
    if not r:
        return "-"
    return "%.2fx (%.2f-%.2f)" % (r["median"], r["min"], r["max"])


def fmt_range(s, f="%.2f"):
    if not s:
        return "-"
    return (f + " (" + f + "-" + f + ")") % (s["median"], s["min"], s["max"])


def markdown_table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def write_json(path, obj):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def scenario_main(run, doc, add_args=None, tracer_flags=False):
    """Command line of one scenario script: --rounds, --json, its own flags
    (tracer_flags: --no-peers, --no-profile); prints the scenario's table."""
    import argparse
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="rounds (at least 5; default 5)")
    ap.add_argument("--json", help="write the results here too")
    if tracer_flags:
        ap.add_argument("--no-peers", action="store_true", help="leave out Debian's tools")
        ap.add_argument("--no-profile", action="store_true",
                        help="skip the extra run per tracer with BPF run-time statistics on")
    if add_args:
        add_args(ap)
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    res = run(args)
    res["machine"] = machine()
    print()
    print(res["table"])
    for n in res.get("notes", []) + res.get("target_notes", []):
        print("- " + n)
    if args.json:
        write_json(args.json, res)
    return res


# ------------------------------------------------ the agent shipping to the collector

class Shipped:
    """The reference collector (tests/lib/ship_harness.Collector, its NDJSON to
    /dev/null) and the agent shipping to it, started together; stop() stops the
    agent first (it flushes its last batches), then the collector, and returns
    both logs. nice: the collector's niceness (it has its own machine in
    production; here it shares the CPUs with the workload)."""

    def __init__(self, *agent_args, nice=None):
        from ship_harness import Collector
        self.collector = Collector(tempfile.gettempdir(), "--out", os.devnull,
                                   name=unique("bench-collector"))
        if nice:
            os.setpriority(os.PRIO_PROCESS, self.collector.proc.pid, nice)
        try:
            self.agent = podsnoop(*(list(agent_args) + ["--collector", self.collector.url]))
        except Exception:
            self.collector.stop()
            raise
        self.pid = self.agent.pid

    def stop(self):
        err = self.agent.stop()
        self.collector.stop(signal.SIGINT)
        return err + "\n" + "".join(self.collector.stderr)


OTLP_NODE = os.path.join(BUILD, "otlp-node", "node_modules")
OTLP_SINK = os.path.join(REPO, "bench", "otlp_sink.js")


class OtlpShipped:
    """An OTLP/HTTP logs sink (bench/otlp_sink.js: the OpenTelemetry project's own
    definitions decode every request, records are only counted) and the agent
    exporting to it with --otlp-endpoint (no local output); stop() as Shipped's."""

    def __init__(self, *agent_args, nice=None):
        need(OTLP_NODE)
        self.sink = Proc(["node", OTLP_SINK, OTLP_NODE], stdout=subprocess.PIPE, timeout=30)
        line = self.sink.proc.stdout.readline().decode()
        m = re.match(r"port (\d+)", line)
        if not m:
            self.sink.stop(signal.SIGKILL)
            raise RuntimeError("the OTLP sink did not start: %r %s" % (line, self.sink.stderr()))
        if nice:
            os.setpriority(os.PRIO_PROCESS, self.sink.pid, nice)
        self.collector = self.sink  # the peer's CPU is measured as the collector's
        try:
            self.agent = podsnoop(*(list(agent_args) + [
                "--otlp-endpoint", "http://127.0.0.1:%s" % m.group(1)]))
        except Exception:
            self.sink.stop(signal.SIGKILL)
            raise
        self.pid = self.agent.pid

    def stop(self):
        err = self.agent.stop()
        return err + "\n" + self.sink.stop(signal.SIGTERM)


def otlp_sink_counts(stderr, record="exec"):
    """From the OTLP sink's exit line and the agent's otlp summary: records of one
    type received, batches, wire bytes, and what the agent counted lost on the way
    (its loss LogRecords' counts are not summed: any loss record means loss)."""
    m = re.search(r"otlp sink: (\d+) requests, (\d+) log records \(([^)]*)\), (\d+) bytes, "
                  r"(\d+) decompressed, (\d+) errors", stderr)
    if not m:
        raise RuntimeError("no summary from the OTLP sink in:\n" + stderr)
    names = dict((k, int(v)) for k, v in (p.rsplit(" ", 1) for p in m.group(3).split(", ") if p))
    lost = sum(int(x) for x in re.findall(r"otlp: (\d+) \S+ records lost", stderr))
    lost += sum(int(x) for x in re.findall(
        r"otlp: (\d+) records in \d+ batches could not be sent", stderr))
    return {"delivered": names.get(record, 0), "reported_lost": lost + names.get("loss", 0),
            "batches": int(m.group(1)), "wire_bytes": int(m.group(4)),
            "raw_bytes": int(m.group(5)), "sink_errors": int(m.group(6))}


def collector_counts(stderr):
    """From the collector's exit line: records received and records the agents
    reported lost (by shipping stages and the kernel)."""
    m = re.search(r"accepted (\d+) batches \((\d+) records, (\d+) bytes, (\d+) decompressed\)"
                  r".*?(\d+) records reported lost", stderr)
    if not m:
        raise RuntimeError("no summary from the collector in:\n" + stderr)
    batches, records, gz, raw, lost = map(int, m.groups())
    return {"delivered": records, "reported_lost": lost, "batches": batches, "wire_bytes": gz,
            "raw_bytes": raw}


# ------------------------------------------- scenarios measured against untraced

def lost_text(runs):
    """Events lost over all rounds, as a table cell: podsnoop's by stage when known."""
    if not runs or all(r.get("lost") is None for r in runs):
        return "-"
    lost = total(runs, "lost") or 0
    parts = []
    for key, what in (("reported_lost", "shipping"), ("undelivered", "not delivered")):
        v = total(runs, key)
        if v:
            parts.append("%d %s" % (v, what))
    return str(lost) + (" (+ " + ", ".join(parts) + ")" if parts else "")


def ratio_result(scenario, title, configs, rounds, value_unit, value_fmt="%.2f",
                 targets=(), extra=None, extra_header="records", prof=None):
    """The usual result of a scenario measured against its untraced baseline:
    per configuration the median (min-max) value, the median (min-max) of the
    per-round ratios, the fastest runs' ratio, and events lost. targets:
    [(config, max_ratio, text)] checked against the median ratio (and zero loss
    for podsnoop's configurations). extra(name, runs) -> str adds a column."""
    samples = rounds["samples"]
    summ = summarize(samples)
    rows, res_cfgs = [], {}
    for c in configs:
        s, runs = summ[c.name], samples[c.name]
        cell = extra(c.name, runs) if extra else None
        rows.append([c.name, c.desc, fmt_range(s["stats"], value_fmt),
                     "1.00x" if c.name == "untraced" else fmt_ratio(s.get("ratio")),
                     "-" if c.name == "untraced" else "%.2fx" % s["ratio_fastest"],
                     lost_text(runs)] + ([cell] if extra else []) +
                    (["%.0f" % prof[c.name]["ns_per_op"] if c.name in prof else "-"]
                     if prof is not None else []))
        res_cfgs[c.name] = {"desc": c.desc, "stats": s["stats"], "ratio": s.get("ratio"),
                            "ratio_fastest": s.get("ratio_fastest"), "runs": runs,
                            "lost": total(runs, "lost"),
                            "bpf_profile": (prof or {}).get(c.name)}
    checks = []
    for name, limit, text in targets:
        r = res_cfgs[name]["ratio"]["median"]
        lost = res_cfgs[name]["lost"] or 0
        undelivered = (total(samples[name], "undelivered") or 0) + \
            (total(samples[name], "reported_lost") or 0)
        met = r <= limit and lost == 0 and undelivered == 0
        checks.append({"config": name, "target": text, "limit_ratio": limit, "ratio": r,
                       "lost": lost + undelivered, "met": met,
                       "by": None if r <= limit else "%.1f%% over" % (100 * (r / limit - 1))})
    headers = ["config", "what runs", value_unit + ", median (min-max)",
               "ratio to untraced, median of rounds (min-max)", "fastest runs' ratio",
               "events lost (all rounds)"] + ([extra_header] if extra else []) + \
        (["BPF ns per op (bpf_stats run)"] if prof is not None else [])
    return {"scenario": scenario, "title": title, "rounds": len(samples[configs[0].name]),
            "configs": res_cfgs, "targets": checks, "other_bpf": rounds["foreign"],
            "rounds_thrown_away": rounds["discarded"], "loadavg": stats(rounds["load"]),
            "table": markdown_table(headers, rows)}


def records_cell(name, runs):
    """The records podsnoop emitted per run (min-max), for ratio_result's extra column."""
    em = [r["emitted"] for r in runs if "emitted" in r]
    return "%d-%d per run" % (min(em), max(em)) if em else "-"


def foreign_notes(res):
    """A note for docs/performance.md when other BPF programs shared the run."""
    if not res.get("other_bpf"):
        return []
    return ["other BPF programs stayed attached during this scenario, in every "
            "configuration, the untraced one included: " + "; ".join(res["other_bpf"])]


def target_lines(res):
    """The verdict on each internal target (bench/README.md, not the user docs)."""
    out = []
    for t in res.get("targets", []):
        out.append("%s: %s -> %.2fx%s, %s" % (
            t["config"], t["target"], t["ratio"],
            ", %d lost" % t["lost"] if t["lost"] else ", nothing lost",
            "met" if t["met"] else "MISSED" + (" (%s)" % t["by"] if t["by"] else "")))
    return out


# ------------------------------------------ BPF run time per program (bpf_stats)

class BpfStats:
    """Run-time statistics of every BPF program, on while this is held: the
    BPF_ENABLE_STATS command (5.8+) through its fd, which leaves the
    kernel.bpf_stats_enabled sysctl (others may use it) alone. The accounting
    itself adds to each program's run time (two clock reads): the open
    scenario's empty programs ("floor") show how much."""

    BPF_ENABLE_STATS, BPF_STATS_RUN_TIME, SYS_bpf = 32, 0, {"x86_64": 321, "aarch64": 280}

    def __enter__(self):
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        attr = (ctypes.c_uint32 * 32)(self.BPF_STATS_RUN_TIME)
        nr = self.SYS_bpf.get(platform.machine())
        self.fd = libc.syscall(nr, self.BPF_ENABLE_STATS, ctypes.byref(attr),
                               ctypes.sizeof(attr)) if nr else -1
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "BPF_ENABLE_STATS")
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def bpf_prog_stats(pid):
    """[{id, name, run_cnt, run_time_ns}] of the BPF programs process pid holds."""
    progs = {}
    for info in fdinfo(pid):
        if "prog_id" in info and "run_cnt" in info:
            progs[int(info["prog_id"])] = {"id": int(info["prog_id"]),
                                           "run_cnt": int(info["run_cnt"]),
                                           "run_time_ns": int(info["run_time_ns"])}
    try:
        names = {p["id"]: p.get("name", "?") for p in json.loads(subprocess.run(
            ["bpftool", "prog", "show", "-j"], capture_output=True, text=True,
            timeout=30).stdout or "[]")}
    except (OSError, ValueError, subprocess.TimeoutExpired):
        names = {}
    for p in progs.values():
        p["name"] = names.get(p["id"], "?")
    return sorted(progs.values(), key=lambda p: -p["run_time_ns"])


def profile(configs, workload, ops, log=print):
    """One more run of each configuration with a tracer, with BPF run-time
    statistics on: the BPF time per operation of the workload (ops per run), per
    program. Not timed against anything: the accounting slows the programs."""
    out = {}
    with BpfStats():
        for c in configs:
            p = c.start()
            if p is None:
                continue
            try:
                workload(c)
                progs = [x for x in bpf_prog_stats(p.pid) if x["run_cnt"]]
            finally:
                p.stop()
            tot = sum(x["run_time_ns"] for x in progs)
            out[c.name] = {"ns_per_op": tot / ops, "progs": [
                dict(x, ns_per_run=x["run_time_ns"] / x["run_cnt"],
                     runs_per_op=x["run_cnt"] / ops) for x in progs]}
            log("  profile %s: %.0f ns of BPF per operation (%s)" % (c.name, tot / ops, ", ".join(
                "%s %.0f ns x %.2f" % (x["name"], x["run_time_ns"] / x["run_cnt"],
                                       x["run_cnt"] / ops) for x in progs[:6])))
    return out
