"""--listen: /healthz, /readyz and /metrics of the real agent, scraped by
Debian's real Prometheus on loopback and read back through its query API."""
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import biohist
import pytest
from podsnoop_harness import REPO, Agent, make_program, run_agent_once
from prometheus_server import Prometheus
from loopfs import loop_device
from test_bio import DIRECT_IO, PY, dev_of


def get(port, path, method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def parse_text(body):
    """Prometheus text -> {(name, frozenset(labels)): value}; checks every
    sample belongs to the family announced by the last # TYPE line."""
    out, family, ftype = {}, None, None
    for line in body.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, ftype = line.split(" ")
            continue
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name, _, rest = series.partition("{")
        base = name
        if ftype == "histogram":
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix):
                    base = name[:-len(suffix)]
        assert base == family, "sample %r outside its family %r" % (line, family)
        labels = {}
        if rest:
            for pair in rest.rstrip("}").split(","):
                k, _, v = pair.partition("=")
                labels[k] = v.strip('"')
        out[(name, frozenset(labels.items()))] = float(value)
    return out


def documented_ringbuf(tracer):
    """The tracer's default ring buffer size in bytes, as docs/command-line.md
    states it: the test holds the code to what the reference promises."""
    text = open(os.path.join(REPO, "docs", "command-line.md")).read()
    row = next(l for l in text.splitlines() if l.startswith("| `--ringbuf-kb"))
    kb = re.search(r"\b%s (\d+)" % tracer, row.split("default:", 1)[1])
    return int(kb.group(1)) * 1024


def wait_count(agent, prog, n, timeout=10):
    deadline = time.time() + timeout
    while len([r for r in agent.records() if r.get("filename") == prog]) < n:
        assert time.time() < deadline, "fewer than %d execs of %s" % (n, prog)
        time.sleep(0.05)


def sample(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def test_endpoints_and_exact_counters(cgroup, progdir):
    prog, outside = make_program(progdir), make_program(progdir)
    with Agent("--tracers", "exec", "--cgroup", cgroup.path, "--listen", "127.0.0.1:0") as a:
        port = a.listen_port()
        status, ctype, body = get(port, "/healthz")
        assert status == 200 and body.startswith("ok")
        status, _, body = get(port, "/readyz")
        assert status == 200, body
        assert "ok   tracers: 1 attached: exec=syscalls" in body
        assert "ok   metadata: off" in body

        for _ in range(5):
            cgroup.run([prog])
        for _ in range(3):
            subprocess.run([outside], check=True)   # not selected: filtered in the kernel
        wait_count(a, prog, 5)
        status, ctype, body = get(port, "/metrics")
        assert status == 200
        assert ctype == "text/plain; version=0.0.4; charset=utf-8"
        m = parse_text(body)
        # only the selected cgroup's execs reach the ring buffer: exactly 5
        assert sample(m, "podsnoop_events_emitted_total", tracer="exec") == 5
        assert sample(m, "podsnoop_events_filtered_total", tracer="exec") >= 3
        seen = sample(m, "podsnoop_events_seen_total", tracer="exec")
        assert seen >= 8
        assert sample(m, "podsnoop_events_lost_total", tracer="exec", stage="kernel_ringbuf") == 0
        assert sample(m, "podsnoop_events_lost_total", tracer="exec",
                      stage="kernel_map_full") == 0
        assert sample(m, "podsnoop_read_errors_total", tracer="exec") == 0
        assert sample(m, "podsnoop_ringbuf_size_bytes", tracer="exec") == documented_ringbuf("exec")
        assert 0 <= sample(m, "podsnoop_ringbuf_fill_ratio", tracer="exec") < 1
        assert sample(m, "podsnoop_tracer_info", tracer="exec", method="syscalls") == 1
        assert sample(m, "podsnoop_ready") == 1

        assert get(port, "/nope")[0] == 404
        assert get(port, "/metrics", method="POST")[0] == 405
        assert get(port, "/healthz", method="HEAD")[0] == 200
        assert a.stop() == 0
    # the exit summary and /metrics read the same counters
    assert a.summary("exec")["emitted"] == 5


def test_prometheus_scrapes_the_agent(cgroup, progdir):
    prog = make_program(progdir)
    with Agent("--tracers", "exec", "--cgroup", cgroup.path, "--ringbuf-kb", "256",
               "--listen", "127.0.0.1:0") as a:
        port = a.listen_port()
        for _ in range(7):
            cgroup.run([prog])
        with Prometheus(["127.0.0.1:%d" % port], job="podsnoop") as prom:
            targets = prom.wait_for_target_up()
            assert targets[0]["lastError"] == ""
            assert targets[0]["labels"]["job"] == "podsnoop"
            got = prom.wait_for_query('podsnoop_events_emitted_total{tracer="exec"}',
                                      lambda r: r and r[0][1] == 7)
            labels, value = got[0]
            assert labels["job"] == "podsnoop"
            assert labels["instance"] == "127.0.0.1:%d" % port
            # more execs: the next scrapes see them
            for _ in range(4):
                cgroup.run([prog])
            prom.wait_for_query('podsnoop_events_emitted_total{tracer="exec"}',
                                lambda r: r and r[0][1] == 11)
            assert prom.query('podsnoop_ringbuf_size_bytes{tracer="exec"}')[0][1] == 256 * 1024
            assert prom.query('podsnoop_tracer_info{method="syscalls"}')[0][1] == 1
            assert prom.query("podsnoop_ready")[0][1] == 1
            assert prom.query('sum(podsnoop_events_lost_total{tracer="exec"})')[0][1] == 0
            # every family the agent exposes made it in
            names = set(prom._get("/api/v1/label/__name__/values"))
            for n in ("podsnoop_build_info", "podsnoop_events_seen_total",
                      "podsnoop_events_filtered_total", "podsnoop_events_emitted_total",
                      "podsnoop_events_lost_total", "podsnoop_read_errors_total",
                      "podsnoop_ringbuf_fill_ratio"):
                assert n in names, n
        assert a.stop() == 0


def test_prometheus_scrapes_block_io_latency_histograms(cgroup):
    """podsnoop_bio_latency_seconds, scraped by Prometheus: the kernel's
    histograms are drained every --interval (1 s here), the metric adds them
    up: after two bursts of O_DIRECT I/O a few intervals apart, its buckets
    are, bucket by bucket, the sum of the bio_hist records (a loop device of
    its own: nothing else touches it), and its count the number of requests.
    I/O to the same disk from outside the selected cgroup is not in it. A
    plain cgroup has no pod: namespace, pod and container are empty."""
    def io(writes, reads):
        cgroup.run([PY, "-c", DIRECT_IO, dev, json.dumps(writes), json.dumps(reads)],
                   check=True, capture_output=True)

    def hists(a, op):
        return [r for r in a.records() if r.get("type") == "bio_hist" and r["disk"] == disk and
                r["op"] == op]

    def requests(a, op):
        return [r for r in a.records() if r.get("type") == "bio" and r["disk"] == disk and
                r["op"].lstrip("F")[:1] == op]

    with loop_device() as dev:
        disk, _ = dev_of(dev)
        sel = '{namespace="",pod="",container="",disk="%s",op="%%s"}' % disk
        with Agent("--tracers", "bio", "--bio-min-us", "0", "--interval", "1", "--cgroup",
                   cgroup.path, "--cri-socket", "none", "--listen", "127.0.0.1:0") as a:
            port = a.listen_port()
            with Prometheus(["127.0.0.1:%d" % port], job="podsnoop") as prom:
                io([4096] * 6 + [65536] * 2, [4096] * 5)
                # outside the cgroup, same disk: filtered in the kernel
                subprocess.run([PY, "-c", DIRECT_IO, dev, json.dumps([8192] * 7), "[]"],
                               check=True, capture_output=True)
                prom.wait_for_query("podsnoop_bio_latency_seconds_count" + sel % "W",
                                    lambda r: r and r[0][1] == 8)
                first = hists(a, "W")
                io([4096] * 3, [16384] * 4)
                got = prom.wait_for_query("podsnoop_bio_latency_seconds_count" + sel % "W",
                                          lambda r: r and r[0][1] == 11)
                assert got[0][0]["job"] == "podsnoop"
                prom.wait_for_query("podsnoop_bio_latency_seconds_count" + sel % "R",
                                    lambda r: r and r[0][1] == 9)
                for op in ("W", "R"):
                    buckets = biohist.from_query(
                        prom.query("podsnoop_bio_latency_seconds_bucket" + sel % op))
                    assert buckets == biohist.from_records(hists(a, op)), op
                    assert buckets[float("inf")] == len(requests(a, op))
                    total = prom.query("podsnoop_bio_latency_seconds_sum" + sel % op)[0][1]
                    assert abs(total - sum(h["sum_ns"] for h in hists(a, op)) / 1e9) < 1e-9
                # the second burst came in a later interval: the metric summed them
                assert first and len({h["ts_ns"] for h in hists(a, "W")}) > len(first)
                q = prom.query('histogram_quantile(0.5, podsnoop_bio_latency_seconds_bucket'
                               '{disk="%s",op="W"})' % disk)
                assert 0 < q[0][1] < 67.2
                assert prom.query('podsnoop_metrics_series_folded'
                                  '{family="podsnoop_bio_latency_seconds"}')[0][1] == 0
            assert a.stop() == 0
    assert {r["cgroup_id"] for r in a.records() if r.get("type") == "bio_hist" and
            r["disk"] == disk} == {cgroup.id}


def test_scrapes_in_parallel_with_events_lose_nothing(cgroup, progdir):
    """The endpoint thread reads counters while the event path runs: every exec
    arrives and the scrapes all answer."""
    prog = make_program(progdir)
    with Agent("--tracers", "exec", "--cgroup", cgroup.path, "--listen", "127.0.0.1:0") as a:
        port = a.listen_port()
        stop, codes = threading.Event(), []

        def scrape():
            while not stop.is_set():
                codes.append(get(port, "/metrics")[0])
        threads = [threading.Thread(target=scrape) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            for _ in range(50):
                cgroup.run([prog])
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert a.stop() == 0
    assert len([r for r in a.records() if r.get("filename") == prog]) == 50
    assert codes and set(codes) == {200}
    assert a.summary("exec")["lost"] == 0


def test_listen_address_in_use_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        rc, _, err = run_agent_once("--tracers", "exec", "--listen", "127.0.0.1:%d" % port,
                                    "-d", "1")
    assert rc == 1
    assert "--listen 127.0.0.1:%d: Address already in use" % port in err


@pytest.mark.parametrize("addr", ["9464", "[::1]9464", "host:99999", ":"])
def test_bad_listen_address_is_usage_error(addr):
    rc, _, err = run_agent_once("--listen", addr)
    assert rc == 2
    assert "--listen" in err and err.count("\n") == 1


def test_check_config_loads_nothing():
    rc, out, err = run_agent_once("--check-config", "--tracers", "exec", "--listen", ":9464",
                                  "--exclude-host", "--cgroup", "/kubepods")
    assert rc == 0, err
    assert "tracers: exec\n" in out and "listen: :9464\n" in out
    assert "cgroup: /kubepods\n" in out and "privileges: ok\n" in out
    assert "ready" not in err     # nothing was started
