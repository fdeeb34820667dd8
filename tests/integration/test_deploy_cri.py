"""The deployment shape, proven on a real runtime: `make image`'s OCI archive
imported into a private containerd, and the agent run AS A CRI CONTAINER with
exactly the pod spec the chart renders (capabilities, read-only root, hostPID,
read-only host mounts, seccomp, args, env, limits), by kubelet_shim (kubelet
cannot run here). It must trace a second pod's execs; taking away a capability
the chart claims must produce a message naming it.

Extending after merges: the module-scoped `deployed` fixture is the running
agent pod; `deployed.records()` are its stdout records, `deployed.metrics()`
its /metrics samples, `deployed.target` the second pod (`.exec(cmd)`). Add a
test per feature (open records of the target's files, bio records of its I/O,
`k8s` attribution fields, shipping to the reference collector by rendering
with collector.url) next to test_traces_the_other_pods_execs, and remove the
flags that landed from chart_render.PENDING_FLAGS.
"""
import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest
from chart_render import CAPS, agent_container, docs, render, split_pending
from cri_testbed import Containerd, Pod
from kubelet_shim import KubeletShim, wait_log
from podsnoop_harness import REPO, unique
from prometheus_server import free_port

IMAGE_TAR = os.path.join(REPO, "build", "podsnoop-image.tar")
NAMESPACE = "podsnoop-system"


def version():
    with open(os.path.join(REPO, "agent", "version.h")) as f:
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


class Deployed:
    def __init__(self, ctd, shim, pod, port, target):
        self.ctd, self.shim, self.pod, self.port, self.target = ctd, shim, pod, port, target

    def records(self):
        return [json.loads(t) for t in self.pod.stdout() if t.startswith("{")]

    def metrics(self):
        status, body = http_get(self.port, "/metrics")
        assert status == 200
        out = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                out[series] = float(value)
        return out


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
def deployed(ctd):
    shim = KubeletShim(ctd, node_name="node-under-test")
    target = Pod.start(ctd.cri, "target", "team-b")
    port = free_port()
    pod = shim.run(rendered_pod(ctd, port, "--set", "tracers={exec}"), namespace=NAMESPACE,
                   name="podsnoop-abcde")
    try:
        wait_log(pod, lambda ln: ln[1].endswith("info: ready"), 30, "agent ready")
        yield Deployed(ctd, shim, pod, port, target)
    finally:
        pod.remove()
        target.remove()


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


def test_probes_answer(deployed):
    status, body = http_get(deployed.port, "/healthz")
    assert status == 200 and body.startswith("ok")
    status, body = http_get(deployed.port, "/readyz")
    assert status == 200, body
    assert "tracers: 1 attached: exec=syscalls" in body


def test_traces_the_other_pods_execs(deployed):
    token = unique("deploy")
    code, out, _ = deployed.target.exec(["/bin/echo", token])
    assert code == 0 and out.strip() == token

    def mine(ln):
        return ln[0] == "stdout" and token in ln[1]
    wait_log(deployed.pod, mine, 15, "exec record of the target pod")
    recs = [r for r in deployed.records() if r.get("type") == "exec" and token in r["args"]]
    assert len(recs) == 1, recs
    r = recs[0]
    assert r["filename"] == "/bin/echo" and r["args"] == ["/bin/echo", token]
    assert r["cgroup_id"] == deployed.target.cgroup_id     # the target pod's container
    assert r["mntns_id"] == deployed.target.mntns
    assert r["retval"] == 0
    m = deployed.metrics()
    assert m['podsnoop_events_emitted_total{tracer="exec"}'] >= 1
    assert m['podsnoop_events_lost_total{tracer="exec",stage="kernel_ringbuf"}'] == 0
    assert m['podsnoop_tracer_info{tracer="exec",method="syscalls"}'] == 1


def test_agent_memory_fits_the_chart_limit(deployed):
    """BPF maps and ring buffers are charged to the pod's memory cgroup: the
    chart's limit must hold the agent with room to spare."""
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
    agent does not ask for CAP_SYS_PTRACE (here /proc/1 stays unreadable for
    reasons of this VM, which the message tells apart)."""
    lines = [t for s, t in deployed.pod.log_lines() if "/proc/1/ns/mnt" in t]
    assert lines and all("needs CAP_SYS_PTRACE" not in t for t in lines)


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
        assert any("exec: tracing with sched_btf" in l for l in err), err
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
