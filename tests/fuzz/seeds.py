#!/usr/bin/python3
"""Write the fuzz targets' seed corpora (tests/fuzz/corpus/<name>/) from the
tests' real data: the kubelet PodList fixture and the mock's format, real
answers of a private containerd through the CRI (the testbed of the
integration tests), the cgroup path table of the unit tests and this
machine's own /proc files, the chart's rendered agent flags and --help's
examples, real spool files the agent wrote with its collector down.

    /usr/bin/python3 tests/fuzz/seeds.py [NAME...]     (root: containerd, BPF)

Run it again when a format changes; the corpora are kept in git so make
test needs none of this. A seed file is named by the hash of its content.
"""
import glob
import gzip
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
BUILD = os.path.join(REPO, "build")


def write(name, blobs):
    d = os.path.join(HERE, "corpus", name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    seen = set()
    for b in blobs:
        if isinstance(b, str):
            b = b.encode()
        h = hashlib.sha1(b).hexdigest()
        if h in seen:
            continue
        seen.add(h)
        with open(os.path.join(d, h), "wb") as f:
            f.write(b)
    print("%-12s %3d seeds, %d bytes" % (name, len(seen), sum(
        os.path.getsize(os.path.join(d, h)) for h in seen)))


def kubelet():
    from kubelet_mock import pod_item
    with open(os.path.join(REPO, "tests", "data", "kubelet_podlist.json"), "rb") as f:
        fixture = f.read()
    cid = "containerd://" + "0123456789abcdef" * 4
    items = [pod_item("web-0", "shop", str(uuid.UUID(int=1)), [("main", cid)],
                      {"app": "web", "tier": "frontend"}),
             pod_item("db-0", "shop", str(uuid.UUID(int=2)),
                      [("pg", "cri-o://" + "fedcba9876543210" * 4), ("side", "docker://" + "ab" * 32)])]
    items[1]["status"]["initContainerStatuses"] = items[1]["status"]["containerStatuses"][:1]
    items[1]["status"]["containerStatuses"][0]["lastState"] = {
        "terminated": {"exitCode": 1, "containerID": "containerd://" + "cd" * 32}}
    podlist = json.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items})
    return [fixture, podlist,
            json.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": []}),
            # what test_kubelet's malformed answers and the mock's refusals send
            b'{"kind":"PodList","apiVersion":"v1","items":[{"metadata":',
            b"<html>502 Bad Gateway</html>",
            b'{"kind":"Status","status":"Failure"}',
            b'{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized",'
            b'"code":401}']


def cgroup_path():
    """The path table of tests/unit/test_cgpath.c, and /proc files of this machine."""
    src = open(os.path.join(REPO, "tests", "unit", "test_cgpath.c")).read()
    macros = dict(re.findall(r'^#define (\w+) "([^"]*)"', src, re.M))

    def c_string(expr):
        out = ""
        for tok in re.findall(r'"(?:[^"\\]|\\.)*"|\w+', expr):
            out += tok[1:-1] if tok.startswith('"') else macros.get(tok, "")
        return out
    paths = [c_string(m) for m in re.findall(r'^\s*(?:\{|H\()\s*((?:"[^"]*"|\w+)(?:\s+(?:"[^"]*"|\w+))*)'
                                             r'\s*[,)]', src, re.M)]
    paths = [p for p in paths if p.startswith("/")]
    blobs = list(paths)
    blobs.append("containerd://" + macros["ID"])
    blobs.append("cri-o://" + macros["ID2"])
    # /proc/PID/cgroup of a v1 node and of this one; this machine's mountinfo
    blobs.append("".join("%d:%s:%s\n" % (12 - i, c, paths[i % len(paths)]) for i, c in enumerate(
        ["memory", "pids", "cpu,cpuacct", "name=systemd"])) + "0::" + paths[0] + "\n")
    for p in ("/proc/self/cgroup", "/proc/self/mountinfo"):
        with open(p, "rb") as f:
            blobs.append(f.read())
    return blobs


def frame(msg):
    return b"\0" + struct.pack(">I", len(msg)) + msg


def cri():
    """Real answers of containerd to the four calls the agent makes, framed as
    on the wire, and the trailers a failing call ends with."""
    import cri_testbed as tb
    blobs = [b"grpc-status: 0\r\n", b"grpc-status: 14\r\ngrpc-message: connection%20refused\r\n",
             b"content-type: application/grpc\r\ngrpc-status: 5\r\ngrpc-message: not found\r\n"]
    with tb.Containerd() as ctd:
        pod = tb.Pod.start(ctd.cri, "web", "team-a", labels={"app": "web"})
        ch = ctd.cri.channel
        pb = ctd.cri.pb

        def raw(method, req):
            call = ch.unary_unary("/runtime.v1.RuntimeService/" + method,
                                  request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=lambda b: b)
            return call(req, timeout=30)
        answers = [
            raw("Version", pb.VersionRequest(version="v1")),
            raw("ListPodSandbox", pb.ListPodSandboxRequest()),
            raw("ListPodSandbox", pb.ListPodSandboxRequest(
                filter=pb.PodSandboxFilter(id=pod.sandbox_id))),
            raw("ListContainers", pb.ListContainersRequest()),
            raw("ListContainers", pb.ListContainersRequest(
                filter=pb.ContainerFilter(id=pod.container_id))),
            raw("ContainerStatus", pb.ContainerStatusRequest(container_id=pod.container_id,
                                                             verbose=True)),
        ]
    blobs += [frame(a) for a in answers]
    return blobs


def flags():
    """The agent's flags as the chart renders them, and --help's examples."""
    from chart_render import agent_container, docs, render
    blobs = []
    for values in ([], ["--set", "collector.url=https://collector:8443",
                        "--set", "collector.tokenSecret.name=t", "--set", "metadata.kubelet.enabled=true",
                        "--set", "filters.namespaces={shop,db}",
                        "--set", "filters.labelSelector=app=web"]):
        _, c = agent_container([o for _, o in docs(render(*values).stdout)])
        blobs.append("\0".join(c["args"]))
    help_text = subprocess.run([os.path.join(BUILD, "podsnoop"), "--help"], capture_output=True,
                               text=True).stdout
    for line in help_text.split("Examples:")[1].splitlines():
        m = re.match(r"  podsnoop(.*?)(\s{2,}.*)?$", line)
        if m and m.group(1).strip():
            blobs.append("\0".join(m.group(1).replace("\\", "").split()))
    return blobs


def metrics():
    """Label sets (pod, container, disk) as the bio latency metric gets them."""
    sets = [("web-7d4b9c6f5d-x2k8p", "nginx", "vda"), ("db-0", "postgres", "nvme0n1"),
            ("", "", "sda"), ("web-7d4b9c6f5d-x2k8p", "nginx", "vdb"),
            ("caf\u00e9", 'quo"te', "back\\slash"), ("line\nbreak", "x", "loop0")]
    blobs = []
    for n in (1, 2, 4, len(sets)):
        blobs.append("\0".join(v for s in sets[:n] for v in s))
    return blobs


def spool():
    """Real spool files: the agent tracing exec with its collector unreachable."""
    from podsnoop_harness import Cgroup
    d = tempfile.mkdtemp(prefix="podsnoop-seeds-")
    try:
        with Cgroup() as cg:
            agent = subprocess.Popen([os.path.join(BUILD, "podsnoop"), "--tracers", "exec,open",
                                      "--cgroup", cg.path, "--collector", "http://127.0.0.1:9",
                                      "--spool-dir", d, "--batch-ms", "200", "--retry-min-ms", "50",
                                      "--retry-max-ms", "100", "-d", "4"],
                                     stderr=subprocess.DEVNULL)
            time.sleep(1.5)
            for i in range(20):
                cg.run(["/bin/true", "seed-%d" % i])
                time.sleep(0.1)
            agent.wait(timeout=30)
        blobs = []
        for p in sorted(glob.glob(os.path.join(d, "*.batch"))):
            with open(p, "rb") as f:
                blobs.append(f.read())
    finally:
        shutil.rmtree(d, ignore_errors=True)
    assert blobs, "the agent spooled nothing"
    # and one batch of nothing but a header, as gzip of an empty Batch
    blobs.append(gzip.compress(b""))
    return blobs


def collector_request():
    """Bodies as the agent POSTs them (tracing exec and open into a collector that
    keeps them, --save-bodies), gzipped (first byte 1) and not (0), and what
    test_collector_limits sends: a record of an unknown kind, and small bombs."""
    from podsnoop_harness import Cgroup
    from ship_harness import Collector
    d = tempfile.mkdtemp(prefix="podsnoop-seeds-")
    try:
        bodies = os.path.join(d, "bodies")
        os.makedirs(bodies)
        with Collector(d, "--save-bodies", bodies) as c, Cgroup() as cg:
            agent = subprocess.Popen([os.path.join(BUILD, "podsnoop"), "--tracers", "exec,open",
                                      "--cgroup", cg.path, "--collector", c.url,
                                      "--batch-ms", "200", "--batch-records", "20", "-d", "4"],
                                     stderr=subprocess.DEVNULL)
            time.sleep(1.5)
            for i in range(10):
                cg.run(["/bin/cat", "/etc/hostname", "/seed-%d" % i], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
                time.sleep(0.1)
            agent.wait(timeout=30)
        gz = []
        for p in sorted(glob.glob(os.path.join(bodies, "*.pb.gz")))[:6]:
            with open(p, "rb") as f:
                gz.append(f.read())
    finally:
        shutil.rmtree(d, ignore_errors=True)
    assert gz, "the collector kept no body"
    raw = [gzip.decompress(b) for b in gz]
    unknown = b"\x2a\x06\x92\x03\x03abc"  # Record { 50: "abc" }
    blobs = [b"\1" + b for b in gz] + [b"\0" + b for b in raw]
    blobs += [b"\0" + raw[0] + unknown, b"\0" + raw[0] + b"\x2a\x00",
              b"\1" + gzip.compress(raw[0][:40] + b"\x2a\x00" * 4096),
              b"\0" + raw[0][:40] + b"\x78\x00" * 64]
    return blobs


TARGETS = {"kubelet": kubelet, "cgroup_path": cgroup_path, "cri": cri, "flags": flags,
           "metrics": metrics, "spool": spool, "collector_request": collector_request}

if __name__ == "__main__":
    for name in sys.argv[1:] or TARGETS:
        write(name, TARGETS[name]())
