"""The kernel matrix's judge (tests/kernel-matrix/agent/check.py) on made-up scenario
logs: a good log passes, and each way a kernel can misbehave makes it fail. The real
runs happen in tests/kernel-matrix/agent/run (part of make test)."""
import importlib.util
import json
import os

import pytest

_spec = importlib.util.spec_from_file_location("kma_check", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "kernel-matrix", "agent", "check.py"))
check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check)

METHODS = ["syscalls", "sched_btf", "sched_raw"]
IN, SUB, OUT = 40, 41, 39


def exec_rec(args, hook, cg, retval=0, filename="/bin/true"):
    return {"type": "exec", "comm": "true" if retval == 0 else "sh", "filename": filename,
            "args": args, "retval": retval, "cgroup_id": cg, "hook": hook}


def good_case(n, tracer, method, sees_failures=None):
    """Lines of one run that did everything right."""
    if sees_failures is None:
        sees_failures = method == "syscalls"
    lines = ["KMA-CASE tracer=%s method=%s" % (tracer, "default" if tracer == "*" else method)]
    recs = []
    for where, cg in (("in", IN), ("sub", SUB), ("out", OUT)):
        tok = "kma-exec-%d-%s" % (n, where)
        lines.append("KMA-ACT exec %s %s %d" % (where, tok, cg))
        if where != "out":
            recs.append(exec_rec(["/bin/true", tok], method, cg))
            if sees_failures:
                recs.append(exec_rec(["/kma-missing/" + tok], method, cg, -2,
                                     "/kma-missing/" + tok))
    lines += ["KMA-OUT " + json.dumps(r) for r in recs]
    lines += ["KMA-ERR podsnoop: info: exec: tracing with %s (hooks)" % method,
              "KMA-ERR podsnoop: info: ready",
              "KMA-ERR podsnoop: info: exec: seen 9, filtered 5, emitted %d, lost 0 (ring "
              "buffer full), 0 (map full), read errors 0" % len(recs),
              "KMA-RC 0"]
    return lines


def probe_line(available=(True, True, True), chosen="syscalls"):
    return "KMA-PROBE " + json.dumps({
        "type": "probe", "tracer": "exec", "chosen": chosen,
        "methods": [{"name": m, "hooks": "h", "available": a}
                    for m, a in zip(METHODS, available)]})


def good_log():
    lines = ["KMA-BEGIN kernel=6.1.0-test", "KMA-PROBE-RC 0", probe_line()]
    for n, m in enumerate(METHODS, 1):
        lines += good_case(n, "exec", m)
    lines += good_case(4, "*", "syscalls")
    return lines + ["KMA-END"]


EXPECT = """# test
exec syscalls  available yes events
exec sched_btf available no  events
exec sched_raw available no  events
"""


def judge(tmp_path, lines, expect=EXPECT, result=None):
    (tmp_path / "k.txt").write_text(expect)
    log = tmp_path / "console.log"
    log.write_text("\n".join(lines) + "\n")
    spec = "k=%s" % log
    if result is not None:
        (tmp_path / "result").write_text("KM_STATUS='%s'\nKM_REASON='r'\n" % result)
        spec += ",%s" % (tmp_path / "result")
    v = check.Verdicts()
    check.judge_kernel(v, "k", str(log), spec.partition(",")[2] or None, str(tmp_path))
    return v


def test_good_log_passes(tmp_path, capsys):
    v = judge(tmp_path, good_log(), result="pass")
    assert (v.passed, v.failed) == (6, 0), capsys.readouterr().out


def replace_case(lines, method, new):
    start = lines.index("KMA-CASE tracer=exec method=%s" % method)
    end = lines.index("KMA-RC 0", start) + 1
    return lines[:start] + new + lines[end:]


def failing(tmp_path, capsys, lines, **kw):
    v = judge(tmp_path, lines, **kw)
    out = capsys.readouterr().out
    assert v.failed >= 1, out
    return out


def test_record_from_outside_fails(tmp_path, capsys):
    lines = good_log()
    i = lines.index("KMA-ERR podsnoop: info: exec: tracing with sched_btf (hooks)")
    lines.insert(i, "KMA-OUT " + json.dumps(exec_rec(["/bin/true", "kma-exec-2-out"],
                                                       "sched_btf", OUT)))
    out = failing(tmp_path, capsys, lines)
    assert "FAIL  k exec sched_btf" in out and "outside" in out


def test_wrong_hook_in_records_fails(tmp_path, capsys):
    lines = good_log()
    case = [l.replace('"hook": "sched_raw"', '"hook": "sched_btf"')
            for l in good_case(3, "exec", "sched_raw")]
    out = failing(tmp_path, capsys, replace_case(lines, "sched_raw", case))
    assert "hook=sched_btf" in out


def test_missing_inside_event_fails(tmp_path, capsys):
    case = [l for l in good_case(1, "exec", "syscalls") if "kma-exec-1-sub" not in l
            or l.startswith("KMA-ACT")]
    out = failing(tmp_path, capsys, replace_case(good_log(), "syscalls", case))
    assert "sub: 0 records of the successful exec" in out


def test_failed_exec_on_a_success_only_hook_fails(tmp_path, capsys):
    case = good_case(2, "exec", "sched_btf", sees_failures=True)
    out = failing(tmp_path, capsys, replace_case(good_log(), "sched_btf", case))
    assert "records of the failed exec, want 0" in out


def test_run_that_should_be_refused_fails(tmp_path, capsys):
    expect = EXPECT.replace("sched_raw available no  events", "sched_raw missing no refused")
    lines = [probe_line((True, True, False)) if l.startswith("KMA-PROBE {") else l
             for l in good_log()]
    out = failing(tmp_path, capsys, lines, expect=expect)
    assert "FAIL  k exec sched_raw" in out and "want 2" in out


def test_refusal_passes_when_expected(tmp_path, capsys):
    expect = EXPECT.replace("sched_raw available no  events", "sched_raw missing no refused")
    lines = [probe_line((True, True, False)) if l.startswith("KMA-PROBE {") else l
             for l in good_log()]
    refused = ["KMA-CASE tracer=exec method=sched_raw",
               "KMA-ERR podsnoop: error: exec: hook method sched_raw is not available on "
               "this kernel (see `podsnoop probe`)", "KMA-RC 2"]
    v = judge(tmp_path, replace_case(lines, "sched_raw", refused), expect=expect)
    assert v.failed == 0, capsys.readouterr().out


def test_other_default_choice_fails(tmp_path, capsys):
    lines = [probe_line(chosen="sched_btf") if l.startswith("KMA-PROBE {") else l
             for l in good_log()]
    out = failing(tmp_path, capsys, lines)
    assert "probe chooses 'sched_btf', want 'syscalls'" in out


def test_method_without_expectation_fails(tmp_path, capsys):
    expect = "".join(l + "\n" for l in EXPECT.splitlines() if "sched_raw" not in l)
    out = failing(tmp_path, capsys, good_log(), expect=expect)
    assert "method sched_raw is not in the expectations" in out


def test_unfinished_scenario_fails(tmp_path, capsys):
    out = failing(tmp_path, capsys, good_log()[:-1])
    assert "no KMA-END" in out


def test_host_scenario_timeout_fails(tmp_path, capsys):
    out = failing(tmp_path, capsys, good_log() + ["KMA-SCENARIO-RC 124"])
    assert "timed out" in out


def test_failed_boot_fails(tmp_path, capsys):
    out = failing(tmp_path, capsys, good_log(), result="fail")
    assert "boot: r" in out


def test_tracer_without_checker_fails(tmp_path, capsys, monkeypatch):
    monkeypatch.delitem(check.CHECKERS, "exec")
    out = failing(tmp_path, capsys, good_log())
    assert "no checker for tracer exec" in out


@pytest.mark.parametrize("stat", ["lost 3", "read errors 2"])
def test_drops_in_summary_fail(tmp_path, capsys, stat):
    lines = good_log()
    i = next(k for k, l in enumerate(lines) if "emitted" in l)
    lines[i] = lines[i].replace("lost 0", stat) if stat.startswith("lost") else \
        lines[i].replace("read errors 0", stat)
    out = failing(tmp_path, capsys, lines)
    assert "summary counts drops" in out
