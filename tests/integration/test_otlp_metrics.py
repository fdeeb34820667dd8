"""OTLP/HTTP metrics export, end to end: the real agent tracing pods (cgroups in
kubelet's layout named by a local kubelet stand-in), a receiver decoding every
/v1/metrics request with the OpenTelemetry project's own generated code (npm), the
agent's own NDJSON records beside as the reference, and /metrics for the bounds."""
import os
import re
import socket
import sys

import pytest
from otlp_harness import Receiver, compile_official, points
from podsnoop_harness import Agent, run_agent_once
from test_endpoints import get, parse_text
from test_pod_metrics import NS, WORKLOAD, Pods, kubelet  # noqa: F401 (fixture)

PY = sys.executable
FAST = ["--retry-min-ms", "50", "--retry-max-ms", "500", "--otlp-timeout-ms", "2000"]
CUMULATIVE = 2  # AggregationTemporality

# O_DIRECT writes in the pod: block I/O its own tasks submit
DIRECT_IO = r"""
import mmap, os, sys
buf = mmap.mmap(-1, 65536)
buf.write(b"\xa5" * 65536)
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
for i in range(int(sys.argv[2])):
    os.pwritev(fd, [buf], i * 65536)
os.fsync(fd)
os.close(fd)
"""


def env_with(**kw):
    return dict({k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}, **kw)


def pod_agent(kubelet, pods, cgroups, url, *extra, env=None):
    kubelet.set_body(pods.body)
    sel = []
    for cg in cgroups:
        sel += ["--cgroup", cg.path]
    return Agent(*sel, "--cri-socket", "none", "--kubelet", kubelet.url,
                 "--kubelet-token", kubelet.token_file, "--kubelet-ca", kubelet.ca_file,
                 "--attrib-wait-ms", "5000", "--otlp-endpoint", url, *FAST, *extra,
                 env=env if env is not None else env_with())


def of_pod(recs, name, type_):
    return [r for r in recs if r.get("type") == type_ and (r.get("k8s") or {}).get("pod") == name]


def pod_attrs(name):
    return {"k8s.namespace.name": NS, "k8s.pod.name": name, "k8s.container.name": "main"}


def value(ms, metric, **want):
    """The point of metric whose attributes are exactly want (None if absent)."""
    if metric not in ms:
        return None
    return points(ms[metric]).get(frozenset(want.items()))


def slot_of(lo):
    return 0 if lo < 2 else lo.bit_length() - 1


def test_per_pod_metrics_equal_the_records(kubelet, tmp_path):
    """Two pods with known execs, opens and block I/O, and a third outside the
    selection: the last export's per-pod series equal the agent's own records of the
    same run (histograms' counts and sums equal the bio_hist records, bucket by
    bucket), bounds equal /metrics' le values, the resource names the agent, every
    series is cumulative (never decreasing, its start time constant), and the
    filtered-out pod has no series."""
    pods = Pods(["alpha", "beta", "gamma"])
    d = str(tmp_path)
    plan = {"alpha": (3, 2, 4, 5, 6, 8), "beta": (1, 4, 2, 1, 3, 4)}
    try:
        with Receiver(d) as rx:
            with pod_agent(kubelet, pods, [pods.pods["alpha"], pods.pods["beta"]], rx.url,
                           "--tracers", "exec,open,bio,fs", "--interval", "1",
                           "--fs-min-us", "0", "--rate-limit", "0", "--output", "ndjson",
                           "--listen", "127.0.0.1:0", "--node-name", "node-m") as a:
                for name, (ok, bad, opens, missing, writes, blocks) in plan.items():
                    pods.pods[name].run([PY, "-c", WORKLOAD, str(ok), str(bad), str(opens),
                                         str(missing), str(writes), d, name], check=True)
                    pods.pods[name].run([PY, "-c", DIRECT_IO, os.path.join(d, name + "-dio"),
                                         str(blocks)], check=True)
                pods.pods["gamma"].run([PY, "-c", WORKLOAD, "3", "3", "3", "3", "1", d,
                                        "gamma"], check=True)
                pods.pods["gamma"].run([PY, "-c", DIRECT_IO, os.path.join(d, "gamma-dio"),
                                        "4"], check=True)
                # an export after the workloads' bio histograms went out
                a.wait_for(lambda r: len(of_pod(a.records(), "beta", "bio_hist")) > 0,
                           timeout=20, what="beta's bio histograms")
                n = len(rx.exports())
                rx.wait_for(lambda rx: len(rx.exports()) >= n + 2, what="two more exports")
                prom = parse_text(get(a.listen_port(), "/metrics")[2])
                assert a.stop() == 0
            recs = a.records()
            exports = rx.exports()
        assert any("exporting OTLP metrics to http://127.0.0.1:%d/v1/metrics every 1 s" %
                   rx.port in l for l in a.stderr), "".join(a.stderr)
        assert len(exports) >= 3
        res, last = exports[-1]
        assert res["service.name"] == "podsnoop" and res["k8s.node.name"] == "node-m"
        assert res["host.name"] == socket.gethostname()
        assert re.fullmatch(r"[0-9a-f]{32}", res["service.instance.id"])
        assert re.fullmatch(r"\d+\.\d+\.\d+.*", res["service.version"])
        assert all(r == res for r, _ in exports)

        for name, (ok, bad, opens, missing, writes, blocks) in plan.items():
            pod = pod_attrs(name)
            ex = of_pod(recs, name, "exec")
            # the two pythons (workload, direct I/O) and the workload's `ok` children
            assert len([r for r in ex if r["retval"] == 0]) == 2 + ok
            assert len([r for r in ex if r["retval"] != 0]) == bad
            assert int(value(last, "podsnoop.execs", **pod, **{"podsnoop.result": "ok"})
                       ["asInt"]) == 2 + ok
            assert int(value(last, "podsnoop.execs", **pod, **{"podsnoop.result": "failed"})
                       ["asInt"]) == bad
            op = of_pod(recs, name, "open")
            assert len([r for r in op if "%s-missing-" % name in r["path"]]) == missing
            for result, n in (("ok", len([r for r in op if r["ret"] >= 0])),
                              ("failed", len([r for r in op if r["ret"] < 0]))):
                assert int(value(last, "podsnoop.opens", **pod, **{"podsnoop.result": result})
                           ["asInt"]) == n
            lat = value(last, "podsnoop.open.latency", **pod)
            assert int(lat["count"]) == len(op)
            assert round(lat["sum"] * 1e9) == sum(r["latency_ns"] for r in op)

            # block I/O: every (disk, op) of the pod's bio_hist records, bucket by bucket
            hists = of_pod(recs, name, "bio_hist")
            assert sum(h["count"] for h in hists if h["op"] == "W") >= blocks
            want = {}
            for h in hists:
                w = want.setdefault((h["disk"], h["op"]), {"count": 0, "sum": 0, "slots": {}})
                w["count"] += h["count"]
                w["sum"] += h["sum_ns"]
                for b in h["buckets"]:
                    s = slot_of(b["lo"])
                    w["slots"][s] = w["slots"].get(s, 0) + b["count"]
            got = {(dict(k)["podsnoop.disk"], dict(k)["podsnoop.op"]): p
                   for k, p in points(last["podsnoop.bio.latency"]).items()
                   if dict(k).get("k8s.pod.name") == name}
            assert set(got) == set(want)
            for key, w in want.items():
                p = got[key]
                assert dict(pod.items()) == {k: v for k, v in
                                             ((kv["key"], kv["value"]["stringValue"])
                                              for kv in p["attributes"]) if k.startswith("k8s.")}
                assert int(p["count"]) == w["count"], key
                assert round(p["sum"] * 1e9) == w["sum"], key
                counts = [int(c) for c in p["bucketCounts"]]
                assert {i: c for i, c in enumerate(counts) if c} == w["slots"], key
                assert len(counts) == len(p["explicitBounds"]) + 1

        # the bounds are /metrics' le values, exactly
        les = sorted({float(dict(k)["le"]) for (n, k) in prom
                      if n == "podsnoop_bio_latency_seconds_bucket" and dict(k)["le"] != "+Inf"})
        for p in points(last["podsnoop.bio.latency"]).values():
            assert p["explicitBounds"] == les
        for p in points(last["podsnoop.open.latency"]).values():
            assert p["explicitBounds"] == les

        # the filtered-out pod: in no series of any export
        for _, ms in exports:
            for m in ms.values():
                for k in points(m):
                    assert dict(k).get("k8s.pod.name") != "gamma", m["name"]
        assert not of_pod(recs, "gamma", "exec")

        # cumulative: temporality, monotonic sums, values never decrease, starts constant
        seen = {}
        for _, ms in exports:
            for name, m in ms.items():
                kind = "histogram" if "histogram" in m else "sum"
                assert m[kind]["aggregationTemporality"] == CUMULATIVE, name
                if kind == "sum":
                    assert m["sum"]["isMonotonic"] is True, name
                for k, p in points(m).items():
                    v = int(p["count"] if kind == "histogram" else p["asInt"])
                    start, t = int(p["startTimeUnixNano"]), int(p["timeUnixNano"])
                    assert 0 < start <= t
                    old = seen.get((name, k))
                    if old:
                        assert v >= old[0] and start == old[1] and t > old[2], (name, k)
                    seen[(name, k)] = (v, start, t)
        assert {"podsnoop.bio.latency", "podsnoop.fs.latency", "podsnoop.open.latency",
                "podsnoop.execs", "podsnoop.opens", "podsnoop.events.lost"} <= set(last)
        assert int(value(last, "podsnoop.events.lost", **{"podsnoop.tracer": "exec",
                                                         "podsnoop.stage": "kernel_ringbuf"})
                   ["asInt"]) == prom[("podsnoop_events_lost_total", frozenset(
                       {("tracer", "exec"), ("stage", "kernel_ringbuf")}))]
        # a strict decoder (python3-protobuf on the official protos) reads every body
        pb2 = compile_official(d, "metrics")
        for r in rx.requests("/v1/metrics"):
            m = pb2.ExportMetricsServiceRequest()
            m.ParseFromString(rx.body(r["n"]))
            assert m.resource_metrics
    finally:
        pods.remove()


def metrics_agent(kubelet, pods, url, *extra):
    """Metrics only (OTEL_LOGS_EXPORTER=none): the receiver's answers are theirs."""
    return pod_agent(kubelet, pods, [pods.parent], url, "--tracers", "exec", "--interval", "1",
                     "--listen", "127.0.0.1:0", *extra,
                     env=env_with(OTEL_LOGS_EXPORTER="none"))


def run_execs(cg, n):
    cg.run([PY, "-c", "import os, sys\nfor _ in range(int(sys.argv[1])):\n"
            " pid = os.fork()\n if pid == 0:\n  os.execv('/bin/true', ['true'])\n"
            " os.waitpid(pid, 0)", str(n)], check=True)


def n_points(req):
    return sum(len(m[k]["dataPoints"]) for rm in req["request"]["resourceMetrics"]
               for sm in rm["scopeMetrics"] for m in sm["metrics"]
               for k in ("sum", "histogram") if k in m)


def scrape(a):
    return parse_text(get(a.listen_port(), "/metrics")[2])


def batches(m, result):
    return m.get(("podsnoop_otlp_metrics_batches_total", frozenset({("result", result)})), 0)


def test_400_on_metrics_is_counted_not_retried(kubelet, tmp_path):
    pods = Pods(["alpha"])
    try:
        with Receiver(str(tmp_path), answers=[{"status": 400, "message": "bad points"}]) as rx:
            with metrics_agent(kubelet, pods, rx.url) as a:
                run_execs(pods.pods["alpha"], 2)
                rx.wait_for(lambda rx: len(rx.requests()) >= 3, what="three exports")
                m = scrape(a)
                assert a.stop() == 0
        reqs = rx.requests()
        assert {r["path"] for r in reqs} == {"/v1/metrics"}
        assert [r["status"] for r in reqs[:3]] == [400, 200, 200]
        first = reqs[0]
        # never sent again: every later request is a later export
        t0 = {p["timeUnixNano"] for rm in first["request"]["resourceMetrics"]
              for sm in rm["scopeMetrics"] for mt in sm["metrics"] for k in ("sum", "histogram")
              if k in mt for p in mt[k]["dataPoints"]}
        assert len(t0) == 1
        for r in reqs[1:]:
            assert rx.body(r["n"]) != rx.body(first["n"])
            assert t0.isdisjoint(p["timeUnixNano"] for rm in r["request"]["resourceMetrics"]
                                 for sm in rm["scopeMetrics"] for mt in sm["metrics"]
                                 for k in ("sum", "histogram") if k in mt
                                 for p in mt[k]["dataPoints"])
        assert batches(m, "failed") == 1 and batches(m, "retried") == 0
        assert m[("podsnoop_otlp_metrics_points_refused_total", frozenset())] == n_points(first)
        # no tracer's records were lost over it
        assert not [k for k in m if k[0] == "podsnoop_events_lost_total" and
                    dict(k[1])["stage"].startswith("otlp")]
        assert any("OTLP metrics endpoint rejected batch 1 with HTTP 400" in l and
                   "bad points" in l for l in a.stderr), "".join(a.stderr)
    finally:
        pods.remove()


def test_metrics_partial_success_counted_not_retried(kubelet, tmp_path):
    pods = Pods(["alpha"])
    try:
        with Receiver(str(tmp_path), answers=[{"status": 200, "rejected": 3,
                                               "message": "three too many"}]) as rx:
            with metrics_agent(kubelet, pods, rx.url) as a:
                run_execs(pods.pods["alpha"], 2)
                rx.wait_for(lambda rx: len(rx.requests()) >= 2, what="two exports")
                m = scrape(a)
                assert a.stop() == 0
        reqs = rx.requests()
        assert rx.body(reqs[1]["n"]) != rx.body(reqs[0]["n"])
        assert batches(m, "retried") == 0 and batches(m, "failed") == 0
        assert m[("podsnoop_otlp_metrics_points_refused_total", frozenset())] == 3
        # data points are no tracer's records: nothing charged to one
        assert not [k for k in m if k[0] == "podsnoop_events_lost_total" and
                    dict(k[1])["stage"].startswith("otlp")]
        assert any("refused 3 of its" in l and "data points" in l and "three too many" in l
                   for l in a.stderr), "".join(a.stderr)
    finally:
        pods.remove()


def test_metrics_503_retried_with_retry_after(kubelet, tmp_path):
    """503 with Retry-After: the same export is sent again, then accepted."""
    pods = Pods(["alpha"])
    try:
        with Receiver(str(tmp_path), answers=[{"status": 503, "retry_after": 1}]) as rx:
            with metrics_agent(kubelet, pods, rx.url) as a:
                run_execs(pods.pods["alpha"], 2)
                rx.wait_for(lambda rx: len(rx.requests()) >= 2, what="two requests")
                m = scrape(a)
                assert a.stop() == 0
        reqs = rx.requests()
        assert [r["status"] for r in reqs[:2]] == [503, 200]
        assert rx.body(reqs[1]["n"]) == rx.body(reqs[0]["n"])
        assert batches(m, "retried") == 1
    finally:
        pods.remove()


def test_metrics_endpoint_variable_alone_and_exporter_none(cgroup, tmp_path):
    """OTEL_EXPORTER_OTLP_METRICS_ENDPOINT alone: metrics to that URL as it is, no logs;
    OTEL_METRICS_EXPORTER=none beside a base URL: logs, no metrics."""
    with Receiver(str(tmp_path)) as rx:
        with Agent("--tracers", "exec", "--cgroup", cgroup.path, "--interval", "1",
                   env=env_with(OTEL_EXPORTER_OTLP_METRICS_ENDPOINT=rx.url + "/v1/metrics")
                   ) as a:
            cgroup.run(["/bin/true"], check=True)
            rx.wait_for(lambda rx: len(rx.exports()) >= 2, what="two exports")
            assert a.stop() == 0
            assert not a.lines, "local output is off without --output"
        assert {r["path"] for r in rx.requests()} == {"/v1/metrics"}
    with Receiver(str(tmp_path)) as rx:
        with Agent("--tracers", "exec", "--cgroup", cgroup.path, "--interval", "1",
                   "--batch-ms", "200",
                   env=env_with(OTEL_EXPORTER_OTLP_ENDPOINT=rx.url,
                                OTEL_METRICS_EXPORTER="none")) as a:
            cgroup.run(["/bin/true"], check=True)
            rx.wait_for(lambda rx: rx.records("exec"), what="the exec")
            assert a.stop() == 0
        assert {r["path"] for r in rx.requests()} == {"/v1/logs"}


@pytest.mark.parametrize("env,msg", [
    ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "ftp://x"},
     "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'ftp://x' is not an http"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318", "OTEL_METRICS_EXPORTER": "prometheus"},
     "OTEL_METRICS_EXPORTER: 'prometheus': podsnoop exports otlp or none"),
])
def test_bad_metrics_settings_one_line_exit_2(env, msg):
    rc, _, err = run_agent_once("--tracers", "exec", env=env)
    assert rc == 2 and msg in err and len(err.strip().splitlines()) == 1, err


def test_check_config_shows_the_metrics_endpoint():
    rc, out, _ = run_agent_once("--check-config", env={
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://m:4318/custom"})
    assert rc == 0
    assert "otlp-logs-endpoint: off\n" in out
    assert "otlp-metrics-endpoint: https://m:4318/custom\n" in out
