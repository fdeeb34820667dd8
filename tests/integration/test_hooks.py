"""The hook method exec, open and fs take by default, from what `podsnoop probe`
finds on this kernel (no BPF trampolines, no kprobes): the syscall
tracepoints, which cost whole workloads less than the raw syscall dispatcher
here (docs/hooks.md). Against the real kernel: the agent attaches what probe
chose and delivers exact records with it; --hook overrides the choice both
ways; a method this kernel lacks is a flag error (exit 2), never a partial
start."""
import json
import re
import subprocess
import time
import urllib.request

import pytest
from fsworkload import probe_tracers, run as workload
from podsnoop_harness import Agent, make_program, run_agent_once, unique

SYSCALL_TRACERS = ("exec", "open", "fs")


@pytest.fixture(scope="module", autouse=True)
def no_trampolines():
    p = probe_tracers()
    avail = {t: {m["name"] for m in p[t]["methods"] if m["available"]} for t in SYSCALL_TRACERS}
    if any("fentry" in a or "kprobe" in a for a in avail.values()):
        pytest.skip("this kernel has function hooks: they come first (kernel matrix)")
    if not all({"syscalls", "raw_syscalls"} <= a for a in avail.values()):
        pytest.skip("needs both syscall methods: %s" % avail)


def attach_points(pid):
    """The hooks the agent's BPF programs are attached to (`bpftool perf`)."""
    out = subprocess.run(["bpftool", "perf", "-j"], capture_output=True, text=True,
                         check=True).stdout
    return {(e["fd_type"], e.get("tracepoint")) for e in json.loads(out) if e["pid"] == pid}


def method_info(port):
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read()
    return dict(re.findall(r'^podsnoop_tracer_info\{tracer="(\w+)",method="(\w+)"\} 1$',
                           body.decode(), re.M))


def run_agent(cgroup, tmp_path, progdir, *flags):
    """The agent selecting cgroup with flags: an exec, and an open + 3 x (write, fsync)
    of a file on ext4, inside the cgroup and outside it. Returns what it logged,
    attached and exposed, and the records of the activity."""
    prog, outside = make_program(progdir), make_program(progdir)
    path, other = str(tmp_path / unique("in")), str(tmp_path / unique("out"))
    with Agent("--cgroup", cgroup.path, "--cri-socket", "none", "--fs-min-us", 0,
               "--listen", "127.0.0.1:0", *flags) as a:
        attached = attach_points(a.proc.pid)
        info = method_info(a.listen_port())
        cgroup.run([prog, "in"])
        subprocess.run([outside, "out"], check=True)
        res = workload("fsync-writes", path, 3, 4096, cgroup=cgroup)
        workload("fsync-writes", other, 3, 4096)
        a.wait_for(lambda r: r.get("type") == "exec" and r["filename"] == prog)
        deadline = time.time() + 20
        while time.time() < deadline and sum(
                r.get("type") == "fs" and r["path"] == path and r["op"] == "fsync"
                for r in a.records()) < 3:
            time.sleep(0.1)
        time.sleep(0.3)     # anything extra would show up now
        assert a.stop() == 0
    recs = a.records()
    taken = dict(re.findall(r"info: (\w+): tracing with (\w+) ", "".join(a.stderr)))
    return {"taken": taken, "attached": attached, "info": info, "res": res, "agent": a,
            "exec": [r for r in recs if r.get("type") == "exec"
                     and r["filename"] in (prog, outside)],
            "open": [r for r in recs if r.get("type") == "open" and r["path"] in (path, other)],
            "fs": [r for r in recs if r.get("type") == "fs" and r["path"] in (path, other)],
            "prog": prog, "path": path}


def check_records(run, cgroup, want):
    """Exact records of the activity, each saying its tracer's hook method."""
    ex, op, fs = run["exec"], run["open"], run["fs"]
    assert [r["filename"] for r in ex] == [run["prog"]]
    assert ex[0]["args"] == [run["prog"], "in"] and ex[0]["retval"] == 0
    assert [r["path"] for r in op] == [run["path"]]
    assert op[0]["syscall"] == "openat" and op[0]["ret"] >= 0
    assert op[0]["pid"] == run["res"]["pid"]
    assert sorted(r["op"] for r in fs) == ["fsync"] * 3 + ["open"] + ["write"] * 3
    assert {r["path"] for r in fs} == {run["path"]}
    assert sorted(r["offset"] for r in fs if r["op"] == "write") == [0, 4096, 8192]
    for t, recs in (("exec", ex), ("open", op), ("fs", fs)):
        assert {r["hook"] for r in recs} == {want[t]}, t
        assert {r["cgroup_id"] for r in recs} == {cgroup.id}, t
        s = run["agent"].summary(t)
        assert s["lost"] == 0 and s["map_full"] == 0 and s["read_err"] == 0, (t, s)


def hooks_of(method):
    """What a method of exec, open and fs attaches here."""
    if method == "raw_syscalls":
        return {("raw_tracepoint", "sys_enter"), ("raw_tracepoint", "sys_exit")}
    return {("tracepoint", "sys_%s_%s" % (d, sc)) for d in ("enter", "exit")
            for sc in ("execve", "openat", "write", "fsync")}


def check_attached(run, want):
    methods = set(want.values())
    for m in ("raw_syscalls", "syscalls"):
        if m in methods:
            assert hooks_of(m) <= run["attached"], (m, run["attached"])
        else:
            assert not hooks_of(m) & run["attached"], (m, run["attached"])
    assert {t: run["info"][t] for t in SYSCALL_TRACERS} == want
    assert {t: run["taken"][t] for t in SYSCALL_TRACERS} == want


def test_probe_chooses_the_syscall_tracepoints():
    p = probe_tracers()
    assert {t: p[t]["chosen"] for t in SYSCALL_TRACERS} == dict.fromkeys(SYSCALL_TRACERS,
                                                                        "syscalls")
    for t in SYSCALL_TRACERS:
        names = [m["name"] for m in p[t]["methods"]]
        assert names.index("syscalls") < names.index("raw_syscalls"), names
    rc, out, err = run_agent_once("probe")
    assert rc == 0, err
    for t in SYSCALL_TRACERS:
        assert "\n%s: syscalls\n" % t in out
    # the choice is per tracer: the same whichever run together
    for tracers in ("exec", "open,fs", "fs"):
        p = probe_tracers("--tracers", tracers)
        assert {t: p[t]["chosen"] for t in SYSCALL_TRACERS} == dict.fromkeys(
            SYSCALL_TRACERS, "syscalls")
    p = probe_tracers("--hook", "fs=raw_syscalls")
    assert p["fs"]["chosen"] == "raw_syscalls" and p["exec"]["chosen"] == "syscalls"


def test_default_runs_the_syscall_tracepoints(cgroup, tmp_path, progdir):
    run = run_agent(cgroup, tmp_path, progdir)
    want = dict.fromkeys(SYSCALL_TRACERS, "syscalls")
    check_attached(run, want)
    check_records(run, cgroup, want)


def test_hook_forces_the_dispatcher(cgroup, tmp_path, progdir):
    run = run_agent(cgroup, tmp_path, progdir, "--hook", "exec=raw_syscalls", "--hook",
                    "open=raw_syscalls", "--hook", "fs=raw_syscalls")
    want = dict.fromkeys(SYSCALL_TRACERS, "raw_syscalls")
    check_attached(run, want)
    check_records(run, cgroup, want)


def test_hook_mixes_methods(cgroup, tmp_path, progdir):
    """fs forced onto the dispatcher beside exec's and open's tracepoints."""
    run = run_agent(cgroup, tmp_path, progdir, "--hook", "fs=raw_syscalls")
    want = {"exec": "syscalls", "open": "syscalls", "fs": "raw_syscalls"}
    assert {("tracepoint", "sys_enter_openat"), ("tracepoint", "sys_enter_execve")} <= \
        run["attached"]
    assert ("tracepoint", "sys_enter_write") not in run["attached"]
    assert {("raw_tracepoint", "sys_enter"), ("raw_tracepoint", "sys_exit")} <= run["attached"]
    assert {t: run["info"][t] for t in SYSCALL_TRACERS} == want
    check_records(run, cgroup, want)


@pytest.mark.parametrize("forced", [None, "raw_syscalls", "syscalls"])
def test_exec_alone_default_and_forced(cgroup, progdir, forced):
    prog = make_program(progdir)
    flags = ["--hook", "exec=" + forced] if forced else []
    with Agent("--tracers", "exec", "--cgroup", cgroup.path, *flags) as a:
        attached = attach_points(a.proc.pid)
        cgroup.run([prog])
        rec = a.wait_for(lambda r: r.get("filename") == prog)
        assert a.stop() == 0
    want = forced or "syscalls"
    assert rec["hook"] == want
    assert any("exec: tracing with %s (" % want in l for l in a.stderr)
    if want == "raw_syscalls":
        assert ("raw_tracepoint", "sys_enter") in attached
        assert ("tracepoint", "sys_enter_execve") not in attached
    else:
        assert ("tracepoint", "sys_enter_execve") in attached
        assert ("raw_tracepoint", "sys_enter") not in attached


@pytest.mark.parametrize("tracers,hook", [("exec", "exec=fentry"), ("open", "open=kprobe"),
                                          (None, "fs=fentry"), (None, "exec=fentry")])
def test_a_method_this_kernel_lacks_is_a_flag_error(cgroup, tracers, hook):
    flags = ["--tracers", tracers] if tracers else []
    rc, out, err = run_agent_once(*flags, "--hook", hook, "--cgroup", cgroup.path,
                                  "--cri-socket", "none", "--duration", 1)
    tracer, method = hook.split("=")
    assert rc == 2, err
    assert "error: %s: hook method %s is not available on this kernel (see `podsnoop probe`)" % (
        tracer, method) in err
    assert "info: ready" not in err and "tracing with" not in err
    assert out == ""
    # probe says the same: nothing chosen for it
    p = probe_tracers("--hook", hook)
    assert p[tracer]["chosen"] == ""
