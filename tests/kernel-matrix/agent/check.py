#!/usr/bin/python3
"""check.py - judge the agent's kernel-matrix runs (scenario.sh output) against the
expectations written down per kernel.

Usage: check.py [--expect-dir DIR] [--table FILE] NAME=LOG[,RESULT] ...
  NAME    the kernel's name (expect/NAME.txt)
  LOG     the console log (qemu) or the scenario's output (host run)
  RESULT  optional: the boot's result file (tests/kernel-matrix/boot); KM_STATUS must
          be pass (markers KM-BEGIN, KM-EXIT 0, KM-END present, no panic)

Expectation file, one line per tracer and hook method (# comments):
  TRACER  METHOD  PROBE  DEFAULT  RESULT
    PROBE    available | missing   what `podsnoop probe` reports for the method
    DEFAULT  yes | no              the method probe chooses and a run without --hook
                                   uses (at most one yes per tracer)
    RESULT   events   the forced run loads, attaches, reports the activity inside the
                      selected cgroup (and its child) with this hook, none from outside
             refused  the forced run exits 2 (a wrong flag here): "hook method M is not
                      available"
             fails    the forced run exits 1: "cannot start with M" (load or attach
                      failed although probe offered it: a known limitation, say why)
Every tracer and method probe lists must have a line, and every line a method.
Without an expectation file the runs are judged for consistency with the probe
(available -> events, missing -> refused, the first available is the default).

Prints one line per check (ok / FAIL), the table kernel x tracer x method, and
"N passed, N failed". Exit 0 when nothing failed.
"""
import json
import os
import re
import sys

# ---- tracer checkers ---------------------------------------------------------------
# check_TRACER(method, acts, records) -> (problems, seen)
#   acts     [(where, token, cgroup_id)] of that tracer: where is in, sub or out
#   records  the run's records of that tracer (dicts)
#   problems list of strings (empty when fine); seen: short text for the table


# exec methods that see failed execve() calls (the sched_process_exec hooks fire on
# success only)
EXEC_SEES_FAILURES = {"fentry": True, "syscalls": True, "raw_syscalls": True, "sched_btf": False,
                      "sched_raw": False}


def check_exec(method, acts, recs):
    probs, seen = [], []
    fails_seen = EXEC_SEES_FAILURES.get(method)
    if fails_seen is None:
        probs.append("check.py does not know whether exec method %s reports failed execs "
                     "(EXEC_SEES_FAILURES)" % method)
    for where, tok, cg in acts:
        ok = [r for r in recs if r.get("filename") == "/bin/true" and tok in r.get("args", [])]
        bad = [r for r in recs if r.get("filename") == "/kma-missing/" + tok]
        if where == "out":
            n = len(ok) + len(bad)
            if n:
                probs.append("%d record(s) of the exec outside the selected cgroup (%s)"
                             % (n, tok))
            seen.append("out %d" % n)
            continue
        if len(ok) != 1:
            probs.append("%s: %d records of the successful exec, want 1" % (where, len(ok)))
        for r in ok:
            want = {"args": ["/bin/true", tok], "retval": 0, "cgroup_id": cg, "comm": "true"}
            for k, v in want.items():
                if r.get(k) != v:
                    probs.append("%s: %s=%r, want %r" % (where, k, r.get(k), v))
        want_bad = 1 if fails_seen else 0
        if len(bad) != want_bad:
            probs.append("%s: %d records of the failed exec, want %d"
                         % (where, len(bad), want_bad))
        for r in bad:
            if r.get("retval") != -2 or r.get("cgroup_id") != cg:
                probs.append("%s: failed exec retval=%r cgroup_id=%r, want -2 and %d"
                             % (where, r.get("retval"), r.get("cgroup_id"), cg))
        seen.append("%s %d+%d" % (where, len(ok), len(bad)))
    return probs, " ".join(seen)


# open methods that tell the syscall apart (the function hooks see do_sys_openat2 only)
OPEN_TELLS_SYSCALL = {"syscalls": True, "raw_syscalls": True, "fentry": False, "kprobe": False}


def check_open(method, acts, recs):
    """The file (created by the shell's redirect, then read by cat) and the missing one."""
    probs, seen = [], []
    tells = OPEN_TELLS_SYSCALL.get(method)
    if tells is None:
        probs.append("check.py does not know open method %s (OPEN_TELLS_SYSCALL)" % method)
    for where, tok, cg in acts:
        ok = [r for r in recs if r.get("path", "").endswith("/" + tok)]
        bad = [r for r in recs if r.get("path", "").endswith("/" + tok + ".missing")]
        if where == "out":
            if ok or bad:
                probs.append("%d record(s) of opens outside the selected cgroup (%s)"
                             % (len(ok) + len(bad), tok))
            seen.append("out %d" % (len(ok) + len(bad)))
            continue
        # the redirect opens it for writing (O_CREAT), cat for reading
        if len(ok) != 2:
            probs.append("%s: %d records of the file, want 2" % (where, len(ok)))
        if len(bad) != 1:
            probs.append("%s: %d records of the missing file, want 1" % (where, len(bad)))
        for r in ok:
            if r.get("ret", -1) < 0 or r.get("cgroup_id") != cg:
                probs.append("%s: ret=%r cgroup_id=%r, want an fd and %d"
                             % (where, r.get("ret"), r.get("cgroup_id"), cg))
        if ok and not any(r.get("flags", 0) & 0o100 for r in ok):   # O_CREAT
            probs.append("%s: no open of the file with O_CREAT" % where)
        for r in bad:
            if r.get("ret") != -2 or r.get("cgroup_id") != cg:
                probs.append("%s: missing file ret=%r cgroup_id=%r, want -2 and %d"
                             % (where, r.get("ret"), r.get("cgroup_id"), cg))
        for r in ok + bad:
            if tells and r.get("syscall") not in ("open", "openat"):
                probs.append("%s: syscall=%r" % (where, r.get("syscall")))
                break
            if tells is False and r.get("syscall") != "unknown":
                probs.append("%s: syscall=%r, want unknown" % (where, r.get("syscall")))
                break
        seen.append("%s %d+%d" % (where, len(ok), len(bad)))
    return probs, " ".join(seen)


def check_bio(method, acts, recs):
    """dd's 8 O_DIRECT writes and 8 reads of 4 KiB, charged to its cgroup (readahead of
    dd's own pages, op with an A, is not the file's). At least those: in the run of
    all tracers the fs and cache activities' dd does block I/O in the same cgroup;
    exact totals are checked on this machine (tests/integration/test_bio.py)."""
    probs, seen = [], []
    for where, tok, cg in acts:
        mine = [r for r in recs if r.get("cgroup_id") == cg and r.get("comm") == "dd"]
        if where == "out":
            # judge_events already refuses any record of an unselected cgroup
            seen.append("out -")
            continue
        w = sum(r.get("bytes", 0) for r in mine if r.get("op", "").lstrip("F")[:1] == "W")
        rd = sum(r.get("bytes", 0) for r in mine
                 if r.get("op", "")[:1] == "R" and "A" not in r.get("op", ""))
        if w < 8 * 4096:
            probs.append("%s: %d bytes written by dd in its cgroup, want >= 32768" % (where, w))
        if rd < 8 * 4096:
            probs.append("%s: %d bytes read by dd in its cgroup, want >= 32768" % (where, rd))
        for r in mine:
            if r.get("attribution") != "submitter" or not r.get("disk"):
                probs.append("%s: attribution=%r disk=%r" % (where, r.get("attribution"),
                                                             r.get("disk")))
                break
        seen.append("%s %dW+%dR" % (where, w // 4096, rd // 4096))
    return probs, " ".join(seen)


def check_fs(method, acts, recs):
    """dd: open, 4 x 4 KiB writes, fsync; dd: open, reads of those 16 KiB."""
    probs, seen = [], []
    for where, tok, cg in acts:
        mine = [r for r in recs if r.get("file") == tok]
        if where == "out":
            if mine:
                probs.append("%d fs record(s) of the activity outside the selected cgroup (%s)"
                             % (len(mine), tok))
            seen.append("out %d" % len(mine))
            continue
        ops = {}
        for r in mine:
            ops.setdefault(r.get("op"), []).append(r)
            if r.get("cgroup_id") != cg or r.get("fs") != "ext4" or r.get("path_truncated"):
                probs.append("%s: record %s/%s cgroup_id=%r fs=%r path_truncated=%r"
                             % (where, r.get("op"), tok, r.get("cgroup_id"), r.get("fs"),
                                r.get("path_truncated")))
                break
        writes, reads = ops.get("write", []), ops.get("read", [])
        if len(writes) != 4 or sum(r.get("bytes", 0) for r in writes) != 16384:
            probs.append("%s: %d writes of %d bytes, want 4 of 16384 in all" % (
                where, len(writes), sum(r.get("bytes", 0) for r in writes)))
        if sum(r.get("bytes", 0) for r in reads) != 16384:
            probs.append("%s: reads of %d bytes, want 16384" % (
                where, sum(r.get("bytes", 0) for r in reads)))
        if len(ops.get("fsync", [])) != 1:
            probs.append("%s: %d fsyncs, want 1" % (where, len(ops.get("fsync", []))))
        if len(ops.get("open", [])) != 2:
            probs.append("%s: %d opens, want 2" % (where, len(ops.get("open", []))))
        if any(not r.get("path", "").endswith("/" + tok) for r in mine):
            probs.append("%s: a path does not end in /%s" % (where, tok))
        seen.append("%s %s" % (where, "+".join("%d%s" % (len(ops.get(o, [])), o[0].upper())
                                             for o in ("open", "write", "fsync", "read"))))
    return probs, " ".join(seen)


# cache methods whose access counts are an estimate
CACHE_ESTIMATED = {"fentry": False, "kprobe": False, "tp_btf": True, "tracepoint": True}


def check_cache(method, acts, recs):
    """Per cgroup, summed over intervals: 64 pages read in and 32 dirtied at least."""
    probs, seen = [], []
    est = CACHE_ESTIMATED.get(method)
    if est is None:
        probs.append("check.py does not know whether cache method %s estimates (CACHE_ESTIMATED)"
                     % method)
    for where, tok, cg in acts:
        mine = [r for r in recs if r.get("cgroup_id") == cg]
        if where == "out":
            if mine:
                probs.append("%d cache record(s) of the cgroup outside the selection" % len(mine))
            seen.append("out %d" % len(mine))
            continue
        tot = {k: sum(r.get(k) or 0 for r in mine)
               for k in ("misses", "dirtied", "pages_added", "accesses", "hits")}
        known = bool(mine) and all(r.get("accesses") is not None for r in mine)
        if tot["dirtied"] < 32:
            probs.append("%s: dirtied %d, want >= 32" % (where, tot["dirtied"]))
        if tot["pages_added"] < 96 or tot["misses"] < 48:
            probs.append("%s: pages_added %d misses %d, want >= 96 and >= 48"
                         % (where, tot["pages_added"], tot["misses"]))
        if known and tot["hits"] < 1:
            probs.append("%s: no hits after reading the file twice" % where)
        if any(r.get("estimated") is not (est and known) for r in mine):
            probs.append("%s: estimated is not %s" % (where, est and known))
        seen.append("%s A%s M%d D%d" % (where, tot["accesses"] if known else "-",
                                          tot["misses"], tot["dirtied"]))
    return probs, " ".join(seen)


CHECKERS = {
    "exec": check_exec,
    "open": check_open,
    "bio": check_bio,
    "fs": check_fs,
    "cache": check_cache,
}

# ---- parsing ------------------------------------------------------------------------
SUMMARY_RE = re.compile(
    r"podsnoop: \w+: (\w+): seen (\d+), filtered (\d+), emitted (\d+), lost (\d+) "
    r"\(ring buffer full\), (\d+) \(map full\), read errors (\d+)$")


class Run:
    def __init__(self, tracer, method):
        self.tracer, self.method = tracer, method
        self.acts, self.out, self.err, self.rc = [], [], [], None
        self.records, self.bad_lines = [], []

    def finish(self):
        for line in self.out:
            try:
                self.records.append(json.loads(line))
            except ValueError:
                self.bad_lines.append(line)

    def summary(self, tracer):
        for line in self.err:
            m = SUMMARY_RE.search(line)
            if m and m.group(1) == tracer:
                keys = ("seen", "filtered", "emitted", "lost", "map_full", "read_err")
                return dict(zip(keys, map(int, m.groups()[1:])))
        return None


class Log:
    def __init__(self, path):
        self.begin = self.end = False
        self.kernel, self.probe, self.probe_err, self.probe_rc = "?", {}, [], None
        self.scenario_rc = None   # the host run's (agent/run appends it)
        self.runs, self.bad_probe = [], []
        cur = None
        with open(path, errors="replace") as f:
            for line in f:
                line = line.rstrip("\r\n")
                if not line.startswith("KMA-"):
                    continue
                tag, _, rest = line.partition(" ")
                if tag == "KMA-BEGIN":
                    self.begin = True
                    self.kernel = rest.partition("kernel=")[2] or "?"
                elif tag == "KMA-END":
                    self.end = True
                elif tag == "KMA-SCENARIO-RC":
                    self.scenario_rc = int(rest)
                elif tag == "KMA-PROBE-RC":
                    self.probe_rc = int(rest)
                elif tag == "KMA-PROBE":
                    try:
                        p = json.loads(rest)
                    except ValueError:
                        self.bad_probe.append(rest)
                        continue
                    if p.get("type") == "probe":
                        self.probe[p["tracer"]] = p
                elif tag == "KMA-CASE":
                    kv = dict(x.split("=", 1) for x in rest.split())
                    cur = Run(kv["tracer"], kv["method"])
                    self.runs.append(cur)
                elif tag == "KMA-ACT" and cur:
                    t, where, tok, cg = rest.split()
                    cur.acts.append((t, where, tok, int(cg)))
                elif tag == "KMA-OUT" and cur:
                    cur.out.append(rest)
                elif tag == "KMA-ERR":
                    (cur.err if cur else self.probe_err).append(rest)
                elif tag == "KMA-RC" and cur:
                    cur.rc = int(rest)
                    cur.finish()


def read_expect(path):
    exp = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].split()
            if not line:
                continue
            if (len(line) != 5 or line[2] not in ("available", "missing")
                    or line[3] not in ("yes", "no")
                    or line[4] not in ("events", "refused", "fails")):
                raise SystemExit("%s:%d: want TRACER METHOD available|missing yes|no "
                                 "events|refused|fails" % (path, n))
            exp.setdefault(line[0], {})[line[1]] = {
                "probe": line[2], "default": line[3] == "yes", "result": line[4]}
    return exp


def expect_from_probe(log):
    """No expectation file: what the probe says must hold."""
    exp = {}
    for t, p in log.probe.items():
        for m in p.get("methods", []):
            exp.setdefault(t, {})[m["name"]] = {
                "probe": "available" if m["available"] else "missing",
                "default": m["name"] == p.get("chosen"),
                "result": "events" if m["available"] else "refused"}
    return exp


# ---- judging ------------------------------------------------------------------------
class Verdicts:
    def __init__(self):
        self.passed = self.failed = 0
        self.rows = []

    def add(self, name, probs, detail=""):
        if probs:
            self.failed += 1
            print("FAIL  %s: %s" % (name, "; ".join(probs)))
        else:
            self.passed += 1
            print("ok    %s%s" % (name, ": " + detail if detail else ""))
        return not probs


def judge_events(run, tracer, method, ids):
    """A run that must have traced TRACER with METHOD. Returns (problems, seen)."""
    probs = []
    if run.rc != 0:
        probs.append("agent exited %s" % run.rc)
    if not any(("%s: tracing with %s (" % (tracer, method)) in e for e in run.err):
        probs.append("no '%s: tracing with %s' log line" % (tracer, method))
    errs = [e for e in run.err if e.startswith("podsnoop: error:")]
    if errs:
        probs.append("errors logged: %s" % " | ".join(errs[:3]))
    if run.bad_lines:
        probs.append("%d stdout line(s) are not JSON, e.g. %r" % (len(run.bad_lines),
                                                                 run.bad_lines[0][:120]))
    recs = [r for r in run.records if r.get("type") == tracer]
    losses = [r for r in run.records if r.get("type") == "loss" and r.get("tracer") == tracer]
    if losses:
        probs.append("loss records: %s" % losses)
    for r in recs:
        if "hook" in r and r["hook"] != method:
            probs.append("a record says hook=%s" % r["hook"])
            break
    for r in recs:
        if "cgroup_id" in r and r["cgroup_id"] not in ids:
            probs.append("a record from cgroup %s, outside the selection %s"
                         % (r["cgroup_id"], sorted(ids)))
            break
    s = run.summary(tracer)
    if s is None:
        probs.append("no summary line for %s on stderr" % tracer)
    else:
        if s["lost"] or s["map_full"] or s["read_err"]:
            probs.append("summary counts drops: %s" % s)
        if s["emitted"] < len(recs):
            probs.append("summary says emitted %d but %d records arrived" % (s["emitted"], len(recs)))
    checker = CHECKERS.get(tracer)
    if not checker:
        probs.append("check.py has no checker for tracer %s (add check_%s)" % (tracer, tracer))
        return probs, "?"
    acts = [(w, tok, cg) for t, w, tok, cg in run.acts if t == tracer]
    if not acts:
        probs.append("no activity was done (the agent never became ready?)")
    p, seen = checker(method, acts, recs)
    probs += p
    if s:
        seen += " (seen %d filtered %d emitted %d)" % (s["seen"], s["filtered"], s["emitted"])
    return probs, seen


def judge_refusal(run, tracer, method, result):
    probs = []
    want = ("%s: hook method %s is not available" % (tracer, method) if result == "refused"
            else "%s: cannot start with %s" % (tracer, method))
    want_rc = 2 if result == "refused" else 1
    if run.rc != want_rc:
        probs.append("agent exited %s, want %d" % (run.rc, want_rc))
    if not any(want in e for e in run.err):
        probs.append("no '%s' on stderr (got: %s)" % (want, " | ".join(run.err[-3:])))
    if run.records:
        probs.append("%d records although it must not run" % len(run.records))
    return probs


def judge_kernel(v, name, log_path, result_path, expect_dir):
    print("=== %s" % name)
    probs = []
    if result_path:
        status, reason = "fail", "no result file %s" % result_path
        if os.path.exists(result_path):
            res = dict(re.findall(r"^(\w+)='(.*)'$", open(result_path).read(), re.M))
            status, reason = res.get("KM_STATUS", "fail"), res.get("KM_REASON", "")
        if status != "pass":
            probs.append("boot: %s" % reason)
    if not os.path.exists(log_path):
        v.add("%s run" % name, ["no log %s" % log_path])
        return
    log = Log(log_path)
    if not log.begin:
        probs.append("no KMA-BEGIN: the scenario never ran")
    if not log.end:
        probs.append("no KMA-END: the scenario did not finish")
    if log.scenario_rc not in (None, 0):
        probs.append("the scenario exited %d%s" % (log.scenario_rc, " (timed out)"
                                                   if log.scenario_rc in (124, 137) else ""))
    if log.probe_rc != 0:
        probs.append("podsnoop probe exited %s: %s" % (log.probe_rc, " | ".join(log.probe_err)))
    v.add("%s run" % name, probs, "kernel %s, %d agent runs" % (log.kernel, len(log.runs)))
    if not log.begin:
        return

    epath = os.path.join(expect_dir, name + ".txt") if expect_dir else None
    if epath and os.path.exists(epath):
        exp = read_expect(epath)
    else:
        print("  (no expectation file %s: judged by consistency with the probe)" % epath)
        exp = expect_from_probe(log)

    for t in sorted(set(exp) | set(log.probe)):
        p = log.probe.get(t)
        e = exp.get(t, {})
        probs = []
        if p is None:
            probs.append("probe does not list tracer %s" % t)
        elif not e:
            probs.append("tracer %s has no expectation lines in %s" % (t, epath))
        got = {m["name"]: m for m in (p or {}).get("methods", [])}
        for m in sorted(set(got) | set(e)):
            if m not in got:
                probs.append("probe does not list method %s" % m)
            elif m not in e:
                probs.append("method %s is not in the expectations" % m)
            else:
                a = "available" if got[m]["available"] else "missing"
                if a != e[m]["probe"]:
                    probs.append("%s is %s, want %s" % (m, a, e[m]["probe"]))
        want_def = [m for m, x in e.items() if x["default"]]
        want_chosen = want_def[0] if want_def else ""
        if p is not None and p.get("chosen") != want_chosen:
            probs.append("probe chooses %r, want %r" % (p.get("chosen"), want_chosen))
        v.add("%s %s probe" % (name, t), probs, "chosen %s" % (want_chosen or "(none)"))

        for m in e:
            runs = [r for r in log.runs if r.tracer == t and r.method == m]
            row = [name, t, m, e[m]["probe"], "*" if e[m]["default"] else "",
                   e[m]["result"]]
            if len(runs) != 1 or runs[0].rc is None:
                v.add("%s %s %s" % (name, t, m), ["%d finished runs, want 1" % len(
                    [r for r in runs if r.rc is not None])])
                v.rows.append(row + ["-", "FAIL"])
                continue
            run = runs[0]
            if e[m]["result"] == "events":
                probs, seen = judge_events(run, t, m, run_ids(run))
            else:
                probs, seen = judge_refusal(run, t, m, e[m]["result"]), "-"
            ok = v.add("%s %s %s" % (name, t, m), probs, seen)
            v.rows.append(row + [seen, "ok" if ok else "FAIL"])

    # all tracers at once, default choices
    runs = [r for r in log.runs if r.tracer == "*"]
    if len(runs) != 1 or runs[0].rc is None:
        v.add("%s default run" % name, ["no finished run of all tracers with their defaults"])
        return
    run = runs[0]
    for t in sorted(exp):
        want_def = [m for m, x in exp[t].items() if x["default"]]
        if want_def and exp[t][want_def[0]]["result"] == "fails":
            probs, seen = [], "-"   # the others run on; this one logs why it could not
            if not any("%s: cannot start with %s" % (t, want_def[0]) in e for e in run.err):
                probs.append("no '%s: cannot start with %s' on stderr" % (t, want_def[0]))
        elif want_def:
            probs, seen = judge_events(run, t, want_def[0], run_ids(run))
        else:
            probs, seen = [], "-"
            if not any("%s: no hook this kernel offers" % t in e for e in run.err):
                probs.append("no '%s: no hook this kernel offers' on stderr" % t)
        ok = v.add("%s %s default" % (name, t), probs, seen)
        v.rows.append([name, t, "(default)", "", want_def[0] if want_def else "-", "events"
                       if want_def else "-", seen, "ok" if ok else "FAIL"])


def run_ids(run):
    """The selected cgroup ids: in and sub."""
    return {cg for _, w, _, cg in run.acts if w in ("in", "sub")}


def main(argv):
    expect_dir, table, specs = None, None, []
    i = 0
    while i < len(argv):
        if argv[i] == "--expect-dir":
            expect_dir = argv[i + 1]
            i += 2
        elif argv[i] == "--table":
            table = argv[i + 1]
            i += 2
        elif "=" in argv[i]:
            specs.append(argv[i])
            i += 1
        else:
            print(__doc__)
            return 2
    v = Verdicts()
    for spec in specs:
        name, _, rest = spec.partition("=")
        log_path, _, result_path = rest.partition(",")
        judge_kernel(v, name, log_path, result_path or None, expect_dir)
    hdr = ["kernel", "tracer", "method", "probe", "default", "want", "events seen", "verdict"]
    widths = [max(len(str(r[i])) for r in v.rows + [hdr]) for i in range(len(hdr))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
             for r in [hdr] + v.rows]
    print()
    print("\n".join(lines))
    if table:
        with open(table, "w") as f:
            f.write("\n".join(lines) + "\n")
    print("%d passed, %d failed" % (v.passed, v.failed))
    return 0 if v.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
