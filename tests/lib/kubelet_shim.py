"""Run a Kubernetes pod spec (e.g. the pod template of the chart's rendered
DaemonSet) on the private containerd the way kubelet would: the same CRI
calls with the spec's hostPID, security context (capabilities add/drop,
privileged, readOnlyRootFilesystem, allowPrivilegeEscalation, runAsUser,
seccompProfile), hostPath/emptyDir/secret volumes and their mounts, env
(values and the downward API), $(VAR) expansion in command/args, memory and
CPU limits, and a container log file in kubelet's CRI log format.

There is no kubelet here (no binary in any reachable registry); this is the
part of it that decides what a container gets, written from the Kubernetes
API's documented semantics, so a test can prove that the chart's pod shape
works on a real runtime. Probes are not run by it: tests call the probe
endpoints themselves.

    shim = KubeletShim(ctd, node_name="node-a")
    pod = shim.run(pod_template, name="podsnoop-x", namespace="monitoring",
                   secrets={"collector-token": {"token": "s3cret"}})
    pod.log_lines()           # the container's stdout/stderr lines
    pod.wait_running() / pod.exit_code() / pod.remove()
"""
import json
import os
import re
import stat
import uuid

from cri_testbed import CRIError, TestbedError, pod_cgroup_parent, wait_for


class ShimError(TestbedError):
    """The pod spec uses something this shim (or this machine) cannot run."""


_QTY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "m": 1e-3}


def quantity(q):
    """A Kubernetes resource quantity ("128Mi", "100m", "2") as a number."""
    m = _QTY.match(str(q))
    if not m or m.group(2) not in _UNITS:
        raise ShimError("bad quantity %r" % (q,))
    return float(m.group(1)) * _UNITS[m.group(2)]


def expand(s, env):
    """kubelet's $(VAR) expansion: $$ escapes, unknown references stay."""
    out, i = [], 0
    while i < len(s):
        if s.startswith("$$", i):
            out.append("$")
            i += 2
        elif s.startswith("$(", i) and ")" in s[i:]:
            j = s.index(")", i)
            name = s[i + 2:j]
            out.append(env[name] if name in env else s[i:j + 1])
            i = j + 1
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


class ShimPod:
    def __init__(self, shim, name, namespace, uid, sandbox_id, container_id, log_path):
        self.shim, self.cri = shim, shim.cri
        self.name, self.namespace, self.uid = name, namespace, uid
        self.sandbox_id, self.container_id, self.log_path = sandbox_id, container_id, log_path

    def status(self):
        return self.cri.container_status(self.container_id)

    def state(self):
        st, _ = self.status()
        return self.cri.pb.ContainerState.Name(st.state)

    def pid(self):
        _, info = self.status()
        return int(info.get("pid") or 0)

    def wait_exited(self, timeout=30):
        st = self.cri.wait_container_state(self.container_id, self.cri.pb.CONTAINER_EXITED,
                                           timeout)
        return st.exit_code

    def log_lines(self):
        """(stream, text) per line of the CRI log ("<time> <stream> <F|P> <text>"),
        partial lines joined."""
        try:
            with open(self.log_path, errors="replace") as f:
                text = f.read()
            # a line containerd is still writing has no newline yet: not a line
            raw = text.splitlines() if text.endswith("\n") else text.splitlines()[:-1]
        except FileNotFoundError:
            return []
        out, partial = [], {}
        for line in raw:
            parts = line.split(" ", 3)
            if len(parts) < 3:
                continue
            stream, tag = parts[1], parts[2]
            text = parts[3] if len(parts) > 3 else ""
            partial[stream] = partial.get(stream, "") + text
            if tag == "F":
                out.append((stream, partial.pop(stream)))
        return out

    def stdout(self):
        return [t for s, t in self.log_lines() if s == "stdout"]

    def stderr(self):
        return [t for s, t in self.log_lines() if s == "stderr"]

    def remove(self):
        if self.sandbox_id:
            self.cri.stop_pod(self.sandbox_id)
            self.cri.remove_pod(self.sandbox_id)
            self.sandbox_id = None


class KubeletShim:
    def __init__(self, ctd, node_name="podsnoop-test-node", host_ip="127.0.0.1",
                 seccomp_root=None):
        self.ctd, self.cri = ctd, ctd.cri
        self.node_name, self.host_ip = node_name, host_ip
        self.root = os.path.join(ctd.dir, "kubelet")
        # kubelet's <root-dir>/seccomp: where Localhost profiles are looked up
        self.seccomp_root = seccomp_root or os.path.join(self.root, "seccomp")
        os.makedirs(self.seccomp_root, exist_ok=True)

    # ---- pieces of the spec

    def _seccomp(self, sc):
        p = self.cri.pb
        prof = (sc or {}).get("seccompProfile")
        if not prof:
            return None
        t = prof.get("type")
        if t == "RuntimeDefault":
            return p.SecurityProfile(profile_type=p.SecurityProfile.RuntimeDefault)
        if t == "Unconfined":
            return p.SecurityProfile(profile_type=p.SecurityProfile.Unconfined)
        if t == "Localhost":
            path = os.path.join(self.seccomp_root, prof["localhostProfile"])
            if not os.path.isfile(path):
                raise ShimError("seccomp profile %s missing on the node" % path)
            return p.SecurityProfile(profile_type=p.SecurityProfile.Localhost,
                                     localhost_ref=path)
        raise ShimError("seccompProfile type %r" % t)

    def _env(self, c, pod_meta):
        env = {}
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = expand(str(e["value"]), env)
                continue
            ref = (e.get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath")
            vals = {"spec.nodeName": self.node_name, "status.hostIP": self.host_ip,
                    "status.podIP": self.host_ip, "metadata.name": pod_meta["name"],
                    "metadata.namespace": pod_meta["namespace"], "metadata.uid": pod_meta["uid"]}
            if ref not in vals:
                raise ShimError("env %s: unsupported source %r" % (e["name"], e.get("valueFrom")))
            env[e["name"]] = vals[ref]
        return env

    def _volumes(self, spec, pod_dir, secrets):
        vols = {}
        for v in spec.get("volumes", []):
            name = v["name"]
            if "hostPath" in v:
                hp = v["hostPath"]
                path, typ = hp["path"], hp.get("type", "")
                if typ == "DirectoryOrCreate":
                    os.makedirs(path, mode=0o755, exist_ok=True)
                elif typ == "Directory" and not os.path.isdir(path):
                    raise ShimError("hostPath %s: not a directory" % path)
                elif typ == "Socket" and not (os.path.exists(path) and
                                              stat.S_ISSOCK(os.stat(path).st_mode)):
                    raise ShimError("hostPath %s: not a socket" % path)
                elif typ == "File" and not os.path.isfile(path):
                    raise ShimError("hostPath %s: not a file" % path)
                elif typ not in ("", "DirectoryOrCreate", "Directory", "Socket", "File"):
                    raise ShimError("hostPath type %r" % typ)
                vols[name] = path
            elif "emptyDir" in v:
                d = os.path.join(pod_dir, "volumes", "empty-dir", name)
                os.makedirs(d, exist_ok=True)
                vols[name] = d
            elif "secret" in v:
                sname = v["secret"]["secretName"]
                if sname not in secrets:
                    raise ShimError("secret %s not given to the shim" % sname)
                d = os.path.join(pod_dir, "volumes", "secret", name)
                os.makedirs(d, exist_ok=True)
                items = v["secret"].get("items") or [{"key": k, "path": k} for k in secrets[sname]]
                for it in items:
                    with open(os.path.join(d, it["path"]), "w") as f:
                        f.write(secrets[sname][it["key"]])
                    os.chmod(os.path.join(d, it["path"]), v["secret"].get("defaultMode", 0o644))
                vols[name] = d
            else:
                raise ShimError("volume %s: unsupported kind %s" % (name, sorted(v)))
        return vols

    def _mounts(self, c, vols):
        p = self.cri.pb
        prop = {None: p.PROPAGATION_PRIVATE, "None": p.PROPAGATION_PRIVATE,
                "HostToContainer": p.PROPAGATION_HOST_TO_CONTAINER,
                "Bidirectional": p.PROPAGATION_BIDIRECTIONAL}
        out = []
        for m in c.get("volumeMounts", []):
            if m["name"] not in vols:
                raise ShimError("volumeMount %s has no volume" % m["name"])
            host = vols[m["name"]]
            if m.get("subPath"):
                host = os.path.join(host, m["subPath"])
            out.append(p.Mount(host_path=host, container_path=m["mountPath"],
                               readonly=bool(m.get("readOnly")),
                               propagation=prop[m.get("mountPropagation")]))
        return out

    def _resources(self, c):
        p = self.cri.pb
        lim = (c.get("resources") or {}).get("limits") or {}
        req = (c.get("resources") or {}).get("requests") or {}
        r = p.LinuxContainerResources()
        if "memory" in lim:
            r.memory_limit_in_bytes = int(quantity(lim["memory"]))
        cpu_req = quantity(req.get("cpu", lim.get("cpu", "2m")))
        r.cpu_shares = max(2, int(cpu_req * 1024))     # kubelet: milliCPU * 1024 / 1000
        if "cpu" in lim:
            r.cpu_period = 100000
            r.cpu_quota = int(quantity(lim["cpu"]) * 100000)
        return r

    def _security(self, spec, c):
        p = self.cri.pb
        psc, sc = spec.get("securityContext") or {}, c.get("securityContext") or {}
        caps = sc.get("capabilities") or {}
        ns = p.NamespaceOption(network=p.NODE, pid=p.NODE if spec.get("hostPID") else p.CONTAINER,
                               ipc=p.POD)
        out = p.LinuxContainerSecurityContext(
            capabilities=p.Capability(add_capabilities=list(caps.get("add", [])),
                                      drop_capabilities=list(caps.get("drop", []))),
            privileged=bool(sc.get("privileged")),
            namespace_options=ns,
            readonly_rootfs=bool(sc.get("readOnlyRootFilesystem")),
            no_new_privs=sc.get("allowPrivilegeEscalation") is False,
        )
        uid = sc.get("runAsUser", psc.get("runAsUser"))
        if uid is not None:
            out.run_as_user.value = int(uid)
        prof = self._seccomp(sc) or self._seccomp(psc)
        if prof is not None:
            out.seccomp.CopyFrom(prof)
        return out, ns

    # ---- the pod

    def run(self, template, name=None, namespace="default", secrets=None, container=None):
        """Run one container of a pod template (metadata + spec) as kubelet
        would; returns a ShimPod once StartContainer returned."""
        p = self.cri.pb
        spec = template["spec"]
        if not spec.get("hostNetwork"):
            raise ShimError("no CNI on this machine: render the pod with hostNetwork: true")
        uid = str(uuid.uuid4())
        name = name or "%s-%s" % (template.get("metadata", {}).get("labels", {}).get(
            "app.kubernetes.io/name", "pod"), uid[:5])
        meta = {"name": name, "namespace": namespace, "uid": uid}
        cs = spec["containers"]
        c = cs[0] if container is None else [x for x in cs if x["name"] == container][0]
        labels = dict(template.get("metadata", {}).get("labels", {}))
        annotations = dict(template.get("metadata", {}).get("annotations", {}))
        log_dir = os.path.join(self.root, "pods", "%s_%s_%s" % (namespace, name, uid))
        pod_dir = os.path.join(self.root, "pods-data", uid)
        os.makedirs(log_dir, exist_ok=True)

        sb = self.cri.pod_sandbox_config(name, namespace, uid, labels, annotations)
        sb.log_directory = log_dir
        sb.linux.security_context.namespace_options.pid = (
            p.NODE if spec.get("hostPID") else p.CONTAINER)
        psc = self._seccomp(spec.get("securityContext"))
        if psc is not None:
            sb.linux.security_context.seccomp.CopyFrom(psc)
        self.cri.pod_uids.add(uid)
        r = self.cri.call("RunPodSandbox", p.RunPodSandboxRequest(config=sb))
        sandbox_id = r.pod_sandbox_id
        self.cri.sandbox_configs[sandbox_id] = sb
        try:
            env = self._env(c, meta)
            vols = self._volumes(spec, pod_dir, secrets or {})
            sec, _ = self._security(spec, c)
            lab = {self.cri.CONTAINER_NAME: c["name"], self.cri.POD_NAME: name,
                   self.cri.POD_NAMESPACE: namespace, self.cri.POD_UID: uid}
            cfg = p.ContainerConfig(
                metadata=p.ContainerMetadata(name=c["name"], attempt=0),
                image=p.ImageSpec(image=c["image"]),
                command=[expand(a, env) for a in c.get("command", [])],
                args=[expand(a, env) for a in c.get("args", [])],
                envs=[p.KeyValue(key=k, value=v) for k, v in env.items()],
                mounts=self._mounts(c, vols),
                labels=lab,
                annotations=annotations,
                log_path="%s/0.log" % c["name"],
                linux=p.LinuxContainerConfig(resources=self._resources(c), security_context=sec),
            )
            if self.cri.image_status(c["image"]) is None:
                raise ShimError("image %s is not in the runtime (imagePullPolicy %s; "
                                "nothing is pulled here)" % (c["image"],
                                                             c.get("imagePullPolicy")))
            cid = self.cri.call("CreateContainer", p.CreateContainerRequest(
                pod_sandbox_id=sandbox_id, config=cfg, sandbox_config=sb)).container_id
            pod = ShimPod(self, name, namespace, uid, sandbox_id, cid,
                          os.path.join(log_dir, c["name"], "0.log"))
            self.cri.start_container(cid)
            return pod
        except BaseException:
            try:
                self.cri.stop_pod(sandbox_id)
                self.cri.remove_pod(sandbox_id)
            except CRIError:
                pass
            raise


def wait_log(pod, pred, timeout=30, what="log line"):
    """Wait until some (stream, text) log line satisfies pred; returns it."""
    def find():
        for ln in pod.log_lines():
            if pred(ln):
                return ln
        return None
    try:
        return wait_for(find, timeout, what)
    except TestbedError:
        raise AssertionError("no %s within %ss; container log:\n%s" % (
            what, timeout, "\n".join("%s %s" % ln for ln in pod.log_lines()[-40:])))


def parse_records(pod):
    """The agent container's stdout lines parsed as JSON."""
    return [json.loads(t) for t in pod.stdout() if t.startswith("{")]


__all__ = ["KubeletShim", "ShimPod", "ShimError", "expand", "quantity", "wait_log",
           "parse_records", "pod_cgroup_parent"]
