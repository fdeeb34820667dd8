"""exec tracer against the real kernel: exact records, in-kernel filters and
their negative cases, failures, truncation, odd bytes, clean stop."""
import json
import os
import signal
import subprocess
import time

import pytest
from podsnoop_harness import (Agent, Cgroup, host_mntns, make_program, run_agent_once,
                              unique)


def execs(agent, path):
    return [r for r in agent.records() if r.get("type") == "exec" and r["filename"] == path]


def test_exact_record_in_cgroup_and_nothing_from_outside(cgroup, progdir, syshook):
    inside, outside = make_program(progdir), make_program(progdir)
    args = ["--alpha", unique("arg"), "two words", ""]
    with Agent("--tracers", "exec", "--hook", "exec=" + syshook, "--cgroup", cgroup.path) as a:
        child = cgroup.popen([inside] + args)
        child.wait()
        subprocess.run([outside, "x"], check=True)     # same exec, host cgroup
        rec = a.wait_for(lambda r: r.get("filename") == inside)
        assert a.stop() == 0
    assert rec["type"] == "exec"
    assert rec["pid"] == child.pid and rec["tid"] == child.pid
    assert rec["ppid"] == os.getpid()
    assert rec["uid"] == os.getuid() and rec["gid"] == os.getgid()
    assert rec["comm"] == os.path.basename(inside)[:15]
    assert rec["args"] == [inside] + args
    assert rec["args_truncated"] is False
    assert rec["retval"] == 0
    assert rec["cgroup_id"] == cgroup.id
    assert rec["mntns_id"] == host_mntns()
    assert rec["hook"] == syshook
    assert abs(rec["ts_ns"] / 1e9 - time.time()) < 60
    assert len(execs(a, inside)) == 1
    assert execs(a, outside) == [], "an exec outside the selected cgroup was reported"


def test_raw_syscalls_records_equal_the_tracepoints(cgroup, progdir):
    """Both syscall methods at once, in two agents: every record the same but
    for its hook (and the time the program ran), execveat and failures too."""
    prog, outside = make_program(progdir), make_program(progdir)
    tag = unique("same")
    missing = os.path.join(progdir, unique("missing"))
    execveat = ("import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); "
                "os.execve(fd, [sys.argv[1], sys.argv[2], 'at'], {})")
    with Agent("--tracers", "exec", "--hook", "exec=syscalls", "--cgroup", cgroup.path) as tp, \
            Agent("--tracers", "exec", "--hook", "exec=raw_syscalls", "--cgroup", cgroup.path) as raw:
        cgroup.run([prog, tag, "two words", ""])
        cgroup.run([prog, tag] + ["a%d" % i for i in range(80)])     # truncated at 64
        with pytest.raises(FileNotFoundError):
            cgroup.run([missing, tag])
        cgroup.run(["/usr/bin/python3", "-c", execveat, prog, tag])
        subprocess.run([outside, tag], check=True)                   # not selected
        for a in (tp, raw):
            a.wait_for(lambda r: r.get("args", [""])[-1:] == ["at"])
            assert a.stop() == 0

    def mine(a, hook):
        recs = [r for r in a.records() if r.get("type") == "exec" and tag in r["args"]]
        assert all(r.pop("hook") == hook for r in recs)
        for r in recs:
            r.pop("ts_ns")
        return recs

    want = mine(tp, "syscalls")
    assert len(want) == 5, want           # and python3 itself
    assert sum(r["filename"] == "" for r in want) == 1, "no execveat(AT_EMPTY_PATH) seen"
    assert mine(raw, "raw_syscalls") == want
    for a in (tp, raw):
        s = a.summary("exec")
        assert s["lost"] == 0 and s["map_full"] == 0 and s["emitted"] == 5


def test_cgroup_given_relative_to_cgroup2_root(cgroup, progdir):
    prog = make_program(progdir)
    with Agent("--tracers", "exec", "--cgroup", cgroup.rel) as a:
        cgroup.run([prog])
        rec = a.wait_for(lambda r: r.get("filename") == prog)
        a.stop()
    assert rec["cgroup_id"] == cgroup.id


def test_descendant_created_after_start(cgroup, progdir, syshook):
    prog, sibling_prog = make_program(progdir), make_program(progdir)
    with Cgroup() as sibling, Agent("--tracers", "exec", "--hook", "exec=" + syshook,
                                    "--cgroup", cgroup.path) as a:
        child = cgroup.child()                # made after the agent started
        grandchild = child.child()
        grandchild.run([prog, "deep"])
        sibling.run([sibling_prog])           # not under the selected cgroup
        rec = a.wait_for(lambda r: r.get("filename") == prog)
        a.stop()
        assert rec["cgroup_id"] == grandchild.id
        assert execs(a, sibling_prog) == []


def test_failed_exec_reports_errno(cgroup, progdir, syshook):
    missing = os.path.join(progdir, unique("missing"))
    with Agent("--tracers", "exec", "--hook", "exec=" + syshook, "--cgroup", cgroup.path) as a:
        with pytest.raises(FileNotFoundError):
            cgroup.run([missing, "a1"])
        rec = a.wait_for(lambda r: r.get("filename") == missing)
        a.stop()
    assert rec["retval"] == -2          # -ENOENT
    assert rec["args"] == [missing, "a1"]


def test_mntns_filter(progdir, syshook):
    prog, host_prog = make_program(progdir), make_program(progdir)
    # a shell in a new mount namespace reports it, then waits for a go
    sh = subprocess.Popen(["unshare", "-m", "/bin/sh", "-c",
                           'stat -L -c %i /proc/self/ns/mnt; read go; exec "$0" in-ns', prog],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        ns = int(sh.stdout.readline())
        assert ns != host_mntns()
        with Agent("--tracers", "exec", "--hook", "exec=" + syshook, "--mntns", ns) as a:
            subprocess.run([host_prog], check=True)       # host namespace: excluded
            sh.stdin.write(b"go\n")
            sh.stdin.flush()
            sh.wait(timeout=10)
            rec = a.wait_for(lambda r: r.get("filename") == prog)
            a.stop()
            assert rec["mntns_id"] == ns
            assert rec["args"] == [prog, "in-ns"]
            assert execs(a, host_prog) == []
    finally:
        sh.kill()
        sh.wait()


def test_exclude_host(progdir, syshook):
    prog, host_prog = make_program(progdir), make_program(progdir)
    with Agent("--tracers", "exec", "--hook", "exec=" + syshook, "--exclude-host") as a:
        subprocess.run([host_prog], check=True)
        subprocess.run(["unshare", "-m", prog], check=True)
        rec = a.wait_for(lambda r: r.get("filename") == prog)
        a.stop()
        assert rec["mntns_id"] != host_mntns()
        assert execs(a, host_prog) == []


def test_many_args_truncated(cgroup, progdir, syshook):
    prog = make_program(progdir)
    many = ["a%d" % i for i in range(100)]
    with Agent("--tracers", "exec", "--hook", "exec=" + syshook, "--cgroup", cgroup.path) as a:
        cgroup.run([prog] + many)               # 101 args > default 64
        rec = a.wait_for(lambda r: r.get("filename") == prog)
        a.stop()
    assert rec["args_truncated"] is True
    assert rec["args"] == ([prog] + many)[:64]


def test_forty_args_with_max_32_and_byte_limit(cgroup, progdir):
    prog, prog2 = make_program(progdir), make_program(progdir)
    forty = ["b%d" % i for i in range(40)]
    long_args = ["x" * 1000 for _ in range(6)]  # 6000 bytes > 4096
    with Agent("--tracers", "exec", "--cgroup", cgroup.path, "--max-args", "32") as a:
        cgroup.run([prog] + forty)
        cgroup.run([prog2] + long_args)
        rec = a.wait_for(lambda r: r.get("filename") == prog)
        rec2 = a.wait_for(lambda r: r.get("filename") == prog2)
        a.stop()
    assert rec["args_truncated"] is True and rec["args"] == ([prog] + forty)[:32]
    assert rec2["args_truncated"] is True
    kept = rec2["args"]
    assert kept[0] == prog2 and all(x == "x" * 1000 for x in kept[1:])
    assert sum(len(x) + 1 for x in kept) <= 4096 and len(kept) == 5


def test_odd_bytes_make_valid_json(cgroup, progdir):
    prog = make_program(progdir)
    odd = [b'quote"d', b"new\nline", b"back\\slash", b"tab\tctl\x01\x1f", b"\xff\xfebad utf8",
           "é€😀".encode()]
    with Agent("--tracers", "exec", "--cgroup", cgroup.path) as a:
        cgroup.run([prog.encode()] + odd)
        rec = a.wait_for(lambda r: r.get("filename") == prog)   # records() parses every line
        a.stop()
    assert rec["args"][1:] == ['quote"d', "new\nline", "back\\slash", "tab\tctl\x01\x1f",
                               "\ufffd\ufffdbad utf8", "é€😀"]


def test_text_output(cgroup, progdir):
    prog = make_program(progdir)
    marker = unique("text")
    with Agent("--tracers", "exec", "--cgroup", cgroup.path, "--output", "text") as a:
        cgroup.run([prog, marker, "new\nline"])
        deadline = time.time() + 10
        while time.time() < deadline and not any(marker.encode() in l for l in a.lines):
            time.sleep(0.05)
        a.stop()
    text = b"".join(a.lines).decode()
    assert text.splitlines()[0].split() == ["TIME", "NAMESPACE", "POD", "CONTAINER", "PCOMM",
                                            "PID", "PPID", "RET", "ARGS"]
    line = [l for l in text.splitlines() if marker in l]
    assert len(line) == 1, text
    assert line[0].split()[1:4] == ["-", "-", "-"]  # a host task: no pod
    assert line[0].split()[4] == os.path.basename(prog)[:15]
    assert line[0].endswith("%s %s new\\x0aline" % (prog, marker))


@pytest.mark.parametrize("hook", ["sched_btf", "sched_raw"])
def test_fallback_hooks(cgroup, progdir, hook):
    prog, outside = make_program(progdir), make_program(progdir)
    missing = os.path.join(progdir, unique("missing"))
    with Agent("--tracers", "exec", "--cgroup", cgroup.path, "--hook", "exec=" + hook) as a:
        cgroup.run([prog, "fb", "arg two"])
        subprocess.run([outside])
        with pytest.raises(FileNotFoundError):
            cgroup.run([missing])
        rec = a.wait_for(lambda r: r.get("filename") == prog)
        a.stop()
        assert rec["hook"] == hook
        assert rec["args"] == [prog, "fb", "arg two"] and rec["retval"] == 0
        assert rec["cgroup_id"] == cgroup.id
        assert execs(a, outside) == []
        # this hook fires only after the point of no return: failures are not seen
        assert execs(a, missing) == []


def test_filtered_events_never_reach_the_ring_buffer(cgroup, progdir, syshook):
    prog = make_program(progdir)
    with Agent("--tracers", "exec", "--hook", "exec=" + syshook, "--cgroup", cgroup.path) as a:
        for _ in range(20):
            subprocess.run([prog])          # all outside the (empty) selected cgroup
        time.sleep(0.2)
        assert a.stop() == 0
    s = a.summary("exec")
    assert s["seen"] >= 20
    assert s["filtered"] == s["seen"] and s["emitted"] == 0
    assert [r for r in a.records() if r["type"] == "exec"] == []


def test_sigterm_mid_stream_loses_nothing_read(cgroup, progdir):
    prog = make_program(progdir)
    loop = cgroup.popen(["/bin/sh", "-c", 'i=0; while [ $i -lt 3000 ]; do "$0" $i; i=$((i+1)); done',
                         prog])
    try:
        with Agent("--tracers", "exec", "--cgroup", cgroup.path) as a:
            a.wait_for(lambda r: r.get("filename") == prog)
            time.sleep(0.3)
            assert loop.poll() is None, "workload ended before SIGTERM"
            assert a.stop(signal.SIGTERM) == 0
    finally:
        loop.kill()
        loop.wait()
    s = a.summary("exec")
    got = execs(a, prog)
    assert s["lost"] == 0 and s["map_full"] == 0
    # everything the kernel emitted was read and printed before exit
    assert len([r for r in a.records() if r["type"] == "exec"]) == s["emitted"]
    assert len(got) > 10
    nums = sorted(int(r["args"][1]) for r in got)
    assert nums == list(range(nums[0], nums[0] + len(nums))), "a gap in the exec sequence"


def test_ring_buffer_overflow_is_counted_and_reported(cgroup, progdir):
    prog = make_program(progdir)
    big = ["y" * 4000]
    # a tiny ring with its reader stopped must overflow; the loss must be visible
    # (--shed off: else the cgroup's records are shed before the ring is full)
    with Agent("--tracers", "exec", "--cgroup", cgroup.path, "--ringbuf-kb", "16",
               "--shed", "off") as a:
        a.proc.send_signal(signal.SIGSTOP)
        cgroup.run(["/bin/sh", "-c", 'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; '
                    'do "$0" "$1"; done', prog] + big)
        a.proc.send_signal(signal.SIGCONT)
        assert a.stop() == 0
    s = a.summary("exec")
    assert s["lost"] > 0
    loss = [r for r in a.records() if r["type"] == "loss"]
    assert sum(r["count"] for r in loss if r["stage"] == "kernel_ringbuf") == s["lost"]
    assert s["emitted"] + s["lost"] == s["seen"] - s["filtered"]
    assert len(execs(a, prog)) == s["emitted"] - len([r for r in a.records()
                                                       if r["type"] == "exec" and
                                                       r["filename"] != prog])
    assert any("warning: exec:" in l for l in a.stderr)


def test_duration_exits_zero_by_itself():
    t0 = time.time()
    rc, out, err = run_agent_once("--tracers", "exec", "--duration", "1", timeout=30)
    assert rc == 0, err
    assert 0.9 < time.time() - t0 < 20
    for line in out.splitlines():
        json.loads(line)


@pytest.mark.parametrize("args,needle", [
    (["--bogus"], "unknown option '--bogus'"),
    (["--duration", "abc"], "--duration"),
    (["--output", "xml"], "--output"),
    (["--tracers", "nope"], "unknown tracer 'nope'"),
    (["--mntns", "x"], "--mntns"),
    (["--max-args", "0"], "--max-args"),
    (["--hook", "exec=nope"], "no method 'nope'"),
    (["--cgroup", "/no/such/cgroup/ps"], "--cgroup /no/such/cgroup/ps"),
    (["--cgroup", "/proc"], "--cgroup /proc"),
    (["--duration"], "needs a value"),
])
def test_bad_usage_exits_2_with_one_line(args, needle):
    rc, out, err = run_agent_once(*args)
    assert rc == 2, (args, rc, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and needle in lines[0] and "error" in lines[0], err
    assert out == ""


def test_help_documents_every_flag():
    rc, out, _ = run_agent_once("--help")
    assert rc == 0
    for flag in ["--tracers", "--hook", "--cgroup", "--mntns", "--exclude-host", "--output",
                 "--duration", "--max-args", "--max-args-bytes", "--drain-ms", "--ringbuf-kb",
                 "--verbose", "--version", "--help", "probe", "Examples"]:
        assert flag in out, flag


def test_probe_lists_methods():
    rc, out, err = run_agent_once("probe", "--output", "ndjson")
    assert rc == 0, err
    recs = [json.loads(l) for l in out.splitlines()]
    kernel = recs[0]
    assert kernel["type"] == "kernel" and kernel["btf"] is True
    assert kernel["release"] == os.uname().release
    ex = [r for r in recs if r.get("tracer") == "exec"][0]
    names = {m["name"]: m["available"] for m in ex["methods"]}
    # no BPF trampolines on this kernel: fentry, preferred where they exist, is missing
    assert names == {"fentry": False, "syscalls": True, "raw_syscalls": True, "sched_btf": True,
                     "sched_raw": True}
    assert [m["name"] for m in ex["methods"]][0] == "fentry"
    assert ex["chosen"] == "syscalls"
    rc, out, _ = run_agent_once("probe")
    assert rc == 0 and "* syscalls" in out


def test_argv_on_untouched_page_is_recovered(cgroup, progdir, syshook):
    """argv strings on a never-touched page cannot be read at execve entry;
    for a successful exec the agent re-reads them from the new image."""
    helper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build",
                          "tests", "helpers", "exec_untouched")
    prog = make_program(progdir)
    with Agent("--tracers", "exec", "--hook", "exec=" + syshook, "--cgroup", cgroup.path) as a:
        cgroup.run([helper, prog], check=True)
        rec = a.wait_for(lambda r: r.get("filename") == prog)
        a.stop()
    assert rec["args"] == [prog, "untouched-rodata-argument"]
    assert "read_fault" not in rec
    assert a.summary("exec")["read_err"] == 0


def test_mounts_tracefs_when_missing(cgroup, progdir):
    """A fresh node has no tracefs mounted: the agent mounts it itself. Run in a
    private mount namespace with tracefs unmounted, so the host is untouched."""
    prog = make_program(progdir)
    script = ('umount /sys/kernel/tracing 2>/dev/null; umount /sys/kernel/debug/tracing 2>/dev/null; '
              'if grep -q " tracefs " /proc/self/mounts; then echo still mounted >&2; exit 9; fi; '
              'exec "$@"')
    wrap = ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", script, "sh"]
    with Agent("--tracers", "exec", "--cgroup", cgroup.path, wrap=wrap) as a:
        cgroup.run([prog, "after-mount"])
        rec = a.wait_for(lambda r: r.get("filename") == prog)
        assert a.stop() == 0
    assert rec["args"] == [prog, "after-mount"]
    assert any("mounted tracefs at /sys/kernel/tracing" in l for l in a.stderr), a.stderr


def test_exec_from_a_non_leader_thread(cgroup, progdir, syshook):
    """execve from a second thread returns under the leader's pid: the record
    must still come out (the in-flight entry is re-keyed at sched_process_exec)."""
    helper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build",
                          "tests", "helpers", "exec_thread")
    prog = make_program(progdir)
    with Agent("--tracers", "exec", "--hook", "exec=" + syshook, "--cgroup", cgroup.path) as a:
        p = cgroup.run([helper, prog, "from-thread"], capture_output=True, check=True)
        thread_tid = int(p.stdout.split()[0])
        rec = a.wait_for(lambda r: r.get("filename") == prog)
        a.stop()
    assert rec["args"] == [prog, "from-thread"] and rec["retval"] == 0
    assert rec["pid"] == rec["tid"] != thread_tid
    s = a.summary("exec")
    assert s["map_full"] == 0
