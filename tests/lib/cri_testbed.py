"""Real pods for podsnoop's tests: a private containerd driven through the CRI.

Run with Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf), as
root. See tests/lib/README.md for the API and the Debian packages needed.

    import sys; sys.path.insert(0, "tests/lib")
    from cri_testbed import Containerd, Pod

    with Containerd() as ctd:                 # private containerd + image
        pod = Pod.start(ctd.cri, "web", "team-a")
        print(pod.container_pid, pod.cgroup_path, pod.cgroup_id, pod.mntns)
    # leaving the block removes the pods, their cgroups, mounts and the dir

Everything one instance creates lives under one short directory
(/tmp/pscri-XXXXXXXX): root, state, sockets, runc root, log. Outside it,
containerd and runc create only what a CRI node always has: cgroups under
/kubepods/besteffort/pod<uid> (removed by cleanup()), shim sockets under
/run/containerd/s and fifos under /run/containerd/fifo (removed by
containerd and the shims themselves).
"""

import contextlib
import ctypes
import fcntl
import glob
import hashlib
import importlib
import importlib.util
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO_ROOT, "image"))
from mkimage import write_oci_archive  # noqa: E402  (the one OCI archive writer)
PROTO_DIR = os.path.join(REPO_ROOT, "proto")
PROTO_FILE = os.path.join(PROTO_DIR, "cri", "api.proto")
GEN_DIR = os.path.join(REPO_ROOT, "build", "test-gen")

IMAGE_REF = "localhost/podsnoop-busybox:test"
BUSYBOX = "/bin/busybox"
# Applets the image must have whatever `busybox --list` says (all are linked).
REQUIRED_APPLETS = ("sh", "sleep", "cat", "true", "false", "ls", "dd", "echo",
                    "env", "ps", "id", "mkdir", "rm", "touch", "head", "wc")

# The pod's long-running container (forks a sleep every second).
LONG_RUNNING_CMD = ["sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1 & wait $!; done"]
# A quiet alternative: one sleep for the container's whole life (no periodic exec).
QUIET_CMD = ["sh", "-c", "trap 'exit 0' TERM INT; sleep 2147483647 & wait"]
# The sandbox (pause) container runs the image's default command: QUIET_CMD.
# A short-lived container: exits within a few ms of starting.
SHORT_LIVED_CMD = ["sh", "-c", "echo short-lived; exit 0"]

CONTAINERD = "containerd"
CTR = "ctr"


class TestbedError(RuntimeError):
    """The testbed could not do what was asked (not a CRI error)."""


class CRIError(RuntimeError):
    """A CRI call failed: .method, .code (grpc.StatusCode), .details."""

    def __init__(self, method, code, details):
        self.method, self.code, self.details = method, code, details
        name = code.name if code is not None else "UNKNOWN"
        super().__init__("CRI %s failed: %s: %s" % (method, name, details))


# --------------------------------------------------------------- waiting

def wait_for(pred, timeout, what, interval=0.02, max_interval=0.2):
    """Poll pred() until it returns a truthy value, which is returned.

    Raises TestbedError naming `what` after `timeout` seconds. The interval
    grows from `interval` to `max_interval`. Other exceptions from pred() are
    retried (and the last one reported), a TestbedError ends the wait."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except TestbedError:
            raise   # fatal: no point in waiting on
        except Exception as e:  # noqa: BLE001 - reported if we time out
            last_exc = e
        if time.monotonic() >= deadline:
            msg = "timed out after %.1fs waiting for %s" % (timeout, what)
            if last_exc is not None:
                msg += " (last error: %s)" % (last_exc,)
            raise TestbedError(msg)
        time.sleep(interval)
        interval = min(interval * 1.5, max_interval)


# ---------------------------------------------------- generated messages

_pb2 = None
_pb2_lock = threading.Lock()


def _protoc_generate():
    """Compile proto/cri/api.proto with protoc into build/test-gen when stale.

    Staleness is judged by a SHA-256 of the .proto stored beside the output,
    and the output is written to a temporary directory and renamed in, so
    concurrent test processes never see a half-written module."""
    with open(PROTO_FILE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    out = os.path.join(GEN_DIR, "cri", "api_pb2.py")
    stamp = os.path.join(GEN_DIR, "cri", "api.proto.sha256")
    try:
        with open(stamp) as f:
            if f.read().strip() == digest and os.path.exists(out):
                return out
    except FileNotFoundError:
        pass
    protoc = shutil.which("protoc")
    if not protoc:
        raise TestbedError("protoc not found: apt-get install protobuf-compiler")
    os.makedirs(GEN_DIR, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".gen-", dir=GEN_DIR)
    try:
        r = subprocess.run([protoc, "-I", PROTO_DIR, "--python_out=" + tmp, "cri/api.proto"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise TestbedError("protoc failed on %s:\n%s" % (PROTO_FILE, r.stdout))
        with open(os.path.join(tmp, "cri", "api.proto.sha256"), "w") as f:
            f.write(digest + "\n")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        os.replace(os.path.join(tmp, "cri", "api_pb2.py"), out)
        os.replace(os.path.join(tmp, "cri", "api.proto.sha256"), stamp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def pb():
    """The generated runtime.v1 message module (generated and imported once)."""
    global _pb2
    with _pb2_lock:
        if _pb2 is None:
            try:
                importlib.import_module("google.protobuf")
            except ImportError:
                raise TestbedError("python module google.protobuf missing: run with "
                                   "/usr/bin/python3 (Debian python3-protobuf), not %s"
                                   % sys.executable) from None
            path = _protoc_generate()
            spec = importlib.util.spec_from_file_location("podsnoop_cri_api_pb2", path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            sys.modules["podsnoop_cri_api_pb2"] = mod
            _pb2 = mod
        return _pb2


# ------------------------------------------------------------------ image

def _tar_add(tf, name, type_, data=b"", mode=0o755, linkname=""):
    ti = tarfile.TarInfo(name)
    ti.type = type_
    ti.mode = mode
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    ti.mtime = 0
    ti.linkname = linkname
    if type_ == tarfile.REGTYPE:
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    else:
        tf.addfile(ti)


def _busybox_layer(busybox=BUSYBOX):
    """An uncompressed, reproducible layer tar: bin/busybox, every applet as a
    symlink to it in bin/, and the usual empty directories."""
    if not os.path.exists(busybox):
        raise TestbedError("%s missing: apt-get install busybox-static" % busybox)
    with open(busybox, "rb") as f:
        bb = f.read()
    try:
        listed = subprocess.run([busybox, "--list"], check=True, stdout=subprocess.PIPE,
                                text=True).stdout.split()
    except (OSError, subprocess.CalledProcessError) as e:
        raise TestbedError("cannot list busybox applets: %s" % e)
    applets = sorted(set(listed) | set(REQUIRED_APPLETS))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("bin", "dev", "etc", "proc", "root", "sys", "tmp", "var"):
            _tar_add(tf, d + "/", tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755)
        _tar_add(tf, "bin/busybox", tarfile.REGTYPE, bb, 0o755)
        for a in applets:
            if a in ("busybox", "[", "[[") or "/" in a:
                continue
            _tar_add(tf, "bin/" + a, tarfile.SYMTYPE, linkname="busybox", mode=0o777)
        _tar_add(tf, "etc/passwd", tarfile.REGTYPE, b"root:x:0:0:root:/root:/bin/sh\n", 0o644)
        _tar_add(tf, "etc/group", tarfile.REGTYPE, b"root:x:0:\n", 0o644)
    return buf.getvalue()


def build_busybox_image(path, ref=IMAGE_REF, busybox=BUSYBOX):
    """Write an OCI image archive for `ctr images import` to `path`.

    One layer (busybox-static and its applet links), default command QUIET_CMD
    (so the image can also serve as the pod sandbox image), tagged `ref`.
    Returns the manifest digest ("sha256:...")."""
    return write_oci_archive(path, _busybox_layer(busybox),
                             {"Env": ["PATH=/bin"], "Cmd": QUIET_CMD, "WorkingDir": "/"},
                             ref, "podsnoop tests/lib/cri_testbed.py (busybox-static)")


# ---------------------------------------------------------------- cgroups

def _mountinfo():
    """Yield (mount_point, fstype, super_options) from /proc/self/mountinfo."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.rstrip("\n").partition(" - ")
            fields = left.split()
            rfields = right.split()
            if len(fields) < 5 or len(rfields) < 1:
                continue
            mp = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
            yield mp, rfields[0], (rfields[2] if len(rfields) > 2 else "")


def cgroup2_mount():
    """Where cgroup2 is mounted (/sys/fs/cgroup/unified on a hybrid host,
    /sys/fs/cgroup on a unified one), or None."""
    best = None
    for mp, fstype, _ in _mountinfo():
        if fstype == "cgroup2" and (best is None or mp.startswith("/sys/fs/cgroup")):
            best = mp
    return best


def cgroup_mounts():
    """Every cgroup hierarchy mount point (v1 controllers and cgroup2)."""
    seen, out = set(), []
    for mp, fstype, _ in _mountinfo():
        if fstype in ("cgroup", "cgroup2") and mp not in seen:
            seen.add(mp)
            out.append(mp)
    return out


def cgroup_id(rel_path):
    """The cgroup id BPF sees for a cgroup2 path relative to the mount:
    the inode number of its directory."""
    root = cgroup2_mount()
    if root is None:
        raise TestbedError("no cgroup2 mount in /proc/self/mountinfo")
    return os.stat(os.path.join(root, rel_path.lstrip("/"))).st_ino


def proc_cgroup2_path(pid):
    """The cgroup2 path of a process ("/kubepods/..."), from /proc/PID/cgroup."""
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            hid, _, rest = line.rstrip("\n").partition(":")
            ctrls, _, path = rest.partition(":")
            if hid == "0" and ctrls == "":
                return path
    return None


def pod_cgroup_parent(uid, qos="besteffort"):
    """kubelet's cgroupfs parent for a pod (what RunPodSandbox is given)."""
    return "/kubepods/%s/pod%s" % (qos, uid) if qos != "guaranteed" else "/kubepods/pod%s" % uid


def _kill_cgroup_procs(d):
    """SIGKILL every process left in cgroup directory d and its children."""
    for root, _dirs, files in os.walk(d):
        if "cgroup.procs" in files:
            try:
                with open(os.path.join(root, "cgroup.procs")) as f:
                    pids = [int(x) for x in f.read().split()]
            except OSError:
                continue
            for p in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(p, signal.SIGKILL)


def remove_cgroup_tree(rel_path, timeout=10.0):
    """rmdir `rel_path` (e.g. /kubepods/besteffort/pod<uid>) in every cgroup
    hierarchy, children first; processes still inside are killed. Returns the
    directories that could not be removed (empty on success)."""
    left = []
    for mp in cgroup_mounts():
        top = os.path.join(mp, rel_path.lstrip("/"))
        if not os.path.isdir(top):
            continue
        _kill_cgroup_procs(top)

        def gone(top=top):
            for root, dirs, _files in os.walk(top, topdown=False):
                for d in dirs:
                    with contextlib.suppress(FileNotFoundError, OSError):
                        os.rmdir(os.path.join(root, d))
            with contextlib.suppress(FileNotFoundError, OSError):
                os.rmdir(top)
            return not os.path.exists(top)
        try:
            wait_for(gone, timeout, "cgroup %s to be removable" % top, interval=0.01)
        except TestbedError:
            left.append(top)
    return left


# --------------------------------------------------------------- processes

def _proc_cmdline(pid):
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return None


def _all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rfind(")") + 2:].split(" ", 1)[0] not in ("Z", "X")


# -------------------------------------------------------------- CRI client

_RUNTIME = "/runtime.v1.RuntimeService/"
_IMAGE = "/runtime.v1.ImageService/"


class CRIClient:
    """Unary CRI calls over a unix socket (python3-grpcio).

    Every method raises CRIError on a gRPC failure. `timeout` is the default
    deadline per call in seconds."""

    # kubelet's label keys
    POD_NAME = "io.kubernetes.pod.name"
    POD_NAMESPACE = "io.kubernetes.pod.namespace"
    POD_UID = "io.kubernetes.pod.uid"
    CONTAINER_NAME = "io.kubernetes.container.name"

    def __init__(self, socket, timeout=30.0):
        try:
            import grpc
        except ImportError:
            raise TestbedError("python module grpc missing: run with /usr/bin/python3 "
                               "(Debian python3-grpcio), not %s" % sys.executable) from None
        self._grpc = grpc
        self.pb = pb()
        self.socket = socket
        self.timeout = timeout
        self.channel = None
        self._stubs = {}
        self.reconnect()
        self.pod_uids = set()        # every pod uid this client created
        self.sandbox_configs = {}    # sandbox id -> PodSandboxConfig

    def reconnect(self):
        """Open a fresh channel (after a runtime restart the old one may sit
        in gRPC's reconnect backoff for seconds)."""
        if self.channel is not None:
            self.channel.close()
        self._stubs = {}
        self.channel = self._grpc.insecure_channel(
            "unix:" + self.socket,
            options=[("grpc.enable_http_proxy", 0)])

    def close(self):
        if self.channel is not None:
            self.channel.close()
            self.channel = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def call(self, method, request, timeout=None, service=_RUNTIME):
        """Call `method` (e.g. "Version") with a request message; returns the reply."""
        resp_name = method + "Response"
        key = service + method
        stub = self._stubs.get(key)
        if stub is None:
            resp_cls = getattr(self.pb, resp_name)
            stub = self.channel.unary_unary(key, request_serializer=lambda m: m.SerializeToString(),
                                            response_deserializer=resp_cls.FromString)
            self._stubs[key] = stub
        try:
            return stub(request, timeout=self.timeout if timeout is None else timeout)
        except self._grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else None
            details = e.details() if hasattr(e, "details") else str(e)
            raise CRIError(method, code, details) from None

    # ---- runtime
    def version(self, timeout=None):
        return self.call("Version", self.pb.VersionRequest(version="v1"), timeout)

    def image_status(self, image=IMAGE_REF):
        """The CRI's view of an image (an Image message), or None if absent."""
        r = self.call("ImageStatus", self.pb.ImageStatusRequest(image=self.pb.ImageSpec(image=image)),
                      service=_IMAGE)
        return r.image if r.HasField("image") else None

    # ---- sandboxes
    def pod_sandbox_config(self, name, namespace, uid, labels=None, annotations=None,
                           attempt=0, qos="besteffort"):
        """The PodSandboxConfig kubelet sends for a hostNetwork pod of `qos`
        class: metadata, io.kubernetes.pod.* labels, cgroup parent
        /kubepods/<qos>/pod<uid>, namespaces network NODE, pid CONTAINER,
        ipc POD, no hostname (a host-network pod has no UTS namespace)."""
        p = self.pb
        lab = dict(labels or {})
        lab.update({self.POD_NAME: name, self.POD_NAMESPACE: namespace, self.POD_UID: uid})
        ns = p.NamespaceOption(network=p.NODE, pid=p.CONTAINER, ipc=p.POD)
        return p.PodSandboxConfig(
            metadata=p.PodSandboxMetadata(name=name, uid=uid, namespace=namespace, attempt=attempt),
            hostname="",
            labels=lab,
            annotations=dict(annotations or {}),
            linux=p.LinuxPodSandboxConfig(
                cgroup_parent=pod_cgroup_parent(uid, qos),
                security_context=p.LinuxSandboxSecurityContext(namespace_options=ns)),
        )

    def run_pod(self, name, namespace, uid=None, labels=None, annotations=None, timeout=None):
        """RunPodSandbox as kubelet does for a hostNetwork BestEffort pod.
        Returns (sandbox_id, sandbox_config). uid defaults to a fresh UUID."""
        uid = uid or str(uuid.uuid4())
        cfg = self.pod_sandbox_config(name, namespace, uid, labels, annotations)
        self.pod_uids.add(uid)
        r = self.call("RunPodSandbox", self.pb.RunPodSandboxRequest(config=cfg), timeout)
        self.sandbox_configs[r.pod_sandbox_id] = cfg
        return r.pod_sandbox_id, cfg

    def stop_pod(self, sandbox_id, timeout=None):
        self.call("StopPodSandbox", self.pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id), timeout)

    def remove_pod(self, sandbox_id, timeout=None):
        self.call("RemovePodSandbox", self.pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id),
                  timeout)
        self.sandbox_configs.pop(sandbox_id, None)

    def pod_status(self, sandbox_id, verbose=False):
        return self.call("PodSandboxStatus",
                         self.pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id, verbose=verbose))

    def list_pod_sandbox(self, id=None, label_selector=None, ready_only=False):
        p = self.pb
        f = p.PodSandboxFilter(id=id or "", label_selector=dict(label_selector or {}))
        if ready_only:
            f.state.state = p.SANDBOX_READY
        return list(self.call("ListPodSandbox", p.ListPodSandboxRequest(filter=f)).items)

    # ---- containers
    def create_container(self, sandbox_id, sandbox_config, name, command=None, args=None,
                         labels=None, annotations=None, image=IMAGE_REF, envs=None, mounts=None,
                         attempt=0, timeout=None):
        """CreateContainer as kubelet does: io.kubernetes.container.name plus the
        pod's three labels, the same namespace options as the sandbox.
        `mounts` is a list of (host_path, container_path[, readonly])."""
        p = self.pb
        md = sandbox_config.metadata
        lab = dict(labels or {})
        lab.update({self.CONTAINER_NAME: name, self.POD_NAME: md.name,
                    self.POD_NAMESPACE: md.namespace, self.POD_UID: md.uid})
        ns = p.NamespaceOption(network=p.NODE, pid=p.CONTAINER, ipc=p.POD)
        cfg = p.ContainerConfig(
            metadata=p.ContainerMetadata(name=name, attempt=attempt),
            image=p.ImageSpec(image=image),
            command=list(command or []),
            args=list(args or []),
            envs=[p.KeyValue(key=k, value=v) for k, v in (envs or {}).items()],
            mounts=[p.Mount(host_path=m[0], container_path=m[1],
                            readonly=bool(m[2]) if len(m) > 2 else False) for m in (mounts or [])],
            labels=lab,
            annotations=dict(annotations or {}),
            linux=p.LinuxContainerConfig(
                security_context=p.LinuxContainerSecurityContext(namespace_options=ns)),
        )
        r = self.call("CreateContainer", p.CreateContainerRequest(
            pod_sandbox_id=sandbox_id, config=cfg, sandbox_config=sandbox_config), timeout)
        return r.container_id

    def start_container(self, container_id, timeout=None):
        self.call("StartContainer", self.pb.StartContainerRequest(container_id=container_id), timeout)

    def stop_container(self, container_id, grace=0, timeout=None):
        self.call("StopContainer", self.pb.StopContainerRequest(container_id=container_id,
                                                                timeout=int(grace)),
                  timeout if timeout is not None else max(self.timeout, grace + 30))

    def remove_container(self, container_id, timeout=None):
        self.call("RemoveContainer", self.pb.RemoveContainerRequest(container_id=container_id),
                  timeout)

    def list_containers(self, sandbox_id=None, label_selector=None, state=None, id=None):
        """App containers (not sandboxes). state: a ContainerState value or None."""
        p = self.pb
        f = p.ContainerFilter(id=id or "", pod_sandbox_id=sandbox_id or "",
                              label_selector=dict(label_selector or {}))
        if state is not None:
            f.state.state = state
        return list(self.call("ListContainers", p.ListContainersRequest(filter=f)).containers)

    def container_status(self, container_id, verbose=True):
        """Returns (ContainerStatus, info) where info is the parsed JSON of
        info["info"] when verbose (containerd: pid, runtimeSpec, ...), else {}."""
        r = self.call("ContainerStatus", self.pb.ContainerStatusRequest(container_id=container_id,
                                                                         verbose=verbose))
        info = {}
        if verbose and "info" in r.info:
            try:
                info = json.loads(r.info["info"])
            except ValueError as e:
                raise TestbedError("ContainerStatus info is not JSON: %s" % e)
        return r.status, info

    def exec_sync(self, container_id, cmd, timeout=10):
        """Run cmd (a list) in the container; returns (exit_code, stdout, stderr)
        with the outputs decoded as UTF-8 (errors replaced)."""
        r = self.call("ExecSync", self.pb.ExecSyncRequest(container_id=container_id, cmd=list(cmd),
                                                          timeout=int(timeout)),
                      timeout=timeout + 15)
        return (r.exit_code, r.stdout.decode("utf-8", "replace"),
                r.stderr.decode("utf-8", "replace"))

    def wait_container_state(self, container_id, state, timeout=10.0):
        """Poll ContainerStatus until the container is in `state`; returns the status."""
        def check():
            st, _ = self.container_status(container_id, verbose=False)
            return st if st.state == state else None
        return wait_for(check, timeout, "container %s to reach state %s" % (
            container_id[:12], self.pb.ContainerState.Name(state)))

    def remove_all(self, timeout=60.0):
        """Stop and remove every pod sandbox the runtime lists (containers go
        with their sandbox). Returns the pod uids that were seen."""
        uids = set()
        deadline = time.monotonic() + timeout
        for sb in self.list_pod_sandbox():
            uids.add(sb.metadata.uid)
            left = max(1.0, deadline - time.monotonic())
            self.stop_pod(sb.id, timeout=left)
            self.remove_pod(sb.id, timeout=max(1.0, deadline - time.monotonic()))
        return uids


# ----------------------------------------------------------------- containerd

_CONFIG = """\
version = 2
root = "{d}/root"
state = "{d}/state"
oom_score = 0

[grpc]
  address = "{d}/c.sock"

[ttrpc]
  address = "{d}/c.sock.ttrpc"

[debug]
  address = "{d}/debug.sock"
  level = "{log_level}"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{d}/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{image}"
    # Required here: root lacks CAP_SYS_RESOURCE, so the sandbox's
    # oom_score_adj -998 would make runc fail ("can't get final child's PID
    # from pipe: EOF").
    restrict_oom_score_adj = true
    disable_apparmor = true
    enable_selinux = false
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = "{d}/runc"
    # No CNI: NetworkReady stays false, hostNetwork pods run fine.
    [plugins."io.containerd.grpc.v1.cri".cni]
      conf_dir = "{d}/cni"
      bin_dir = "{d}/cni-bin"
"""


class Containerd:
    """A private containerd with the CRI plugin, everything under one directory.

    Containerd(start=True) starts it, waits for the CRI to answer and imports
    the busybox image (IMAGE_REF, also the sandbox image). Attributes: dir,
    socket, config_path, log_path, pid, cri (a CRIClient). Use as a context
    manager, or call cleanup() in a finally.

    The instance holds an flock on DIR/lock for its whole life, so an
    instance whose process died (SIGKILL, a CI timeout) is recognisable:
    sweep_stale(), run by default before a new instance starts, adopts such
    directories and cleans them up (pods, shims, cgroups, mounts)."""

    PREFIX = "pscri-"

    def __init__(self, base="/tmp", start=True, start_timeout=30.0, log_level="info",
                 sweep=True, _adopt=None):
        if sweep and _adopt is None:
            self.sweep_stale(base)
        self._lockf = None
        if _adopt is None:
            self.dir = tempfile.mkdtemp(prefix=self.PREFIX, dir=base)
            # lock before the config exists: sweepers only consider dirs with one
            self._lockf = self._try_lock(self.dir)
        else:
            self.dir, self._lockf = _adopt
        self.socket = os.path.join(self.dir, "c.sock")
        if len(self.socket.encode()) + len(".ttrpc") >= 108:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise TestbedError("socket path too long for a unix socket: %s" % self.socket)
        self.config_path = os.path.join(self.dir, "config.toml")
        self.log_path = os.path.join(self.dir, "containerd.log")
        self.image_path = os.path.join(self.dir, "busybox-oci.tar")
        self.start_timeout = start_timeout
        self.proc = None
        self.cri = None
        self._imported = False
        self._pod_uids = set()
        self._cleaned = False
        self._ever_ready = False
        for sub in ("root", "state", "runc", "cni", "cni-bin", "opt"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        with open(self.config_path, "w") as f:
            f.write(_CONFIG.format(d=self.dir, image=IMAGE_REF, log_level=log_level))
        if start:
            try:
                self.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    self.cleanup()   # the start error is the one to report
                raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    @staticmethod
    def _try_lock(d):
        """An open file holding an exclusive flock on d/lock, or None if another
        live process holds it."""
        f = open(os.path.join(d, "lock"), "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return None
        return f

    @classmethod
    def sweep_stale(cls, base="/tmp"):
        """Clean up instances left by dead processes (their lock is free):
        start containerd on the directory again to remove its pods through
        the CRI, then the usual cleanup. Returns the directories swept;
        instances of live processes (any worktree) are never touched."""
        swept = []
        for d in sorted(glob.glob(os.path.join(base, cls.PREFIX + "*"))):
            if not os.path.isfile(os.path.join(d, "config.toml")):
                continue
            try:
                lockf = cls._try_lock(d)
            except OSError:
                continue
            if lockf is None:
                continue
            try:
                c = cls(base=base, start=False, _adopt=(d, lockf))
                c._imported = True
                c._ever_ready = True    # so cleanup() starts it to remove pods
                c.cleanup()
                swept.append(d)
            except Exception as e:  # noqa: BLE001 - sweeping is best effort
                sys.stderr.write("cri_testbed: could not sweep %s: %s\n" % (d, e))
            finally:
                lockf.close()
        return swept

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def start(self):
        """Start containerd, wait for CRI Version, import the image once."""
        if self.running():
            return
        self._kill_strays(shims=False)   # e.g. the containerd of a dead test
        binary = shutil.which(CONTAINERD)
        if not binary:
            raise TestbedError("containerd not found: apt-get install containerd runc")
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([binary, "--config", self.config_path],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True, close_fds=True)
        finally:
            log.close()
        if self.cri is None:
            self.cri = CRIClient(self.socket)
            self.cri.pod_uids = self._pod_uids
        else:
            self.cri.reconnect()   # the same object: Pods keep working

        def ready():
            if self.proc.poll() is not None:
                raise TestbedError("containerd exited with %s; log:\n%s" % (
                    self.proc.returncode, self.log_tail()))
            try:
                return self.cri.version(timeout=1.0)
            except CRIError:
                # A failed connection leaves a gRPC channel in reconnect
                # backoff (seconds): poll with a fresh channel instead.
                self.cri.reconnect()
                return None
        try:
            wait_for(ready, self.start_timeout, "containerd's CRI to answer on " + self.socket)
        except TestbedError as e:
            if self.proc.poll() is not None:
                raise
            raise TestbedError("%s; log:\n%s" % (e, self.log_tail())) from None
        self._ever_ready = True
        if not self._imported:
            self.import_image()

    def ctr(self, *args, timeout=60):
        """Run `ctr --address SOCK -n k8s.io ARGS...`; returns stdout."""
        binary = shutil.which(CTR)
        if not binary:
            raise TestbedError("ctr not found: apt-get install containerd")
        r = subprocess.run([binary, "--address", self.socket, "-n", "k8s.io"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=timeout)
        if r.returncode != 0:
            raise TestbedError("ctr %s failed (%d): %s" % (" ".join(args), r.returncode,
                                                           r.stderr.strip()))
        return r.stdout

    def import_image(self):
        build_busybox_image(self.image_path)
        self.ctr("images", "import", self.image_path)
        # the CRI learns of new images through events: wait until it sees it
        wait_for(lambda: self.cri.image_status(IMAGE_REF), 10.0,
                 "the CRI to list image " + IMAGE_REF)
        self._imported = True

    def processes(self):
        """Pids of this instance's containerd and shims (their command lines
        name this instance's directory)."""
        out = []
        me = os.getpid()
        for p in _all_pids():
            if p == me:
                continue
            cmd = _proc_cmdline(p)
            # containerd and its shims only: an agent given the socket is not a stray
            if not cmd or not os.path.basename(cmd[0]).startswith("containerd"):
                continue
            if any(a == self.socket or a == self.config_path for a in cmd) and pid_alive(p):
                out.append(p)
        return out

    def shim_pids(self):
        return [p for p in self.processes()
                if "containerd-shim" in os.path.basename((_proc_cmdline(p) or [""])[0])]

    def _kill_strays(self, shims, timeout=10.0):
        """Stop this instance's processes that are not self.proc (a containerd
        left by a dead test process; with shims=True the shims as well):
        SIGTERM, then SIGKILL."""
        mine = self.pid if self.running() else None

        def strays():
            return [p for p in self.processes() if p != mine and
                    (shims or "containerd-shim" not in (_proc_cmdline(p) or [""])[0])]
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            for p in strays():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, sig)
            try:
                wait_for(lambda: not strays(), wait, "stray processes of %s to exit" % self.dir)
                return
            except TestbedError:
                if sig == signal.SIGKILL:
                    raise

    def stop(self, timeout=15.0, kill_shims=False):
        """SIGTERM containerd, SIGKILL after `timeout`. Pods keep running (their
        shims stay) unless kill_shims, which SIGKILLs this instance's shims."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(5)
        if kill_shims:
            self._kill_strays(shims=True, timeout=2.0)

    def restart(self):
        """Stop containerd (pods keep running) and start it again on the same
        directories; returns when the CRI answers."""
        self.stop()
        self.start()

    def _unmount_all(self):
        """Detach every mount at or below self.dir, deepest first."""
        libc = ctypes.CDLL(None, use_errno=True)
        prefix = self.dir.rstrip("/") + "/"
        for _ in range(3):
            mps = sorted({mp for mp, _, _ in _mountinfo() if mp.startswith(prefix)},
                         key=len, reverse=True)
            if not mps:
                return []
            for mp in mps:
                libc.umount2(mp.encode(), 2)  # MNT_DETACH
        return sorted({mp for mp, _, _ in _mountinfo() if mp.startswith(prefix)})

    def cleanup(self):
        """Remove every pod, stop containerd and its shims, remove the pods'
        cgroups, unmount and delete the directory. Safe to call twice; errors
        are collected and raised together at the end."""
        if self._cleaned:
            return
        problems = []
        uids = set(self._pod_uids)
        if not self.running() and self._ever_ready:
            # e.g. a test killed it, or a stale instance: bring it back to
            # remove the pods properly
            try:
                self.start()
            except Exception as e:  # noqa: BLE001
                problems.append("could not restart containerd for cleanup: %s" % e)
        if self.running() and self.cri is not None:
            try:
                uids |= self.cri.remove_all()
            except Exception as e:  # noqa: BLE001
                problems.append("removing pods: %s" % e)
        try:
            self.stop(kill_shims=True)
        except Exception as e:  # noqa: BLE001
            problems.append("stopping containerd: %s" % e)
        if self.cri is not None:
            self.cri.close()
            self.cri = None
        for uid in sorted(uids):
            left = remove_cgroup_tree(pod_cgroup_parent(uid))
            if left:
                problems.append("cgroups not removable: %s" % ", ".join(left))
        left = self._unmount_all()
        if left:
            problems.append("mounts left: %s" % ", ".join(left))
        else:
            shutil.rmtree(self.dir, ignore_errors=True)
            if os.path.exists(self.dir):
                problems.append("directory left: %s" % self.dir)
        if self._lockf is not None:     # only now: the directory is gone
            self._lockf.close()
            self._lockf = None
        self._cleaned = True
        if problems:
            raise TestbedError("cleanup of %s: %s" % (self.dir, "; ".join(problems)))


# ----------------------------------------------------------------------- pods

class Pod:
    """A pod with one busybox container, started as kubelet would.

    Fields: name, namespace, uid, sandbox_id, sandbox_config, container_id,
    container_name, and for a running container container_pid, cgroup_path
    (relative to the cgroup2 mount, e.g. /kubepods/besteffort/pod<uid>/<id>),
    cgroup_id (its inode) and mntns (inode of /proc/PID/ns/mnt)."""

    def __init__(self, cri, name, namespace, uid):
        self.cri = cri
        self.name, self.namespace, self.uid = name, namespace, uid
        self.sandbox_id = self.sandbox_config = None
        self.container_id = self.container_name = None
        self.container_pid = None
        self.cgroup_path = None
        self.cgroup_id = None
        self.mntns = None
        self.exit_code = None

    def __repr__(self):
        return "Pod(%s/%s sandbox=%s container=%s pid=%s cgroup_id=%s)" % (
            self.namespace, self.name, (self.sandbox_id or "")[:12],
            (self.container_id or "")[:12], self.container_pid, self.cgroup_id)

    @classmethod
    def start(cls, cri, name, namespace, uid=None, container_name="main", command=None,
              labels=None, annotations=None, short_lived=False, timeout=30.0):
        """Run a pod and its container. command defaults to LONG_RUNNING_CMD
        (or SHORT_LIVED_CMD with short_lived=True).

        Long-running: returns once the container runs, with pid, cgroup and
        mount namespace filled in. Short-lived: the container's cgroup
        directory is watched from before StartContainer so cgroup_id is
        caught (None if it was never seen), then waits for it to exit and
        sets exit_code; container_pid and mntns stay None. If anything fails
        the pod is removed again."""
        pod = cls(cri, name, namespace, uid or str(uuid.uuid4()))
        try:
            pod.sandbox_id, pod.sandbox_config = cri.run_pod(name, namespace, pod.uid,
                                                             labels=labels, annotations=annotations)
            pod.container_name = container_name
            if command is None:
                command = SHORT_LIVED_CMD if short_lived else LONG_RUNNING_CMD
            pod.container_id = cri.create_container(pod.sandbox_id, pod.sandbox_config,
                                                     container_name, command=command,
                                                     labels=labels)
            if short_lived:
                pod._start_short(timeout)
            else:
                pod._start_long(timeout)
        except BaseException:
            with contextlib.suppress(Exception):
                pod.remove()
            raise
        return pod

    def _spec_cgroup_path(self):
        _, info = self.cri.container_status(self.container_id)
        try:
            return info["runtimeSpec"]["linux"]["cgroupsPath"]
        except (KeyError, TypeError):
            return pod_cgroup_parent(self.uid) + "/" + self.container_id

    def _start_long(self, timeout):
        cri = self.cri
        cri.start_container(self.container_id)
        st, info = cri.container_status(self.container_id)
        if st.state != cri.pb.CONTAINER_RUNNING:
            raise TestbedError("container %s is %s after StartContainer: %s %s" % (
                self.container_id[:12], cri.pb.ContainerState.Name(st.state), st.reason,
                st.message))
        self.container_pid = int(info.get("pid") or 0)
        if self.container_pid <= 0:
            raise TestbedError("ContainerStatus gave no pid: %r" % (info,))
        self.cgroup_path = info.get("runtimeSpec", {}).get("linux", {}).get("cgroupsPath")
        actual = proc_cgroup2_path(self.container_pid)
        if not self.cgroup_path:
            self.cgroup_path = actual
        elif actual is not None and actual != self.cgroup_path:
            raise TestbedError("pid %d is in cgroup %s, the spec says %s" % (
                self.container_pid, actual, self.cgroup_path))
        self.cgroup_id = cgroup_id(self.cgroup_path)
        self.mntns = os.stat("/proc/%d/ns/mnt" % self.container_pid).st_ino

    def _start_short(self, timeout):
        cri = self.cri
        self.cgroup_path = self._spec_cgroup_path()
        full = os.path.join(cgroup2_mount() or "/nonexistent", self.cgroup_path.lstrip("/"))
        seen = []
        done = threading.Event()

        def watch():
            # the directory exists from runc create until the task is deleted
            while not done.is_set():
                try:
                    seen.append(os.stat(full).st_ino)
                    return
                except OSError:
                    time.sleep(0.0005)
        t = threading.Thread(target=watch, daemon=True)
        t.start()
        try:
            cri.start_container(self.container_id)
        finally:
            # give the watcher a moment in case the stat raced with the start
            t.join(0.2)
            done.set()
            t.join(1.0)
        self.cgroup_id = seen[0] if seen else None
        st = cri.wait_container_state(self.container_id, cri.pb.CONTAINER_EXITED, timeout)
        self.exit_code = st.exit_code

    def exec(self, cmd, timeout=10):
        """exec_sync in this pod's container: (exit_code, stdout, stderr)."""
        return self.cri.exec_sync(self.container_id, cmd, timeout)

    def remove(self):
        """Stop and remove the sandbox (with its container) and the pod's
        cgroup directories."""
        if self.sandbox_id:
            self.cri.stop_pod(self.sandbox_id)
            self.cri.remove_pod(self.sandbox_id)
            self.sandbox_id = None
        left = remove_cgroup_tree(pod_cgroup_parent(self.uid))
        if left:
            raise TestbedError("cgroups not removable: %s" % ", ".join(left))
