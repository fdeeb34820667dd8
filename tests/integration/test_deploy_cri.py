"""The deployment shape, proven on a real runtime: `make image`'s OCI archive
imported into a private containerd, and the agent run AS A CRI CONTAINER with
exactly the pod spec the chart renders (capabilities, read-only root, hostPID,
read-only host mounts, the CRI socket, Secrets, seccomp, args, env, limits),
by kubelet_shim (kubelet cannot run here).

The deployed agent (module fixture `deployed`: chart defaults, every tracer,
plus a collector) must trace a second pod's execs, opens and block I/O,
attribute them (namespace, pod, container from the CRI, through the mounted
socket), and ship them to the reference collector running on the host
(hostNetwork pods: loopback), over TLS with the chart's CA, client
certificate and token Secrets; the node's own processes stay out
(--exclude-host from inside a pod); /metrics holds the pod's block I/O
latency histograms, scraped by Debian's Prometheus. Taking away a
capability the chart claims must produce a message naming it; an
unreachable CRI fails /readyz.
"""
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import biohist
import pytest
from chart_render import CAPS, agent_container, docs, render, split_pending
from cri_testbed import Containerd, Pod, wait_for
from kubelet_shim import KubeletShim, wait_log
from podsnoop_harness import REPO, unique
from prometheus_server import Prometheus, free_port
from ship_harness import Collector, make_ca

IMAGE_TAR = os.path.join(REPO, "build", "podsnoop-image.tar")
NAMESPACE = "podsnoop-system"
IO_BLOCKS = 24          # 4 KiB O_DIRECT writes, then reads, by the target pod
INF = float("inf")


def version():
    with open(os.path.join(REPO, "lib", "version.h")) as f:
        for line in f:
            if line.startswith("#define PODSNOOP_VERSION"):
                return line.split('"')[1]
    raise AssertionError("no PODSNOOP_VERSION")


def rendered_pod(ctd, port, *extra):
    """The chart's DaemonSet pod template for this node: the values a test
    node needs (local image, no pulls, host network for want of CNI, this
    containerd's socket) and nothing else changed."""
    out = render("--namespace", NAMESPACE,
                 "--set", "image.repository=localhost/podsnoop",
                 "--set-string", "image.tag=" + version(),
                 "--set", "image.pullPolicy=Never",
                 "--set", "hostNetwork=true",
                 "--set", "metadata.criSocket=" + ctd.socket,
                 "--set", "metrics.port=%d" % port,
                 *extra).stdout
    (ds,) = [o for _, o in docs(out) if o["kind"] == "DaemonSet"]
    template = ds["spec"]["template"]
    _, c = agent_container([ds])
    # flags of features not on this branch yet are left out; mounts stay
    c["args"], _ = split_pending(c["args"])
    return template


def http_get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def parse_metrics(body):
    out = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            out[series] = float(value)
    return out


class Deployed:
    def __init__(self, ctd, pod, port, target, collector):
        self.ctd, self.pod, self.port = ctd, pod, port
        self.target, self.collector = target, collector

    def records(self, type_=None):
        """What the collector wrote (the agent ships; its log has no records)."""
        return [r for r in self.collector.lines()
                if r["type"] not in ("batch", "loss") and type_ in (None, r["type"])]

    def wait_records(self, pred, what, timeout=20):
        def found():
            got = [r for r in self.records() if pred(r)]
            return got or None
        try:
            return wait_for(found, timeout, what)
        except Exception:
            raise AssertionError("collector: no %s within %ss; agent log:\n%s" % (
                what, timeout, "\n".join(self.pod.stderr()[-30:])))

    def metrics(self):
        status, body = http_get(self.port, "/metrics")
        assert status == 200
        return parse_metrics(body)


@pytest.fixture(scope="module")
def ctd():
    if not os.path.exists(IMAGE_TAR):
        pytest.fail("build/podsnoop-image.tar missing: run `make image` (make test does)")
    c = Containerd()
    try:
        c.ctr("images", "import", IMAGE_TAR)
        yield c
    finally:
        c.cleanup()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    p = make_ca(str(d))
    p["token"] = unique("token")
    p["token_file"] = os.path.join(str(d), "token")
    with open(p["token_file"], "w") as f:
        f.write(p["token"] + "\n")
    return p


def read(path):
    with open(path) as f:
        return f.read()


@pytest.fixture(scope="module")
def deployed(ctd, pki, tmp_path_factory):
    """The chart's defaults (every tracer, --exclude-host, the CRI) plus a
    collector over HTTPS that wants a client certificate and a token."""
    work = tmp_path_factory.mktemp("deploy")
    collector = Collector(str(work), "--tls-cert", pki["server_cert"], "--tls-key",
                          pki["server_key"], "--tls-client-ca", pki["ca"],
                          "--token-file", pki["token_file"])
    shim = KubeletShim(ctd, node_name="node-under-test")
    target = Pod.start(ctd.cri, "target", "team-b")
    port = free_port()
    template = rendered_pod(ctd, port,
                            "--set", "collector.url=" + collector.url,
                            "--set", "collector.tokenSecret.name=podsnoop-token",
                            "--set", "collector.caSecret.name=collector-ca",
                            "--set", "collector.clientCertSecret.name=collector-tls",
                            "--set", "spool.hostPath=%s" % (work / "spool"),
                            "--set", "thresholds.bioMinUs=0",
                            "--set", "thresholds.interval=1")
    secrets = {"podsnoop-token": {"token": pki["token"] + "\n"},
               "collector-ca": {"ca.crt": read(pki["ca"])},
               "collector-tls": {"tls.crt": read(pki["client_cert"]),
                                 "tls.key": read(pki["client_key"])}}
    pod = shim.run(template, namespace=NAMESPACE, name="podsnoop-abcde", secrets=secrets)
    try:
        wait_log(pod, lambda ln: ln[1].endswith("info: ready"), 30, "agent ready")
        yield Deployed(ctd, pod, port, target, collector)
    finally:
        pod.remove()
        target.remove()
        collector.stop()


def test_image_holds_only_the_agent_and_its_libraries():
    listing = subprocess.run(["tar", "-xOf", IMAGE_TAR, "index.json"], capture_output=True,
                             check=True).stdout
    index = json.loads(listing)
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == \
        "localhost/podsnoop:" + version()
    files = subprocess.run(["/usr/bin/python3", os.path.join(REPO, "image", "mkimage.py"),
                            "--binary", os.path.join(REPO, "build", "podsnoop"), "--list"],
                           capture_output=True, text=True, check=True).stdout
    libs = sorted(os.path.basename(l.split()[0]) for l in files.splitlines()
                  if l.split()[1] != "dir" and ".so" in l)
    ldd = subprocess.run(["ldd", os.path.join(REPO, "build", "podsnoop")], capture_output=True,
                         text=True, check=True).stdout
    want = sorted(os.path.basename(l.split()[0]) for l in ldd.splitlines()
                  if ".so" in l and "linux-vdso" not in l)
    assert libs == want
    assert "/usr/bin/podsnoop" in files


def test_agent_runs_as_the_chart_says(deployed):
    pid = deployed.pod.pid()
    with open("/proc/%d/status" % pid) as f:
        status = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
    eff = int(status["CapEff"], 16)
    names = {21: "SYS_ADMIN", 19: "SYS_PTRACE", 38: "PERFMON", 39: "BPF", 1: "DAC_OVERRIDE"}
    have = {n for bit, n in names.items() if eff >> bit & 1}
    assert have == CAPS                                    # exactly what the chart adds
    assert bin(eff).count("1") == len(CAPS)
    assert status["NoNewPrivs"].strip() == "1"             # allowPrivilegeEscalation: false
    assert status["Seccomp"].strip() == "2"                # RuntimeDefault is a filter
    # hostPID: the agent sees the node's pid namespace
    assert os.stat("/proc/%d/ns/pid" % pid).st_ino == os.stat("/proc/self/ns/pid").st_ino
    # a read-only root file system, as the runtime was told
    _, info = deployed.ctd.cri.container_status(deployed.pod.container_id)
    assert info["runtimeSpec"]["root"].get("readonly") is True
    code, out, _ = deployed.ctd.cri.exec_sync(deployed.pod.container_id,
                                              ["/usr/bin/podsnoop", "--version"])
    assert code == 0 and out.startswith("podsnoop ")
    # docs/deployment.md's troubleshooting: `kubectl exec <pod> -- podsnoop probe` (found on PATH)
    code, out, err = deployed.ctd.cri.exec_sync(deployed.pod.container_id,
                                                ["podsnoop", "probe"])
    assert code == 0, err
    assert "btf      yes" in out and "\nexec: syscalls\n" in out and "\nbio: io_start\n" in out


def test_probes_answer(deployed):
    status, body = http_get(deployed.port, "/healthz")
    assert status == 200 and body.startswith("ok")
    status, body = http_get(deployed.port, "/readyz")
    assert status == 200, body
    assert "ok   tracers: 5 attached: exec=syscalls, open=syscalls, bio=io_start, " in body
    # the metadata source, reached through the mounted CRI socket
    assert "ok   metadata: CRI containerd " in body


def k8s_of(pod, container="main"):
    return {"namespace": pod.namespace, "pod": pod.name, "pod_uid": pod.uid,
            "container": container, "container_id": pod.container_id,
            "runtime": "containerd"}


def test_ships_the_other_pods_execs_attributed(deployed):
    token = unique("deploy")
    code, out, _ = deployed.target.exec(["/bin/echo", token])
    assert code == 0 and out.strip() == token
    recs = deployed.wait_records(lambda r: r["type"] == "exec" and token in r["args"],
                                 "exec record of the target pod")
    assert len(recs) == 1, recs
    r = recs[0]
    assert r["filename"] == "/bin/echo" and r["args"] == ["/bin/echo", token]
    assert r["cgroup_id"] == deployed.target.cgroup_id     # the target pod's container
    assert r["mntns_id"] == deployed.target.mntns
    assert r["retval"] == 0
    assert r["k8s"] == k8s_of(deployed.target)
    # the batches came from this node's agent, under its node name (downward API)
    batches = [b for b in deployed.collector.lines() if b["type"] == "batch"]
    assert batches and {b["node"] for b in batches} == {"node-under-test"}
    m = deployed.metrics()
    assert m['podsnoop_events_emitted_total{tracer="exec"}'] >= 1
    assert m['podsnoop_events_lost_total{tracer="exec",stage="kernel_ringbuf"}'] == 0
    assert m['podsnoop_tracer_info{tracer="exec",method="syscalls"}'] == 1
    assert m['podsnoop_ship_batches_total{result="sent"}'] >= 1
    assert m['podsnoop_ship_batches_total{result="failed"}'] == 0


def test_the_nodes_own_processes_stay_out(deployed):
    """--exclude-host from inside a pod: the node's mount namespace is found
    through hostPID (here from kthreadd: this VM's init is unreadable), so a
    host process's exec is not traced while the pod's next one is."""
    host, pod = unique("host"), unique("pod")
    subprocess.run(["/bin/echo", host], check=True, capture_output=True)
    assert deployed.target.exec(["/bin/echo", pod])[0] == 0
    deployed.wait_records(lambda r: r["type"] == "exec" and pod in r["args"],
                          "exec record of the target pod")
    assert not [r for r in deployed.records("exec") if host in r["args"]]
    # nothing at all from the node's mount namespace (the kernel filter's key)
    node = os.stat("/proc/self/ns/mnt").st_ino
    shipped = [r for r in deployed.records() if r.get("mntns_id")]
    assert shipped
    assert not [r for r in shipped if r["mntns_id"] == node][:5]


def test_ships_the_other_pods_opens_attributed(deployed):
    token = unique("open")
    code, _, err = deployed.target.exec(["sh", "-c", "echo x > /tmp/%s && cat /tmp/%s" %
                                         (token, token)])
    assert code == 0, err
    recs = deployed.wait_records(
        lambda r: r["type"] == "open" and r["path"] == "/tmp/" + token and r["comm"] == "cat",
        "open record of the target pod")
    r = recs[0]
    assert r["ret"] >= 0 and r["flags"] & 3 == 0            # O_RDONLY, succeeded
    assert r["cgroup_id"] == deployed.target.cgroup_id
    assert r["k8s"] == k8s_of(deployed.target)
    writes = [x for x in deployed.records("open") if x["path"] == "/tmp/" + token and
              x["comm"] == "sh"]
    assert writes and writes[0]["flags"] & 3 == 1           # O_WRONLY by the shell


def target_bio(deployed):
    return [r for r in deployed.records("bio") if r["cgroup_id"] == deployed.target.cgroup_id]


def test_ships_the_other_pods_block_io_attributed(deployed):
    """O_DIRECT writes then reads of IO_BLOCKS 4 KiB blocks in the target
    pod (its overlay root on the node's disk): one bio record per request,
    charged to the pod's container by the submitter."""
    path = "/tmp/" + unique("io")
    code, _, err = deployed.target.exec(
        ["sh", "-c", "dd if=/dev/zero of=%s bs=4k count=%d oflag=direct && "
                     "dd if=%s of=/dev/null bs=4k iflag=direct" % (path, IO_BLOCKS, path)])
    assert code == 0, err

    def done(r):
        mine = [x for x in target_bio(deployed) if x["comm"] == "dd"]
        return r in mine and sum(x["bytes"] for x in mine if x["op"][0] == "R") >= \
            IO_BLOCKS * 4096
    deployed.wait_records(done, "the target's block reads")
    dd = [r for r in target_bio(deployed) if r["comm"] == "dd"]
    w = [r for r in dd if r["op"].lstrip("F")[0] == "W"]
    rd = [r for r in dd if r["op"][0] == "R"]
    assert len(w) == IO_BLOCKS and {r["bytes"] for r in w} == {4096}, w
    assert len(rd) == IO_BLOCKS and {r["bytes"] for r in rd} == {4096}, rd
    for r in dd:
        assert r["attribution"] == "submitter" and r["status"] == 0
        assert r["mntns_id"] == deployed.target.mntns
        assert r["k8s"] == k8s_of(deployed.target)


def bio_series(pod, disk, op, container="main"):
    return ('namespace="%s",pod="%s",container="%s",disk="%s",op="%s"' %
            (pod.namespace, pod.name, container, disk, op))


def test_block_io_latency_histograms_per_pod_in_metrics(deployed):
    """podsnoop_bio_latency_seconds{namespace,pod,container,disk,op}: bucket by
    bucket what the shipped bio_hist records of that container say (summed
    over every interval: the kernel maps are drained each second here), and
    as many requests as there were bio records; then Debian's Prometheus
    scrapes the agent pod and its query API returns the same."""
    path = "/tmp/" + unique("hist")
    code, _, err = deployed.target.exec(
        ["sh", "-c", "dd if=/dev/zero of=%s bs=4k count=%d oflag=direct" % (path, IO_BLOCKS)])
    assert code == 0, err
    disk = deployed.wait_records(lambda r: r["type"] == "bio" and r["comm"] == "dd" and
                                 r["cgroup_id"] == deployed.target.cgroup_id,
                                 "a bio record of the target")[0]["disk"]
    cg = deployed.target.cgroup_id

    def agree():
        m = deployed.metrics()
        for op in ("R", "W"):
            hists = [h for h in deployed.records("bio_hist")
                     if h["cgroup_id"] == cg and h["op"] == op and h["disk"] == disk]
            reqs = [r for r in target_bio(deployed) if r["disk"] == disk and
                    r["op"].lstrip("F")[:1] == op]
            got = biohist.from_text(m, bio_series(deployed.target, disk, op))
            want = biohist.from_records(hists)
            count = m.get("podsnoop_bio_latency_seconds_count{%s}" %
                          bio_series(deployed.target, disk, op))
            if not reqs or got != want or count != len(reqs) or want[INF] != len(reqs):
                return None
        return m
    try:
        m = wait_for(agree, 30, "metrics, bio_hist and bio records agreeing")
    except Exception:
        raise AssertionError("metrics and records disagree:\n%s" % "\n".join(
            k for k in deployed.metrics() if "bio_latency" in k and "team-b" in k and
            ("count" in k or "+Inf" in k)))
    w = bio_series(deployed.target, disk, "W")
    count = m["podsnoop_bio_latency_seconds_count{%s}" % w]
    assert count >= 2 * IO_BLOCKS          # this test's writes and the one before
    hists = [h for h in deployed.records("bio_hist") if h["cgroup_id"] == cg and
             h["op"] == "W" and h["disk"] == disk]
    assert len({h["ts_ns"] for h in hists}) >= 2          # summed over intervals
    assert abs(m["podsnoop_bio_latency_seconds_sum{%s}" % w] -
               sum(h["sum_ns"] for h in hists) / 1e9) < 1e-9
    # nothing folded: the bound is far away
    assert m['podsnoop_metrics_series_folded{family="podsnoop_bio_latency_seconds"}'] == 0

    with Prometheus(["127.0.0.1:%d" % deployed.port], job="podsnoop") as prom:
        prom.wait_for_target_up()
        sel = '{namespace="team-b",pod="target",container="main",disk="%s",op="W"}' % disk
        got = prom.wait_for_query("podsnoop_bio_latency_seconds_count" + sel,
                                  lambda r: r and r[0][1] == count)
        assert got[0][0]["job"] == "podsnoop"
        buckets = biohist.from_query(prom.query("podsnoop_bio_latency_seconds_bucket" + sel))
        assert buckets == biohist.from_text(m, w)       # 26 finite log2 bounds and +Inf
        q = prom.query("histogram_quantile(0.5, podsnoop_bio_latency_seconds_bucket%s)" % sel)
        assert 1e-6 <= q[0][1] <= 67.2, q


def test_readyz_fails_while_the_cri_cannot_be_reached(ctd, tmp_path):
    """The readiness probe reflects the metadata source: a CRI socket that
    nobody answers on (a runtime that is down) keeps /readyz at 503 naming
    it, while the tracers run and /healthz stays ok. (The deployed agent's
    /readyz, with a live CRI, is 200: test_probes_answer.)"""
    dead = str(tmp_path / "dead.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(dead)
    s.close()                        # the socket file stays; connecting is refused
    port = free_port()
    template = rendered_pod(ctd, port, "--set", "tracers={exec}",
                            "--set", "metadata.criSocket=" + dead)
    pod = KubeletShim(ctd).run(template, namespace=NAMESPACE)
    try:
        wait_log(pod, lambda ln: ln[1].endswith("info: ready"), 30, "agent ready")
        status, body = http_get(port, "/readyz")
        assert status == 503, body
        assert "ok   tracers: 1 attached: exec=syscalls" in body
        assert "FAIL metadata: CRI down: " in body and dead in body, body
        assert http_get(port, "/healthz")[0] == 200
        m = parse_metrics(http_get(port, "/metrics")[1])
        assert m["podsnoop_ready"] == 1          # the tracers are; readiness says the rest
    finally:
        pod.remove()


def test_agent_memory_fits_the_chart_limit(deployed):
    """BPF maps and ring buffers are charged to the pod's memory cgroup: the
    chart's limit must hold the agent, every tracer on, with room to spare."""
    pid = deployed.pod.pid()
    with open("/proc/%d/cgroup" % pid) as f:
        mem = [l.strip().split(":", 2)[2] for l in f if ":memory:" in l]
    if not mem:
        pytest.skip("no cgroup v1 memory controller for this check on this node")
    base = "/sys/fs/cgroup/memory" + mem[0]
    with open(base + "/memory.limit_in_bytes") as f:
        limit = int(f.read())
    with open(base + "/memory.max_usage_in_bytes") as f:
        peak = int(f.read())
    assert limit == 512 << 20                              # the chart's resources.limits.memory
    print("agent memory cgroup peak: %.1f MiB of %d MiB" % (peak / 2**20, limit >> 20))
    assert peak < limit / 2, "agent peaked at %d MiB" % (peak >> 20)


def run_until_exit(ctd, template, timeout=30):
    shim = KubeletShim(ctd)
    pod = shim.run(template, namespace=NAMESPACE)
    try:
        code = pod.wait_exited(timeout)
        return code, [t for s, t in pod.log_lines() if s == "stderr"]
    finally:
        pod.remove()


@pytest.mark.parametrize("cap", sorted(CAPS))
def test_each_claimed_capability_is_needed(ctd, cap):
    template = rendered_pod(ctd, free_port(), "--set", "tracers={exec}")
    c = template["spec"]["containers"][0]
    c["securityContext"]["capabilities"]["add"].remove(cap)
    if cap == "SYS_PTRACE":
        # without it /proc/<pid>/ns/* of other processes cannot be read: the
        # host mount namespace for --exclude-host (and, with attribution, the
        # containers' on cgroup v1 nodes). The agent says so and goes on.
        shim = KubeletShim(ctd)
        pod = shim.run(template, namespace=NAMESPACE)
        try:
            ln = wait_log(pod, lambda ln: "/proc/1/ns/mnt" in ln[1], 30, "host mntns warning")
            assert "needs CAP_SYS_PTRACE" in ln[1]
            assert ln[1].startswith("podsnoop: warning:")
        finally:
            pod.remove()
        return
    code, err = run_until_exit(ctd, template)
    assert code == 1
    assert any("missing capability CAP_%s" % cap in l for l in err), err


def test_with_every_claimed_capability_no_ptrace_complaint(deployed):
    """The negative of the SYS_PTRACE case above: with the chart's set the
    agent finds the node's mount namespace and does not ask for
    CAP_SYS_PTRACE. On this VM /proc/1 stays unreadable (its init is not
    dumpable), so it comes from kthreadd; where init is readable, nothing is
    logged."""
    lines = [t for t in deployed.pod.stderr() if "/proc/1/ns/mnt" in t]
    assert all("warning" not in t and "CAP_SYS_PTRACE" not in t for t in lines), lines
    assert all("the node's mount namespace is kthreadd's" in t for t in lines), lines


def test_a_seccomp_profile_blocking_bpf_is_named(ctd):
    shim = KubeletShim(ctd)
    with open(os.path.join(shim.seccomp_root, "no-bpf.json"), "w") as f:
        json.dump({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["bpf"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}, f)
    template = rendered_pod(ctd, free_port(), "--set", "tracers={exec}",
                            "--set", "securityContext.seccompProfile.type=Localhost",
                            "--set", "securityContext.seccompProfile.localhostProfile=no-bpf.json")
    pod = shim.run(template, namespace=NAMESPACE)
    try:
        assert pod.wait_exited(30) == 1
        err = [t for s, t in pod.log_lines() if s == "stderr"]
    finally:
        pod.remove()
    assert any("a seccomp filter blocks bpf(2)" in l for l in err), err


def test_without_tracefs_the_agent_falls_back(ctd, tmp_path):
    """A node without tracefs mounted: the read-only mount shows an empty
    directory, the agent cannot mount tracefs (no CAP_SYS_ADMIN) and uses the
    BTF tracepoint, which needs no tracefs."""
    empty = tmp_path / "no-tracefs"
    empty.mkdir()
    port = free_port()
    template = rendered_pod(ctd, port, "--set", "tracers={exec}", "--set",
                            "tracefsPath=%s" % empty)
    pod = KubeletShim(ctd).run(template, namespace=NAMESPACE)
    try:
        wait_log(pod, lambda ln: ln[1].endswith("info: ready"), 30, "agent ready")
        err = [t for s, t in pod.log_lines() if s == "stderr"]
        assert any("tracefs is not mounted and mounting it failed (Operation not permitted)" in l
                   for l in err), err
        # the raw syscall dispatcher (tp_btf sys_enter/sys_exit) comes before the
        # sched_process_exec hooks: it needs no tracefs either and sees failed execs
        assert any("exec: tracing with raw_syscalls" in l for l in err), err
        assert http_get(port, "/readyz")[0] == 200
    finally:
        pod.remove()


def test_dockerfile_copies_what_make_image_builds():
    """No Docker engine here: check the Dockerfile's last stage takes the
    directory `make image-rootfs` fills, with the image's entrypoint."""
    with open(os.path.join(REPO, "image", "Dockerfile")) as f:
        lines = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    final = lines[max(i for i, l in enumerate(lines) if l.startswith("FROM")):]
    assert final[0] == "FROM scratch"
    assert "COPY --from=build /src/build/image-rootfs/ /" in final
    assert 'ENTRYPOINT ["/usr/bin/podsnoop"]' in final
    assert any("make image-rootfs" in l for l in lines)
    subprocess.run(["make", "-C", REPO, "image-rootfs"], check=True, capture_output=True)
    root = os.path.join(REPO, "build", "image-rootfs")
    listed = subprocess.run(["/usr/bin/python3", os.path.join(REPO, "image", "mkimage.py"),
                             "--binary", os.path.join(REPO, "build", "podsnoop"), "--list"],
                            capture_output=True, text=True, check=True).stdout
    for line in listed.splitlines():
        path, kind = line.split()
        assert os.path.isdir(root + path) if kind == "dir" else \
            os.path.getsize(root + path) == int(kind), path
    # the laid-out agent runs from it with its own loader and libraries only
    p = subprocess.run(["chroot", root, "/usr/bin/podsnoop", "--version"], capture_output=True,
                       text=True)
    assert p.returncode == 0 and p.stdout.startswith("podsnoop "), p.stderr


def test_agent_in_a_private_cgroup_namespace_finds_cgroup2(tmp_path):
    """Pods on cgroup v2 nodes get a private cgroup namespace: the node's
    hierarchy mounted in shows its root as "/.." in mountinfo. The agent must
    still find cgroup2 and select by cgroup (it did not before this check)."""
    from podsnoop_harness import AGENT, Cgroup, make_program
    with Cgroup() as home, Cgroup() as target:
        prog = make_program(str(tmp_path))
        agent = subprocess.Popen(
            ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec unshare -C "$1" -t exec -c "$2" -d 4',
             home.path, AGENT, target.rel],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        for line in agent.stderr:
            lines.append(line)
            if line.rstrip().endswith("info: ready"):
                break
        target.run([prog])
        out, err = agent.communicate(timeout=30)
    assert agent.returncode == 0, "".join(lines) + err
    recs = [json.loads(l) for l in out.splitlines()]
    assert [r["filename"] for r in recs if r["type"] == "exec"] == [prog]
    assert recs[0]["cgroup_id"] == target.id


def test_a_restarted_runtime_is_found_again(ctd):
    """The chart mounts the CRI socket's directory, not the socket: a runtime
    that restarts makes a new socket (a new inode), which a mount of the old
    socket file would never show. Two agents side by side through one
    containerd restart: the chart's, and one whose pod mounts the socket file
    itself (the shape this chart had before). Only the chart's attributes a
    pod started after the restart; the other's /readyz says the CRI is down."""
    port_dir, port_file = free_port(), free_port()
    args = ("--set", "tracers={exec}", "--set", "output=ndjson",
            "--set-string", "extraArgs={--meta-resync,1}")
    by_dir = rendered_pod(ctd, port_dir, *args)
    by_file = rendered_pod(ctd, port_file, *args)
    spec = by_file["spec"]
    (vol,) = [v for v in spec["volumes"] if v["name"] == "cri-socket"]
    vol["hostPath"] = {"path": ctd.socket, "type": "Socket"}
    (mnt,) = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "cri-socket"]
    mnt["mountPath"] = ctd.socket
    shim = KubeletShim(ctd)
    agents = [shim.run(by_dir, namespace=NAMESPACE), shim.run(by_file, namespace=NAMESPACE)]
    later = None
    try:
        for a in agents:
            wait_log(a, lambda ln: ln[1].endswith("info: ready"), 30, "agent ready")
        for port in (port_dir, port_file):
            assert "ok   metadata: CRI containerd" in http_get(port, "/readyz")[1]
        before = os.stat(ctd.socket).st_ino
        ctd.restart()
        assert os.stat(ctd.socket).st_ino != before
        later = Pod.start(ctd.cri, "after-restart", "team-r")
        token = unique("restart")
        assert later.exec(["/bin/echo", token])[0] == 0
        recs = []
        for a in agents:
            ln = wait_log(a, lambda ln: ln[0] == "stdout" and token in ln[1], 20,
                          "the exec after the restart")
            recs.append(json.loads(ln[1]))
        assert recs[0]["k8s"] == k8s_of(later)
        assert recs[1]["cgroup_id"] == later.cgroup_id
        assert recs[1]["k8s"]["pod"] == "" and recs[1]["k8s"]["container_id"] == \
            later.container_id                  # only what the cgroup path tells
        assert http_get(port_dir, "/readyz")[0] == 200
        status, body = http_get(port_file, "/readyz")
        assert status == 503 and "FAIL metadata: CRI down: " in body, body
    finally:
        if later:
            later.remove()
        for a in agents:
            a.remove()


def test_agent_in_a_private_cgroup_namespace_attributes_pods(ctd):
    """On cgroup v2 nodes a pod gets a private cgroup namespace (not here:
    containerd gives one only on pure cgroup v2, this node is hybrid), so
    the agent is run in one by hand, with the CRI: a pod's exec must still
    be attributed by name (cgroup ids and the mounted hierarchy, never the
    agent's own view of /proc/<pid>/cgroup)."""
    from podsnoop_harness import AGENT
    target = Pod.start(ctd.cri, "cgns-target", "team-n")
    token = unique("cgns")
    agent = subprocess.Popen(["unshare", "-C", AGENT, "-t", "exec", "--exclude-host",
                              "--cri-socket", ctd.socket, "-d", "6"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in agent.stderr:
            lines.append(line)
            if line.rstrip().endswith("info: ready"):
                break
        assert target.exec(["/bin/echo", token])[0] == 0
        out, err = agent.communicate(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        target.remove()
    assert agent.returncode == 0, "".join(lines) + err
    assert "cgroup2 at /sys/fs/cgroup/unified" in "".join(lines)
    recs = [json.loads(l) for l in out.splitlines() if token in l]
    assert len(recs) == 1, out[-2000:]
    assert recs[0]["cgroup_id"] == target.cgroup_id
    assert recs[0]["k8s"] == k8s_of(target)
