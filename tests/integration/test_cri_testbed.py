#!/usr/bin/python3
"""Self-test of the CRI test harness (tests/lib/cri_testbed.py).

Starts a private containerd, runs two real pods through the CRI as kubelet
would, checks what podsnoop will rely on (cgroup paths and ids, mount
namespaces, kubelet labels, ExecSync, survival across a containerd restart)
and that cleanup leaves nothing behind.

The checks run in order against one containerd instance (a module-scoped
fixture), as pytest cases: `make test`, or alone (as root, Debian's python):
    /usr/bin/python3 -m pytest tests/integration/test_cri_testbed.py
"""

import importlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))

import pytest  # noqa: E402
import cri_testbed as tb  # noqa: E402

K_POD_NAME = "io.kubernetes.pod.name"
K_POD_NS = "io.kubernetes.pod.namespace"
K_POD_UID = "io.kubernetes.pod.uid"
K_CTR_NAME = "io.kubernetes.container.name"

# two pods in two Kubernetes namespaces
POD_SPECS = [("web", "team-a", "app"), ("db", "team-b", "store")]


class Ctx:
    """State shared by the checks of one run."""

    def __init__(self):
        self.ctd = None
        self.pods = []
        self.cleaned = False
        self.dir = None
        self.uids = []
        self.pids = []

    def need_ctd(self):
        assert self.ctd is not None and not self.cleaned, "no containerd (containerd_starts failed)"
        return self.ctd

    def need_pods(self):
        self.need_ctd()
        assert len(self.pods) == len(POD_SPECS), "pods missing (two_pods_start failed)"
        return self.pods


def host_mntns():
    return os.stat("/proc/self/ns/mnt").st_ino


# ------------------------------------------------------------------- checks

def check_prerequisites(ctx):
    assert os.geteuid() == 0, "must run as root (containerd, cgroups)"
    assert tb.cgroup2_mount() is not None, "no cgroup2 mount in /proc/self/mountinfo"
    for tool in ("containerd", "ctr", "runc", "protoc"):
        assert tb.shutil.which(tool), "%s not on PATH (see tests/lib/README.md)" % tool
    assert os.path.exists(tb.BUSYBOX), "%s missing: apt-get install busybox-static" % tb.BUSYBOX
    try:
        importlib.import_module("grpc")
    except ImportError:
        raise AssertionError("no grpc module: run with /usr/bin/python3 (python3-grpcio)")
    tb.pb()  # protoc --python_out into build/test-gen, then import


def check_containerd_starts(ctx):
    ctx.ctd = tb.Containerd()
    ctx.dir = ctx.ctd.dir
    assert ctx.ctd.running(), "containerd is not running"
    assert os.path.exists(ctx.ctd.socket), "no socket at %s" % ctx.ctd.socket
    assert len(ctx.ctd.socket) < 108, "socket path too long: %s" % ctx.ctd.socket
    assert ctx.ctd.pid in ctx.ctd.processes(), \
        "containerd pid %d not among the instance's processes %s" % (ctx.ctd.pid,
                                                                    ctx.ctd.processes())


def check_version(ctx):
    v = ctx.need_ctd().cri.version()
    assert v.runtime_name == "containerd", "runtime_name is %r" % v.runtime_name
    assert v.runtime_api_version == "v1", "runtime_api_version is %r" % v.runtime_api_version
    assert v.runtime_version, "empty runtime_version"


def check_image_imported(ctx):
    img = ctx.need_ctd().cri.image_status(tb.IMAGE_REF)
    assert img is not None, "the CRI does not know %s" % tb.IMAGE_REF
    assert tb.IMAGE_REF in img.repo_tags, "repo_tags %s lack %s" % (list(img.repo_tags),
                                                                   tb.IMAGE_REF)


def check_two_pods_start(ctx):
    cri = ctx.need_ctd().cri
    for name, ns, cname in POD_SPECS:
        pod = tb.Pod.start(cri, name, ns, container_name=cname, labels={"app": name})
        ctx.pods.append(pod)
        ctx.uids.append(pod.uid)
        ctx.pids.append(pod.container_pid)
    a, b = ctx.pods
    assert a.sandbox_id != b.sandbox_id, "both pods got sandbox %s" % a.sandbox_id
    assert a.container_id != b.container_id, "both pods got container %s" % a.container_id
    for p in ctx.pods:
        assert p.container_pid and tb.pid_alive(p.container_pid), \
            "%r: container pid %s is not alive" % (p, p.container_pid)


def check_cgroups(ctx):
    root = tb.cgroup2_mount()
    for p in ctx.need_pods():
        want_prefix = "/kubepods/besteffort/pod%s/" % p.uid
        assert p.cgroup_path == want_prefix + p.container_id, \
            "%s: cgroup path %s, expected %s<container id>" % (p.name, p.cgroup_path, want_prefix)
        d = os.path.join(root, p.cgroup_path.lstrip("/"))
        assert os.path.isdir(d), "%s: no cgroup directory %s" % (p.name, d)
        ino = os.stat(d).st_ino
        assert ino == p.cgroup_id, "%s: inode of %s is %d, reported cgroup id %s" % (
            p.name, d, ino, p.cgroup_id)
        actual = tb.proc_cgroup2_path(p.container_pid)
        assert actual == p.cgroup_path, "%s: pid %d is in %s, reported %s" % (
            p.name, p.container_pid, actual, p.cgroup_path)
        with open(os.path.join(d, "cgroup.procs")) as f:
            procs = [int(x) for x in f.read().split()]
        assert p.container_pid in procs, "%s: pid %d not in %s/cgroup.procs %s" % (
            p.name, p.container_pid, d, procs)
    a, b = ctx.pods
    assert a.cgroup_id != b.cgroup_id, "both containers report cgroup id %d" % a.cgroup_id


def check_mount_namespaces(ctx):
    host = host_mntns()
    for p in ctx.need_pods():
        assert p.mntns != host, "%s: container shares the host mount namespace %d" % (
            p.name, host)
        now = os.stat("/proc/%d/ns/mnt" % p.container_pid).st_ino
        assert now == p.mntns, "%s: mntns reported %s, /proc says %d" % (p.name, p.mntns, now)
    a, b = ctx.pods
    assert a.mntns != b.mntns, "both containers in mount namespace %d" % a.mntns


def check_exec_sync(ctx):
    for p in ctx.need_pods():
        code, out, err = p.exec(["echo", "hello"])
        assert (code, out) == (0, "hello\n"), "%s: echo hello gave exit %d, stdout %r, " \
            "stderr %r" % (p.name, code, out, err)
    code, out, err = ctx.pods[0].exec(["sh", "-c", "echo oops >&2; exit 3"])
    assert (code, err) == (3, "oops\n"), "exit 3 gave exit %d, stderr %r" % (code, err)


def check_list_containers(ctx):
    pods = ctx.need_pods()
    cri = ctx.ctd.cri
    listed = {c.id: c for c in cri.list_containers()}
    for p in pods:
        assert p.container_id in listed, "%s: container %s not listed (listed: %s)" % (
            p.name, p.container_id[:12], [i[:12] for i in listed])
        c = listed[p.container_id]
        want = {K_CTR_NAME: p.container_name, K_POD_NAME: p.name, K_POD_NS: p.namespace,
                K_POD_UID: p.uid, "app": p.name}
        got = dict(c.labels)
        for k, v in want.items():
            assert got.get(k) == v, "%s: label %s is %r, expected %r (labels %s)" % (
                p.name, k, got.get(k), v, got)
        assert c.pod_sandbox_id == p.sandbox_id, "%s: sandbox id %s, expected %s" % (
            p.name, c.pod_sandbox_id[:12], p.sandbox_id[:12])
        assert c.metadata.name == p.container_name, "%s: metadata name %r" % (p.name,
                                                                              c.metadata.name)
        assert c.state == cri.pb.CONTAINER_RUNNING, "%s: state %s" % (
            p.name, cri.pb.ContainerState.Name(c.state))
    # filters work as kubelet uses them
    only = cri.list_containers(label_selector={K_POD_NS: pods[1].namespace})
    assert [c.id for c in only] == [pods[1].container_id], \
        "label filter on namespace %s gave %s" % (pods[1].namespace, [c.id[:12] for c in only])
    sbs = {s.id: s for s in cri.list_pod_sandbox()}
    for p in pods:
        assert p.sandbox_id in sbs, "%s: sandbox not listed by ListPodSandbox" % p.name
        s = sbs[p.sandbox_id]
        assert (s.metadata.name, s.metadata.namespace, s.metadata.uid) == (
            p.name, p.namespace, p.uid), "%s: sandbox metadata %s" % (p.name, s.metadata)
        assert s.labels[K_POD_UID] == p.uid, "%s: sandbox labels %s" % (p.name, dict(s.labels))


def check_container_status_verbose(ctx):
    for p in ctx.need_pods():
        st, info = ctx.ctd.cri.container_status(p.container_id, verbose=True)
        assert st.id == p.container_id, "status id %s" % st.id
        assert info.get("pid") == p.container_pid, "%s: info pid %s, expected %d" % (
            p.name, info.get("pid"), p.container_pid)
        cg = info.get("runtimeSpec", {}).get("linux", {}).get("cgroupsPath")
        assert cg == p.cgroup_path, "%s: runtimeSpec cgroupsPath %s" % (p.name, cg)


def check_cri_errors(ctx):
    cri = ctx.need_ctd().cri
    try:
        cri.container_status("no-such-container")
    except tb.CRIError as e:
        assert e.method == "ContainerStatus" and e.code is not None, "bad CRIError %r" % e
        assert "ContainerStatus" in str(e) and e.code.name in str(e), "unclear message: %s" % e
    else:
        raise AssertionError("ContainerStatus of a missing container did not raise")


def check_short_lived_container(ctx):
    cri = ctx.need_ctd().cri
    pod = tb.Pod.start(cri, "once", "team-c", short_lived=True)
    try:
        assert pod.exit_code == 0, "exit code %s" % pod.exit_code
        assert pod.cgroup_path.endswith("/" + pod.container_id), "cgroup path %s" % pod.cgroup_path
        assert pod.cgroup_id, "the short-lived container's cgroup was never seen"
        st, _ = cri.container_status(pod.container_id, verbose=False)
        assert st.state == cri.pb.CONTAINER_EXITED, "state %s" % cri.pb.ContainerState.Name(
            st.state)
        # containerd stamps started_at after the start returns, so a container
        # this short can show finished_at slightly before started_at
        lived = (st.finished_at - st.started_at) / 1e9
        assert lived < 2.0, "the short-lived container lived %.3fs" % lived
    finally:
        uid = pod.uid
        pod.remove()
    left = [m for m in tb.cgroup_mounts()
            if os.path.exists(os.path.join(m, "kubepods/besteffort/pod" + uid))]
    assert not left, "Pod.remove() left cgroup dirs in %s" % left


def check_restart_keeps_pods(ctx):
    pods = ctx.need_pods()
    ctd = ctx.ctd
    old_pid = ctd.pid
    ctd.restart()
    assert ctd.running() and ctd.pid != old_pid, "containerd did not restart"
    cri = ctd.cri
    ready = {s.id for s in cri.list_pod_sandbox(ready_only=True)}
    running = {c.id for c in cri.list_containers(state=cri.pb.CONTAINER_RUNNING)}
    for p in pods:
        assert p.sandbox_id in ready, "%s: sandbox not READY after restart" % p.name
        assert p.container_id in running, "%s: container not RUNNING after restart" % p.name
        assert tb.pid_alive(p.container_pid), "%s: pid %d died" % (p.name, p.container_pid)
        _, info = cri.container_status(p.container_id)
        assert info.get("pid") == p.container_pid, "%s: pid now %s" % (p.name, info.get("pid"))
    code, out, _ = pods[1].exec(["echo", "hello"])
    assert (code, out) == (0, "hello\n"), "exec after restart: %d %r" % (code, out)


def check_cleanup(ctx):
    ctd = ctx.need_ctd()
    ctx.cleaned = True
    ctd.cleanup()
    left = []
    for m in tb.cgroup_mounts():
        for uid in ctx.uids:
            d = os.path.join(m, "kubepods/besteffort/pod" + uid)
            if os.path.exists(d):
                left.append(d)
    assert not left, "pod cgroup directories left: %s" % left
    procs = ctd.processes()
    assert not procs, "processes of this containerd left: %s" % procs
    alive = [p for p in ctx.pids if p and tb.pid_alive(p)]
    assert not alive, "container processes left: %s" % alive
    mounts = [mp for mp, _, _ in tb._mountinfo() if mp.startswith(ctx.dir + "/")]
    assert not mounts, "mounts left: %s" % mounts
    assert not os.path.exists(ctx.dir), "directory left: %s" % ctx.dir


CHECKS = [
    ("prerequisites", check_prerequisites),
    ("containerd_starts", check_containerd_starts),
    ("version", check_version),
    ("image_imported", check_image_imported),
    ("two_pods_start", check_two_pods_start),
    ("cgroups", check_cgroups),
    ("mount_namespaces", check_mount_namespaces),
    ("exec_sync", check_exec_sync),
    ("list_containers", check_list_containers),
    ("container_status_verbose", check_container_status_verbose),
    ("cri_errors", check_cri_errors),
    ("short_lived_container", check_short_lived_container),
    ("restart_keeps_pods", check_restart_keeps_pods),
    ("cleanup", check_cleanup),
]


@pytest.fixture(scope="module")
def ctx():
    """One containerd for the whole sequence; cleaned up whatever fails."""
    c = Ctx()
    yield c
    if c.ctd is not None and not c.cleaned:
        c.cleaned = True
        c.ctd.cleanup()


@pytest.mark.parametrize("fn", [fn for _, fn in CHECKS], ids=[name for name, _ in CHECKS])
def test_cri_testbed(ctx, fn):
    fn(ctx)
