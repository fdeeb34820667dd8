"""Per-pod families of /metrics for every tracer, from the real agent: two
pods (cgroups of their own in kubelet's cgroupfs layout, named by a local
kubelet stand-in, tests/lib/kubelet_mock.py), known workloads in each, and
the agent's own records as the reference. Prometheus scrapes one family;
the cardinality bound folds pods beyond it into _other."""
import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from kubelet_mock import KubeletMock, pod_item
from podsnoop_harness import Agent, Cgroup, unique
from prometheus_server import Prometheus
from test_endpoints import get, parse_text

PY = sys.executable
NS = "team-m"

# in the pod: `ok` execs of /bin/true, `bad` execs that fail (ENOENT), then
# `opens` opens of marked files that exist and `missing` that do not, and
# `writes` write+fsync pairs on the root filesystem
WORKLOAD = r"""
import os, sys
ok, bad, opens, missing, writes, d, mark = sys.argv[1:]
for _ in range(int(ok)):
    pid = os.fork()
    if pid == 0:
        os.execv("/bin/true", ["true"])
    os.waitpid(pid, 0)
for i in range(int(bad)):
    try:
        os.execv("/nonexistent/%s-%d" % (mark, i), ["x"])
    except OSError:
        pass
for i in range(int(opens)):
    p = os.path.join(d, "%s-ok-%d" % (mark, i))
    open(p, "w").close()
    os.close(os.open(p, os.O_RDONLY))
for i in range(int(missing)):
    try:
        os.open(os.path.join(d, "%s-missing-%d" % (mark, i)), os.O_RDONLY)
    except OSError:
        pass
fd = os.open(os.path.join(d, "%s-fs" % mark), os.O_WRONLY | os.O_CREAT, 0o644)
for _ in range(int(writes)):
    os.write(fd, b"x" * 4096)
    os.fsync(fd)
os.close(fd)
# page cache misses: a file dropped from the cache, then read
p = os.path.join(d, "%s-cold" % mark)
with open(p, "wb") as f:
    f.write(b"y" * 65536)
    f.flush()
    os.fsync(f.fileno())
    os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
with open(p, "rb") as f:
    f.read()
"""


class Pods:
    """Pod cgroups /<parent>/kubepods/besteffort/pod<uid>/<container id> and
    the kubelet's pod list naming them."""

    def __init__(self, names):
        self.parent = Cgroup()
        kube = self.parent.child("kubepods").child("besteffort")
        self.pods = {}
        items = []
        for name in names:
            uid, cid = str(uuid.uuid4()), uuid.uuid4().hex + uuid.uuid4().hex
            cg = kube.child("pod" + uid).child(cid)
            self.pods[name] = cg
            items.append(pod_item(name, NS, uid, [("main", "containerd://" + cid)]))
        self.body = json.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": {},
                                "items": items}).encode()

    def remove(self):
        self.parent.remove()


@pytest.fixture
def kubelet(tmp_path):
    with KubeletMock(tmp_path) as k:
        yield k


def agent(kubelet, pods, *args):
    kubelet.set_body(pods.body)
    return Agent("--cgroup", pods.parent.path, "--cri-socket", "none", "--kubelet", kubelet.url,
                 "--kubelet-token", kubelet.token_file, "--kubelet-ca", kubelet.ca_file,
                 "--attrib-wait-ms", "5000", "--listen", "127.0.0.1:0", *args)


def scrape(a):
    status, _, body = get(a.listen_port(), "/metrics")
    assert status == 200
    return parse_text(body)


def series(m, name, **labels):
    """{other labels: value} of the samples of name matching labels."""
    out = {}
    for (n, ls), v in m.items():
        d = dict(ls)
        if n == name and all(d.get(k) == v2 for k, v2 in labels.items()):
            out[frozenset((k, x) for k, x in d.items() if k not in labels)] = v
    return out


def one(m, name, **labels):
    got = series(m, name, **labels)
    assert len(got) == 1, (name, labels, got)
    return next(iter(got.values()))


def of_pod(recs, name, type_):
    return [r for r in recs if r.get("type") == type_ and (r.get("k8s") or {}).get("pod") == name]


def log2_bucket_le(ns):
    """The le of the bucket a latency falls in: log2 slots of whole us, as bio's."""
    us = ns // 1000
    s = 0 if us < 2 else us.bit_length() - 1
    return None if s >= 26 else (2 ** (s + 1) - 1) / 1e6


def test_every_tracer_counts_per_pod(kubelet, tmp_path):
    """Two pods, known execs (ok and failed), opens (ok and failed) and fs
    operations: each family's series for a pod equals what the agent's own
    records of that pod say, and the known workload is in it exactly."""
    pods = Pods(["alpha", "beta"])
    d = str(tmp_path)
    plan = {"alpha": (3, 2, 4, 5, 6), "beta": (1, 4, 2, 1, 3)}
    ticker = pods.parent.child("ticker")
    tick = ticker.popen([PY, "-c", "import sys, time\nwhile True:\n"
                         " open(sys.argv[1], 'w').write('x' * 4096)\n time.sleep(0.05)",
                         os.path.join(d, "tick")])
    try:
        with agent(kubelet, pods, "--tracers", "exec,open,fs,cache", "--fs-min-us", "0",
                   "--interval", "1", "--rate-limit", "0") as a:
            for name, (ok, bad, opens, missing, writes) in plan.items():
                pods.pods[name].run([PY, "-c", WORKLOAD, str(ok), str(bad), str(opens),
                                     str(missing), str(writes), d, name], check=True)
            # every record of the workload is out once the last fsync is
            for name, (*_, writes) in plan.items():
                a.wait_for(lambda r, n=name, w=writes: len([
                    x for x in of_pod(a.records(), n, "fs")
                    if x["op"] == "fsync" and x["path"].endswith(n + "-fs")]) == w,
                    timeout=20, what="%s's fsyncs" % name)
            # cache rows are the interval's: two drains after the workloads
            # (rows of a cgroup that reads all along) and theirs are all out
            n = len(a.records())
            a.wait_for(lambda r: len({x["ts_ns"] for x in a.records()[n:] if x.get("type") ==
                                      "cache" and x["cgroup_id"] == ticker.id}) >= 2,
                       timeout=20, what="two cache rows of the ticker after the workloads")
            m = scrape(a)
            recs = a.records()
            assert a.stop() == 0
        for name, (ok, bad, opens, missing, writes) in plan.items():
            pod = dict(namespace=NS, pod=name, container="main")
            ex = of_pod(recs, name, "exec")
            # the python itself, its `ok` children and its failed execs
            assert len([r for r in ex if r["retval"] == 0]) == 1 + ok
            assert len([r for r in ex if r["retval"] != 0]) == bad
            assert one(m, "podsnoop_execs_total", result="ok", **pod) == 1 + ok
            assert one(m, "podsnoop_execs_total", result="failed", **pod) == bad

            op = of_pod(recs, name, "open")
            assert len([r for r in op if "%s-missing-" % name in r["path"]]) == missing
            assert one(m, "podsnoop_opens_total", result="ok", **pod) == \
                len([r for r in op if r["ret"] >= 0])
            assert one(m, "podsnoop_opens_total", result="failed", **pod) == \
                len([r for r in op if r["ret"] < 0]) >= missing
            buckets = series(m, "podsnoop_open_latency_seconds_bucket", **pod)
            assert buckets[frozenset([("le", "+Inf")])] == len(op)
            want = {}
            for r in op:
                le = log2_bucket_le(r["latency_ns"])
                want[le] = want.get(le, 0) + 1
            for (le,), n in ((tuple(dict(k).values()), v) for k, v in buckets.items()):
                cum = sum(c for b, c in want.items() if b is None and le == "+Inf" or
                          b is not None and (le == "+Inf" or b <= float(le) + 1e-12))
                assert n == cum, (le, n, cum)
            assert abs(one(m, "podsnoop_open_latency_seconds_sum", **pod) -
                       sum(r["latency_ns"] for r in op) / 1e9) < 1e-6

            fs = of_pod(recs, name, "fs")
            fsyncs = [r for r in fs if r["op"] == "fsync" and r["path"].endswith(name + "-fs")]
            assert len(fsyncs) == writes
            for fop in ("read", "write", "open", "fsync"):
                n = len([r for r in fs if r["op"] == fop and r["fs"] == "ext4"])
                got = series(m, "podsnoop_fs_latency_seconds_count", op=fop, fs="ext4", **pod)
                assert (sum(got.values()) if got else 0) == n, (name, fop)
            assert one(m, "podsnoop_fs_latency_seconds_count", op="fsync", fs="ext4",
                       **pod) >= writes

            rows = of_pod(recs, name, "cache")
            misses = sum(r["misses"] for r in rows)
            assert misses > 0, name
            assert (sum(series(m, "podsnoop_pagecache_misses_total", **pod).values())
                    if misses else 0) == misses
            hits = sum(r.get("hits") or 0 for r in rows)
            assert hits > 0, name
            assert (sum(series(m, "podsnoop_pagecache_hits_total", **pod).values())
                    if hits else 0) == hits
        # neither pod's figures are in the other's
        assert one(m, "podsnoop_execs_total", pod="beta", result="failed") == 4
        assert one(m, "podsnoop_execs_total", pod="alpha", result="failed") == 2
        assert m[("podsnoop_metrics_series_folded",
                  frozenset([("family", "podsnoop_execs_total")]))] == 0
    finally:
        tick.kill()
        tick.wait()
        pods.remove()


def run_execs(cg, n):
    """The python, then n execs of /bin/true from it."""
    cg.run([PY, "-c", "import os, sys\nfor _ in range(int(sys.argv[1])):\n"
            " pid = os.fork()\n if pid == 0:\n  os.execv('/bin/true', ['true'])\n"
            " os.waitpid(pid, 0)", str(n)], check=True)


def wait_execs(a, name, n):
    a.wait_for(lambda r: len(of_pod(a.records(), name, "exec")) >= n, timeout=20,
               what="%d execs of %s" % (n, name))


def test_pods_beyond_the_bound_fold_into_other_scraped_by_prometheus(kubelet):
    """--metrics-series 2: the first two label sets keep their series, the
    pods after them fold into one _other series that has all their execs,
    and the folded gauge says how many label sets went there; Prometheus
    scrapes it so."""
    names = ["alpha", "beta", "gamma", "delta"]
    pods = Pods(names)
    execs = {"alpha": 2, "beta": 3, "gamma": 4, "delta": 5}
    try:
        with agent(kubelet, pods, "--tracers", "exec", "--metrics-series", "2") as a:
            with Prometheus(["127.0.0.1:%d" % a.listen_port()], job="podsnoop") as prom:
                for name in names:  # one after the other: the order of first sight
                    run_execs(pods.pods[name], execs[name])
                    wait_execs(a, name, 1 + execs[name])
                m = scrape(a)
                got = prom.wait_for_query('podsnoop_execs_total{pod="_other"}',
                                          lambda r: r and r[0][1] == (1 + 4) + (1 + 5))
                assert got[0][0]["namespace"] == "_other" and got[0][0]["result"] == "_other"
                assert got[0][0]["job"] == "podsnoop"
                assert prom.query('podsnoop_execs_total{pod="beta",result="ok"}')[0][1] == 4
                assert prom.query('podsnoop_execs_total{pod=~"gamma|delta"}') == []
                assert prom.query('podsnoop_metrics_series_folded'
                                  '{family="podsnoop_execs_total"}')[0][1] == 2
            assert a.stop() == 0
        assert one(m, "podsnoop_execs_total", pod="alpha", result="ok") == 3
        assert one(m, "podsnoop_execs_total", pod="beta", result="ok") == 4
        assert one(m, "podsnoop_execs_total", pod="_other") == 11
        assert not series(m, "podsnoop_execs_total", pod="gamma")
        assert not series(m, "podsnoop_execs_total", pod="delta")
        assert m[("podsnoop_metrics_series_folded",
                  frozenset([("family", "podsnoop_execs_total")]))] == 2
    finally:
        pods.remove()


def test_rate_limited_losses_per_pod(kubelet):
    """--rate-limit 5,5: a pod making 60 execs at once loses most of them;
    podsnoop_pod_events_lost_total has them under its pod, equal to its
    rate_limited loss records, and the quiet pod has none."""
    pods = Pods(["loud", "quiet"])
    try:
        with agent(kubelet, pods, "--tracers", "exec", "--rate-limit", "5,5") as a:
            run_execs(pods.pods["loud"], 60)
            run_execs(pods.pods["quiet"], 1)

            def losses():
                return [r for r in of_pod(a.records(), "loud", "loss")
                        if r["stage"] == "rate_limited" and r["tracer"] == "exec"]

            # every exec is either a record or counted lost
            a.wait_for(lambda r: len(of_pod(a.records(), "loud", "exec")) +
                       sum(x["count"] for x in losses()) == 61, timeout=20,
                       what="loud's execs all delivered or counted")
            wait_execs(a, "quiet", 2)
            m = scrape(a)
            assert a.stop() == 0
        lost = sum(x["count"] for x in losses())
        assert lost > 0
        assert one(m, "podsnoop_pod_events_lost_total", pod="loud", tracer="exec",
                   stage="rate_limited") == lost
        assert not series(m, "podsnoop_pod_events_lost_total", pod="quiet")
        assert one(m, "podsnoop_execs_total", pod="quiet", result="ok") == 2
    finally:
        pods.remove()
