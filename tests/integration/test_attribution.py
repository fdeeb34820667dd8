"""Pod attribution against real pods: a private containerd driven through the
CRI as kubelet would (tests/lib/cri_testbed.py), the real agent, real execs
inside the containers.

Every record from a pod must carry its namespace/pod/container; host
processes never get one; --namespace/--pod/--selector select in the kernel
(with the negative case: the other pod's events must not appear); a
container started after the agent, and one that lives for a few ms, are
attributed; containerd restarting mid-run is survived; a missing CRI socket
gives a clear warning and records still flow.
"""
import os
import re
import subprocess

import pytest
from podsnoop_harness import Agent, host_mntns, make_program, run_agent_once, unique

import cri_testbed as tb

# the agent waits this long for a new container's metadata: generous, so the
# checks below do not depend on how fast this machine is
WAIT = ["--attrib-wait-ms", "5000"]


@pytest.fixture(scope="module")
def ctd():
    c = tb.Containerd()
    try:
        c.pods = {
            "web": tb.Pod.start(c.cri, "web", "team-a", labels={"app": "web", "tier": "front"}),
            "db": tb.Pod.start(c.cri, "db", "team-b", labels={"app": "db"}),
        }
        yield c
    finally:
        c.cleanup()


def cri_arg(ctd):
    # "unix://": the testbed takes any process naming its socket path as a word
    # of its command line for one of its own, and kills it when restarting
    return "--cri-socket=unix://" + ctd.socket


def agent(ctd, *args):
    return Agent("--tracers", "exec", cri_arg(ctd), *WAIT, *args)


def marked(agent_, marker):
    """Exec records whose arguments carry marker."""
    return [r for r in agent_.records() if r.get("type") == "exec" and marker in r["args"]]


def exec_in(pod, marker):
    """A known exec inside the pod's container: busybox echo with a marker."""
    rc, out, _ = pod.exec(["echo", marker])
    assert rc == 0 and out.strip() == marker


def expect_pod(rec, pod, container="main"):
    k = rec.get("k8s")
    assert k, "record without k8s: %r" % rec
    assert k == {"namespace": pod.namespace, "pod": pod.name, "pod_uid": pod.uid,
                 "container": container, "container_id": pod.container_id,
                 "runtime": "containerd"}, rec
    assert rec["cgroup_id"] == pod.cgroup_id


def test_records_carry_their_pod_and_host_records_none(ctd, tmp_path):
    web, db = ctd.pods["web"], ctd.pods["db"]
    mw, md = unique("web"), unique("db")
    host_prog = make_program(str(tmp_path))
    with agent(ctd) as a:
        exec_in(web, mw)
        exec_in(db, md)
        subprocess.run([host_prog, "host"], check=True)
        rw = a.wait_for(lambda r: mw in r.get("args", ()), what="web's exec")
        rd = a.wait_for(lambda r: md in r.get("args", ()), what="db's exec")
        rh = a.wait_for(lambda r: r.get("filename") == host_prog, what="the host exec")
        # the containers' own commands (sleep every second) too
        loop = a.wait_for(lambda r: r.get("cgroup_id") == web.cgroup_id and
                          r.get("args") == ["sleep", "1"], what="web's own sleep")
        assert a.stop() == 0
    expect_pod(rw, web)
    expect_pod(rd, db)
    expect_pod(loop, web)
    assert "k8s" not in rh, "a host process was attributed to a pod: %r" % rh
    assert rh["mntns_id"] == host_mntns()
    # every record of a pod's cgroup names that pod, and nothing else does
    for r in a.records():
        if r.get("type") != "exec":
            continue
        if r["cgroup_id"] in (web.cgroup_id, db.cgroup_id):
            assert r["k8s"]["pod"] == ("web" if r["cgroup_id"] == web.cgroup_id else "db")
        elif "k8s" in r:
            # only the pods' sandboxes may be attributed besides
            assert r["k8s"]["pod"] in ("web", "db") and r["k8s"]["container"] == "", r
    assert re.search(r"attribution: \d+ records attributed", "".join(a.stderr))


@pytest.mark.parametrize("sel", [["--namespace", "team-a"], ["--selector", "app=web"],
                                 ["--pod", "web"], ["-l", "tier,app!=db", "-n", "team-a"]],
                         ids=["namespace", "selector", "pod", "selector-and-namespace"])
def test_selection_keeps_one_pod_in_the_kernel(ctd, tmp_path, sel):
    web, db = ctd.pods["web"], ctd.pods["db"]
    mw, md = unique("web"), unique("db")
    host_prog = make_program(str(tmp_path))
    with agent(ctd, *sel) as a:
        # the unselected pod and the host first: if they leaked, they would be in by
        # the time the selected pod's exec is
        exec_in(db, md)
        subprocess.run([host_prog], check=True)
        exec_in(web, mw)
        rw = a.wait_for(lambda r: mw in r.get("args", ()), what="web's exec")
        assert a.stop() == 0
    expect_pod(rw, web)
    assert marked(a, md) == [], "an unselected pod's exec was reported"
    assert not [r for r in a.records() if r.get("filename") == host_prog]
    assert not [r for r in a.records() if r.get("cgroup_id") == db.cgroup_id]
    assert a.summary("exec")["filtered"] > 0, "nothing was filtered in the kernel"


def test_selection_matching_nothing_selects_nothing(ctd, tmp_path):
    web = ctd.pods["web"]
    mw = unique("web")
    host_prog = make_program(str(tmp_path))
    with agent(ctd, "--namespace", "no-such-namespace") as a:
        exec_in(web, mw)
        subprocess.run([host_prog], check=True)
        # the execs are done; stopping drains whatever passed the filter
        assert a.stop() == 0
    assert [r for r in a.records() if r.get("type") == "exec"] == []
    assert a.summary("exec")["filtered"] > 0


def test_container_started_after_the_agent(ctd):
    mark = unique("late")
    with agent(ctd) as a:
        pod = tb.Pod.start(ctd.cri, "late", "team-c", labels={"app": "late"})
        try:
            exec_in(pod, mark)
            rec = a.wait_for(lambda r: mark in r.get("args", ()), what="the late pod's exec")
            # the container's very first exec (its entrypoint) too: it ran before
            # anything could be known about the container, and waited for it
            first = a.wait_for(lambda r: r.get("cgroup_id") == pod.cgroup_id and
                               r.get("args", [])[:2] == ["sh", "-c"], what="the entrypoint")
            assert a.stop() == 0
        finally:
            pod.remove()
    expect_pod(rec, pod)
    expect_pod(first, pod)
    for r in a.records():
        if r.get("cgroup_id") == pod.cgroup_id:
            assert r["k8s"]["pod"] == "late", r


def test_new_pod_is_selected_as_it_appears(ctd):
    """The selection follows pods that start after the agent."""
    with agent(ctd, "--selector", "app=fresh") as a:
        pod = tb.Pod.start(ctd.cri, "fresh", "team-c", labels={"app": "fresh"})
        other = tb.Pod.start(ctd.cri, "stale", "team-c", labels={"app": "stale"})
        try:
            mine, theirs = unique("fresh"), unique("stale")

            # the filter is updated as the pod is learned: retry until it is in
            def seen():
                exec_in(pod, mine)
                exec_in(other, theirs)
                return marked(a, mine)
            tb.wait_for(seen, 15, "the new pod's exec to be selected")
            assert a.stop() == 0
        finally:
            pod.remove()
            other.remove()
    expect_pod(marked(a, mine)[0], pod)
    assert marked(a, theirs) == []


def test_short_lived_container_is_attributed(ctd):
    with agent(ctd) as a:
        pod = tb.Pod.start(ctd.cri, "blink", "team-c", short_lived=True)
        try:
            assert pod.exit_code == 0
            rec = a.wait_for(lambda r: r.get("args") == tb.SHORT_LIVED_CMD,
                             what="the short-lived container's exec")
            assert a.stop() == 0
        finally:
            pod.remove()
    k = rec.get("k8s")
    assert k and k["namespace"] == "team-c" and k["pod"] == "blink" and \
        k["container"] == "main" and k["container_id"] == pod.container_id, rec
    if pod.cgroup_id is not None:
        assert rec["cgroup_id"] == pod.cgroup_id


def test_containerd_restart_mid_run(ctd):
    web = ctd.pods["web"]
    before, during, after = unique("before"), unique("during"), unique("after")
    with agent(ctd, "--meta-resync", "1") as a:
        exec_in(web, before)
        a.wait_for(lambda r: before in r.get("args", ()))
        ctd.stop()
        try:
            tb.wait_for(lambda: "warning: CRI" in "".join(a.stderr), 15, "the agent to notice")
            # the pod runs on without containerd; what the agent knows still holds:
            # an exec in the container's cgroup (started there from here)
            procs = os.path.join(tb.cgroup2_mount() + web.cgroup_path, "cgroup.procs")

            def enter():
                with open(procs, "w") as f:
                    f.write("0")
            subprocess.run(["/bin/echo", during], preexec_fn=enter, check=True,
                           stdout=subprocess.DEVNULL)
            rd = a.wait_for(lambda r: during in r.get("args", ()))
        finally:
            ctd.start()
        pod = tb.Pod.start(ctd.cri, "reborn", "team-c")
        try:
            exec_in(pod, after)
            ra = a.wait_for(lambda r: after in r.get("args", ()), timeout=20)
            assert a.proc.poll() is None, "the agent died"
            assert a.stop() == 0
        finally:
            pod.remove()
    expect_pod(rd, web)
    expect_pod(ra, pod)
    err = "".join(a.stderr)
    assert "answers again" in err, err


def test_cri_socket_missing_warns_and_records_still_flow(ctd, tmp_path):
    web = ctd.pods["web"]
    mark = unique("nocri")
    host_prog = make_program(str(tmp_path))
    missing = str(tmp_path / "no-such-cri.sock")
    with Agent("--tracers", "exec", "--cri-socket", missing) as a:
        exec_in(web, mark)
        subprocess.run([host_prog], check=True)
        rec = a.wait_for(lambda r: mark in r.get("args", ()))
        a.wait_for(lambda r: r.get("filename") == host_prog)
        assert a.stop() == 0
    err = "".join(a.stderr)
    assert re.search(r"warning: CRI Version at %s: cannot connect: No such file" % re.escape(missing),
                     err), err
    # no pod name without metadata; what the cgroup path says is kept
    k = rec.get("k8s")
    assert k and k["pod"] == "" and k["namespace"] == "" and k["container"] == ""
    assert k["container_id"] == web.container_id and k["pod_uid"] == web.uid


def test_attribution_by_mount_namespace(ctd, tmp_path):
    """cgroup v1 nodes: every task shares one v2 cgroup, the mount namespace decides."""
    web, db = ctd.pods["web"], ctd.pods["db"]
    mw, md = unique("web"), unique("db")
    host_prog = make_program(str(tmp_path))
    with agent(ctd, "--attribute-by", "mntns") as a:
        exec_in(web, mw)
        subprocess.run([host_prog], check=True)
        rw = a.wait_for(lambda r: mw in r.get("args", ()))
        rh = a.wait_for(lambda r: r.get("filename") == host_prog)
        assert a.stop() == 0
    assert rw["mntns_id"] == web.mntns
    expect_pod(rw, web)
    assert "k8s" not in rh
    # selection through mount namespace ids, with its negative case
    with agent(ctd, "--attribute-by", "mntns", "--namespace", "team-a") as a:
        exec_in(db, md)
        exec_in(web, mw)
        a.wait_for(lambda r: mw in r.get("args", ()))
        assert a.stop() == 0
    assert marked(a, md) == []


def test_text_output_has_pod_columns(ctd):
    web = ctd.pods["web"]
    mark = unique("txt")
    with Agent("--tracers", "exec", cri_arg(ctd), "-o", "text",
               "--namespace", "team-a") as a:
        exec_in(web, mark)
        deadline_ok = tb.wait_for(lambda: any(mark.encode() in l for l in a.lines), 10,
                                  "the text line")
        assert deadline_ok
        assert a.stop() == 0
    lines = [l.decode() for l in a.lines]
    assert lines[0].split()[:4] == ["TIME", "NAMESPACE", "POD", "CONTAINER"]
    line = next(l for l in lines if mark in l)
    assert line.split()[1:4] == ["team-a", "web", "main"]


def test_bad_selector_is_a_usage_error():
    rc, _, err = run_agent_once("--selector", "app in (a,b)")
    assert rc == 2 and "set-based" in err
    rc, _, err = run_agent_once("--selector", "=x")
    assert rc == 2 and "bad label key" in err
    rc, _, err = run_agent_once("--attribute-by", "pid")
    assert rc == 2


@pytest.mark.parametrize("how", ["tracepoint", "none"])
def test_new_cgroups_followed_with_each_method(ctd, how):
    """--hook cgwatch=tracepoint (the classic tracepoints) and =none (no watcher:
    an unknown cgroup id is resolved alone through its file handle)."""
    mark = unique("cgw")
    with agent(ctd, "--hook", "cgwatch=" + how) as a:
        pod = tb.Pod.start(ctd.cri, "watched", "team-c")
        try:
            exec_in(pod, mark)
            rec = a.wait_for(lambda r: mark in r.get("args", ()))
            assert a.stop() == 0
        finally:
            pod.remove()
    expect_pod(rec, pod)
    err = "".join(a.stderr)
    if how == "none":
        assert "cgwatch: off" in err
        m = re.search(r"(\d+) ids resolved by handle", err)
        assert m and int(m.group(1)) >= 1, err
    else:
        assert "cgwatch: following cgroups with tracepoint" in err


def test_probe_reports_the_cgroup_watcher():
    import json
    rc, out, err = run_agent_once("probe", "-o", "ndjson")
    assert rc == 0, err
    h = [json.loads(l) for l in out.splitlines() if '"probe_helper"' in l]
    assert len(h) == 1 and h[0]["helper"] == "cgwatch" and h[0]["chosen"] == "tp_btf"
    assert {m["name"]: m["available"] for m in h[0]["methods"]} == {"tp_btf": True,
                                                                    "tracepoint": True}
    rc, out, _ = run_agent_once("probe", "--hook", "cgwatch=tracepoint")
    assert rc == 0 and "cgwatch (pod attribution): tracepoint" in out
    rc, _, err = run_agent_once("--hook", "cgwatch=kprobe")
    assert rc == 2 and "cgwatch has no method" in err


def test_metrics_and_readiness(ctd, tmp_path):
    import urllib.request
    web = ctd.pods["web"]
    mark = unique("metrics")
    with agent(ctd, "--listen", "127.0.0.1:0") as a:
        exec_in(web, mark)
        a.wait_for(lambda r: mark in r.get("args", ()))
        port = re.search(r"serving .* \(port (\d+)\)", "".join(a.stderr)).group(1)
        base = "http://127.0.0.1:%s" % port
        metrics = urllib.request.urlopen(base + "/metrics").read().decode()
        ready = urllib.request.urlopen(base + "/readyz").read().decode()
        assert a.stop() == 0
    hits = re.search(r'^podsnoop_attribution_total\{result="hit"\} (\d+)$', metrics, re.M)
    assert hits and int(hits.group(1)) >= 1, metrics
    assert re.search(r'^podsnoop_attribution_total\{result="miss"\} \d+$', metrics, re.M)
    n = re.search(r'^podsnoop_cri_latency_seconds_count\{method="ListContainers"\} (\d+)$',
                  metrics, re.M)
    assert n and int(n.group(1)) >= 1, metrics
    assert re.search(r"^ok +metadata: CRI containerd", ready, re.M), ready
    # no runtime: not ready, and says why
    with Agent("--tracers", "exec", "--cri-socket", str(tmp_path / "none.sock"),
               "--listen", "127.0.0.1:0") as a:
        port = re.search(r"serving .* \(port (\d+)\)", "".join(a.stderr)).group(1)
        try:
            urllib.request.urlopen("http://127.0.0.1:%s/readyz" % port)
            ready = None
        except urllib.error.HTTPError as e:
            ready = e.read().decode()
        assert a.stop() == 0
    assert ready and re.search(r"^FAIL metadata: CRI down: .*none\.sock: cannot connect", ready,
                               re.M), ready
