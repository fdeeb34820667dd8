"""open tracer against the real kernel: exact record counts, results and
errors, the in-kernel filters and their negative cases, paths up to PATH_MAX,
each syscall of the family, the legacy per-call state, text output."""
import ctypes
import errno
import json
import os
import subprocess
import sys
import time

import pytest
from podsnoop_harness import Agent, host_mntns, run_agent_once, unique

PY = "/usr/bin/python3"
PATH_MAX = 4096
O_CLOEXEC = 0o2000000


def opens(agent, path):
    return [r for r in agent.records() if r.get("type") == "open" and r["path"] == path]


def wait_count(agent, path, n, timeout=20):
    """Wait until n records for path arrived (the agent drains on a timer)."""
    deadline = time.time() + timeout
    while len(opens(agent, path)) < n and time.time() < deadline:
        time.sleep(0.05)
    return opens(agent, path)


def run_py(cgroup, code, *args):
    """Run a Python snippet inside the cgroup; its stdout parsed as JSON."""
    p = cgroup.run([PY, "-c", code] + [str(a) for a in args], capture_output=True, check=True)
    return json.loads(p.stdout)


OPEN_N = r"""
import json, os, sys
path, n = sys.argv[1], int(sys.argv[2])
fds = []
for _ in range(n):
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    fds.append(fd)
    os.close(fd)
print(json.dumps({"pid": os.getpid(), "fds": fds}))
"""


def test_exactly_n_records_with_fd_and_flags(cgroup, tmp_path, syshook):
    path = str(tmp_path / unique("opened"))
    open(path, "w").close()
    n = 2000
    with Agent("--tracers", "open", "--hook", "open=" + syshook, "--cgroup", cgroup.path) as a:
        out = run_py(cgroup, OPEN_N, path, n)
        subprocess.run(["cat", path], check=True)       # the same path from outside
        got = wait_count(a, path, n)
        time.sleep(0.3)                                 # anything extra would show up now
        assert a.stop() == 0
    got = opens(a, path)
    assert len(got) == n, "expected exactly %d open records, got %d" % (n, len(got))
    assert [r["ret"] for r in got] == out["fds"]
    for r in got:
        assert r["pid"] == out["pid"] and r["tid"] == out["pid"]
        assert r["syscall"] == "openat" and r["dirfd"] == -100      # AT_FDCWD
        # Python adds O_CLOEXEC to every os.open
        assert r["flags"] == os.O_RDONLY | os.O_NOFOLLOW | O_CLOEXEC
        assert r["mode"] == 0
        assert r["path_truncated"] is False
        assert r["cgroup_id"] == cgroup.id and r["mntns_id"] == host_mntns()
        assert r["uid"] == os.getuid() and r["comm"] == "python3"
        assert r["hook"] == syshook
        assert 0 < r["latency_ns"] < 10 * 10**9
    # records are in order, timestamps from the wall clock
    ts = [r["ts_ns"] for r in got]
    assert ts == sorted(ts) and abs(ts[0] / 1e9 - time.time()) < 60
    s = a.summary("open")
    assert s["lost"] == 0 and s["map_full"] == 0 and s["read_err"] == 0


def test_create_mode_and_enoent(cgroup, tmp_path, syshook):
    created = str(tmp_path / unique("created"))
    missing = str(tmp_path / unique("missing"))
    code = r"""
import errno, json, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
try:
    os.open(sys.argv[2], os.O_RDONLY)
except FileNotFoundError:
    pass
print(json.dumps({"fd": fd}))
"""
    with Agent("--tracers", "open", "--hook", "open=" + syshook, "--cgroup", cgroup.path) as a:
        out = run_py(cgroup, code, created, missing)
        c = a.wait_for(lambda r: r.get("path") == created)
        m = a.wait_for(lambda r: r.get("path") == missing)
        a.stop()
    assert c["ret"] == out["fd"] and c["mode"] == 0o640
    assert c["flags"] == os.O_WRONLY | os.O_CREAT | os.O_EXCL | O_CLOEXEC
    assert m["ret"] == -errno.ENOENT and m["flags"] == os.O_RDONLY | O_CLOEXEC


def test_open_failed_keeps_only_failures(cgroup, tmp_path, syshook):
    good = str(tmp_path / unique("good"))
    open(good, "w").close()
    missing = str(tmp_path / unique("missing"))
    code = r"""
import json, os, sys
for _ in range(5):
    os.close(os.open(sys.argv[1], os.O_RDONLY))
    try:
        os.open(sys.argv[2], os.O_RDONLY)
    except FileNotFoundError:
        pass
print("{}")
"""
    with Agent("--tracers", "open", "--hook", "open=" + syshook, "--cgroup", cgroup.path, "--open-failed") as a:
        run_py(cgroup, code, good, missing)
        wait_count(a, missing, 5)
        time.sleep(0.3)
        a.stop()
    assert len(opens(a, missing)) == 5
    assert all(r["ret"] == -errno.ENOENT for r in opens(a, missing))
    assert opens(a, good) == [], "--open-failed reported a successful open"
    s = a.summary("open")
    assert s["filtered"] >= 5  # the successes, dropped in the kernel


def test_nothing_from_outside_the_cgroup(cgroup, tmp_path, syshook):
    path = str(tmp_path / unique("outside"))
    open(path, "w").close()
    marker = str(tmp_path / unique("inside"))
    with Agent("--tracers", "open", "--hook", "open=" + syshook, "--cgroup", cgroup.path) as a:
        for _ in range(50):
            os.close(os.open(path, os.O_RDONLY))       # this test process: not selected
        subprocess.run(["cat", path], check=True)
        cgroup.run(["/bin/sh", "-c", ': < "$0"', path])  # the same path, from inside
        cgroup.run(["/bin/sh", "-c", ': > "$0"', marker])
        a.wait_for(lambda r: r.get("path") == marker)
        a.stop()
    got = opens(a, path)
    assert len(got) == 1 and got[0]["cgroup_id"] == cgroup.id, got
    assert all(r["cgroup_id"] == cgroup.id for r in a.records() if r["type"] == "open")


def test_filtered_opens_never_reach_the_ring_buffer(cgroup, tmp_path, syshook):
    path = str(tmp_path / unique("f"))
    open(path, "w").close()
    with Agent("--tracers", "open", "--hook", "open=" + syshook, "--cgroup", cgroup.path) as a:
        for _ in range(200):
            os.close(os.open(path, os.O_RDONLY))
        time.sleep(0.2)
        assert a.stop() == 0
    s = a.summary("open")
    assert s["seen"] >= 200
    assert s["filtered"] == s["seen"] and s["emitted"] == 0
    assert [r for r in a.records() if r["type"] == "open"] == []


def long_path(tmp_path, total):
    """A path of exactly `total` bytes under tmp_path, of directories that do not exist."""
    base = str(tmp_path) + "/"
    body = ""
    while len(base) + len(body) < total:
        body += "d" * min(200, total - len(base) - len(body) - 1) + "/"
    p = (base + body)[:total]
    if p.endswith("/"):
        p = p[:-1] + "x"
    assert len(p) == total
    return p


def test_path_max_minus_one_whole_and_longer_flagged(cgroup, tmp_path):
    p4095 = long_path(tmp_path, PATH_MAX - 1)   # the longest path the kernel accepts
    p5000 = long_path(tmp_path, 5000)           # refused: ENAMETOOLONG
    code = r"""
import os, sys
for p in sys.argv[1:]:
    try:
        os.open(p, os.O_RDONLY)
    except OSError as e:
        print(e.errno)
"""
    with Agent("--tracers", "open", "--cgroup", cgroup.path) as a:
        out = cgroup.run([PY, "-c", code, p4095, p5000], capture_output=True, check=True)
        whole = a.wait_for(lambda r: r.get("path") == p4095)
        cut = a.wait_for(lambda r: r.get("type") == "open" and r["path"] == p5000[:PATH_MAX - 1])
        a.stop()
    assert out.stdout.split() == [b"%d" % errno.ENOENT, b"%d" % errno.ENAMETOOLONG]
    assert whole["path_truncated"] is False and len(whole["path"]) == PATH_MAX - 1
    assert whole["ret"] == -errno.ENOENT
    assert cut["path_truncated"] is True and cut["ret"] == -errno.ENAMETOOLONG
    # never corrupted: every long record is an exact prefix of what was opened
    for r in a.records():
        if r.get("type") == "open" and len(r["path"]) > 1000:
            assert r["path"] in (p4095, p5000[:PATH_MAX - 1])


OPENAT2 = r"""
import ctypes, json, os, sys
class OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]
libc = ctypes.CDLL(None, use_errno=True)
d = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
how = OpenHow(os.O_RDWR | os.O_CREAT | 0o2000000, 0o600, 0)
fd = libc.syscall(437, d, sys.argv[2].encode(), ctypes.byref(how), ctypes.sizeof(how))  # openat2
fd2 = os.open(sys.argv[3], os.O_RDONLY, dir_fd=d)
print(json.dumps({"dirfd": d, "fd": fd, "fd2": fd2}))
"""


def test_openat2_and_dirfd(cgroup, tmp_path, syshook):
    name2, name = unique("o2"), unique("at")
    open(str(tmp_path / name), "w").close()
    with Agent("--tracers", "open", "--hook", "open=" + syshook, "--cgroup", cgroup.path) as a:
        out = run_py(cgroup, OPENAT2, str(tmp_path), name2, name)
        r2 = a.wait_for(lambda r: r.get("path") == name2)
        r = a.wait_for(lambda r: r.get("path") == name)
        a.stop()
    assert out["fd"] >= 0, "openat2 failed in the test program"
    assert r2["syscall"] == "openat2" and r2["ret"] == out["fd"] and r2["dirfd"] == out["dirfd"]
    assert r2["flags"] == os.O_RDWR | os.O_CREAT | O_CLOEXEC and r2["mode"] == 0o600
    assert r["syscall"] == "openat" and r["dirfd"] == out["dirfd"] and r["ret"] == out["fd2"]


def test_legacy_per_call_state(cgroup, tmp_path, syshook):
    # kernels before 5.11 keep the call in a hash by thread id: same records
    path = str(tmp_path / unique("legacy"))
    open(path, "w").close()
    env = dict(os.environ, PODSNOOP_OPEN_LEGACY="1")
    with Agent("--tracers", "open", "--hook", "open=" + syshook, "--cgroup", cgroup.path, env=env) as a:
        out = run_py(cgroup, OPEN_N, path, 300)
        wait_count(a, path, 300)
        time.sleep(0.2)
        a.stop()
    assert any("no task storage" in l for l in a.stderr)
    got = opens(a, path)
    assert [r["ret"] for r in got] == out["fds"]
    assert all(r["pid"] == out["pid"] and r["cgroup_id"] == cgroup.id and r["comm"] == "python3"
               and r["mntns_id"] == host_mntns() for r in got)


def test_text_output(cgroup, tmp_path):
    path = str(tmp_path / unique("text"))
    missing = path + "-missing"
    open(path, "w").close()
    with Agent("--tracers", "open", "--cgroup", cgroup.path, "--output", "text") as a:
        cgroup.run(["/bin/sh", "-c", ': < "$0"; : < "$1"', path, missing], stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline and not any(missing.encode() in l for l in a.lines):
            time.sleep(0.05)
        a.stop()
    text = b"".join(a.lines).decode()
    lines = text.splitlines()
    assert lines[0].split() == ["TIME", "PID", "COMM", "FD", "ERR", "LAT(us)", "PATH"]
    ok = [l for l in lines if l.endswith(" " + path)]
    bad = [l for l in lines if l.endswith(" " + missing)]
    assert len(ok) == 1 and len(bad) == 1, text
    assert ok[0].split()[2] == "sh" and int(ok[0].split()[3]) >= 0 and ok[0].split()[4] == "0"
    assert bad[0].split()[3:5] == ["-1", str(errno.ENOENT)]


def test_probe_lists_open_and_bio():
    rc, out, err = run_agent_once("probe", "--output", "ndjson")
    assert rc == 0, err
    recs = {r.get("tracer"): r for r in map(json.loads, out.splitlines())}
    op = {m["name"]: m["available"] for m in recs["open"]["methods"]}
    # this kernel has syscall tracepoints but no kprobes and no BPF trampolines
    assert op == {"syscalls": True, "raw_syscalls": True, "fentry": False, "kprobe": False}
    assert recs["open"]["chosen"] == "syscalls"
    bio = {m["name"]: m["available"] for m in recs["bio"]["methods"]}
    assert bio == {"io_start": True, "getrq": True, "io_start_raw": True, "getrq_raw": True}
    assert recs["bio"]["chosen"] == "io_start"


@pytest.mark.parametrize("hook", ["fentry", "kprobe"])
def test_missing_hook_is_a_clear_error(hook):
    rc, out, err = run_agent_once("--tracers", "open", "--hook", "open=" + hook, "--duration", "1")
    assert rc == 2
    assert "open: hook method %s is not available on this kernel" % hook in err


def test_the_agent_does_not_trace_itself(tmp_path):
    """The agent's own opens (its metadata refresh reads /proc and the cgroup
    tree after the tracers attach; its spool opens a file per batch) never
    become records, with no selection at all; another process's opens do."""
    path = str(tmp_path / unique("other"))
    with Agent("--tracers", "open") as a:
        subprocess.run(["sh", "-c", ": > %s" % path], check=True)
        deadline = time.time() + 10
        while time.time() < deadline and not any(
                r.get("path") == path for r in a.records()):
            time.sleep(0.1)
        time.sleep(1)  # the metadata thread's first sync runs meanwhile
        assert a.stop() == 0
    recs = [r for r in a.records() if r.get("type") == "open"]
    assert any(r["path"] == path for r in recs)
    assert [r for r in recs if r["pid"] == a.proc.pid] == []


SHARED = r"""
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.syscall(2, sys.argv[1].encode(), os.O_RDONLY, 0)     # open(2) itself
os.close(os.open(sys.argv[2], os.O_RDONLY))                     # openat
os.execv("/bin/true", ["/bin/true", sys.argv[3]])
"""


def test_exec_and_open_share_the_raw_dispatcher(cgroup, tmp_path):
    """exec and open both on raw_syscalls: one dispatcher runs each tracer's
    handlers (open(2) by its own number), and stopping one tracer's records
    is not the other's. The same run from outside the cgroup gives nothing."""
    p1, p2 = str(tmp_path / unique("sys-open")), str(tmp_path / unique("sys-openat"))
    for p in (p1, p2):
        open(p, "w").close()
    tag = unique("tag")
    with Agent("--tracers", "exec,open", "--hook", "exec=raw_syscalls", "--hook",
               "open=raw_syscalls", "--cgroup", cgroup.path) as a:
        subprocess.run([PY, "-c", SHARED, p1, p2, tag + "-out"], check=True)   # not selected
        cgroup.run([PY, "-c", SHARED, p1, p2, tag], check=True)
        ex = a.wait_for(lambda r: r.get("type") == "exec" and r.get("args") == ["/bin/true", tag])
        o1 = a.wait_for(lambda r: r.get("path") == p1)
        o2 = a.wait_for(lambda r: r.get("path") == p2)
        assert a.stop() == 0
    assert ex["hook"] == "raw_syscalls" and ex["retval"] == 0 and ex["filename"] == "/bin/true"
    assert o1["hook"] == o2["hook"] == "raw_syscalls"
    assert o1["syscall"] == "open" and o1["ret"] >= 0 and "dirfd" not in o1
    assert o2["syscall"] == "openat" and o2["ret"] >= 0
    assert o1["pid"] == o2["pid"] == ex["pid"]
    assert len(opens(a, p1)) == 1 and len(opens(a, p2)) == 1
    assert [r for r in a.records() if r.get("type") == "exec"
            and tag + "-out" in r.get("args", [])] == []
    assert [r for r in a.records() if r.get("type") == "open"
            and r["cgroup_id"] != cgroup.id] == []
    for t in ("exec", "open"):
        s = a.summary(t)
        assert s["lost"] == 0 and s["map_full"] == 0
