"""OTLP/HTTP logs export, end to end: the real agent tracing a test cgroup, a receiver
the test starts (tests/otlp/receiver.js) that decodes every request with the
OpenTelemetry project's own generated code from npm, and python3-protobuf reading the
same bodies with the official .proto files (strict UTF-8)."""
import os
import re
import socket
import time

import pytest
from otlp_harness import Receiver, attrs, compile_official
from podsnoop_harness import Agent, run_agent_once, unique
from ship_harness import Collector, free_port
from test_endpoints import get, parse_text

FAST = ["--batch-ms", "200", "--retry-min-ms", "50", "--retry-max-ms", "500",
        "--otlp-timeout-ms", "2000"]
SEMCONV_EXEC = {"process.pid", "process.parent_pid", "process.executable.path",
                "process.command_args", "process.real_user.id", "process.executable.name"}


def otlp_agent(cg, url, *extra, env=None):
    """Logs only: the metrics signal (test_otlp_metrics.py) would share the receiver's
    answers and requests."""
    env = dict(os.environ if env is None else env, OTEL_METRICS_EXPORTER="none")
    return Agent("--tracers", "exec", "--cgroup", cg.path, "--otlp-endpoint", url, *FAST,
                 *extra, env=env)


def run_execs(cg, tag, n):
    cg.run(["/bin/sh", "-c",
            'i=0; while [ $i -lt %d ]; do /bin/true %s $i; i=$((i+1)); done' % (n, tag)],
           check=True)


def tagged(logs, tag):
    return [lr for lr in logs if lr.get("eventName") == "exec" and
            attrs(lr["attributes"])["process.command_args"][1:2] == [tag]]


def exactly_once(logs, tag, n):
    got = sorted(attrs(lr["attributes"])["process.command_args"][2] for lr in tagged(logs, tag))
    assert got == sorted(str(i) for i in range(n)), got


def lost(rx, **match):
    """Sum of podsnoop.loss.count over the loss LogRecords that match."""
    n = 0
    for lr in rx.records("loss"):
        a = attrs(lr["attributes"])
        if all(a.get("podsnoop.loss." + k) == v for k, v in match.items()):
            n += a["podsnoop.loss.count"]
    return n


def metrics(a):
    return parse_text(get(a.listen_port(), "/metrics")[2])


FILE_IO = r"""
import mmap, os, sys
path = sys.argv[1]
os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0o644))
try:
    os.open(path + ".missing", os.O_RDONLY)
except FileNotFoundError:
    pass
buf = mmap.mmap(-1, 65536)
buf.write(b"\xa5" * 65536)
fd = os.open(path, os.O_RDWR | os.O_DIRECT)
os.pwritev(fd, [buf], 0)
os.fsync(fd)
os.close(fd)
with open(path, "rb") as f:
    f.read()
"""


def test_every_record_type_beside_collector_and_output(cgroup, tmp_path):
    """exec, open (ok and failed), bio, fs and cache: each record the agent prints
    locally arrives once as a LogRecord with its values under the semantic-convention
    names; the collector gets the same records; the resource names the agent."""
    tag, path = unique("all"), str(tmp_path / unique("file"))
    with Receiver(str(tmp_path)) as rx, Collector(str(tmp_path)) as c:
        with otlp_agent(cgroup, rx.url, "--tracers", "exec,open,bio,fs,cache",
                        "--collector", c.url, "--output", "ndjson", "--interval", "1",
                        "--bio-min-us", "0", "--fs-min-us", "0", "--node-name", "node-x") as a:
            run_execs(cgroup, tag, 3)
            cgroup.run(["/usr/bin/python3", "-c", FILE_IO, path], check=True)
            a.wait_for(lambda r: r["type"] == "cache" and r["cgroup_id"] == cgroup.id,
                       timeout=15, what="a cache record")
            assert a.stop() == 0
        assert any("otlp: sent" in l for l in a.stderr), "".join(a.stderr)
        local = [r for r in a.records() if r["type"] in ("exec", "open", "bio", "fs", "cache")]
        logs = rx.logs()
        c.wait_for(lambda c: len([r for r in c.lines() if r.get("type") == "exec"]) ==
                   len([r for r in local if r["type"] == "exec"]), what="the execs")
    res = {k: v for k, v in logs[0][0].items()}
    assert res["service.name"] == "podsnoop" and res["k8s.node.name"] == "node-x"
    assert res["host.name"] == socket.gethostname()
    assert re.fullmatch(r"[0-9a-f]{32}", res["service.instance.id"])
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", res["service.version"])
    recs = [lr for _, lr in logs if lr["eventName"] != "loss"]
    # every local record once, by type and time
    key = lambda t, ts: (t, str(ts))
    assert sorted(key(lr["eventName"], lr["timeUnixNano"]) for lr in recs) == \
        sorted(key(r["type"], r["ts_ns"]) for r in local)
    by_ts = {key(lr["eventName"], lr["timeUnixNano"]): attrs(lr["attributes"]) for lr in recs}
    sev = {key(lr["eventName"], lr["timeUnixNano"]): lr["severityNumber"] for lr in recs}
    exactly_once(recs, tag, 3)
    for r in local:
        got, k = by_ts[key(r["type"], r["ts_ns"])], key(r["type"], r["ts_ns"])
        assert got["podsnoop.cgroup.id"] == r["cgroup_id"]
        if r["type"] == "exec":
            assert SEMCONV_EXEC <= set(got)
            assert (got["process.pid"], got["process.parent_pid"], got["process.real_user.id"],
                    got["process.executable.path"], got["process.command_args"]) == \
                (r["pid"], r["ppid"], r["uid"], r["filename"], r["args"])
            assert sev[k] == (13 if r["retval"] < 0 else 9)
        elif r["type"] == "open":
            assert (got["file.path"], got["podsnoop.open.ret"], got["process.pid"]) == \
                (r["path"], r["ret"], r["pid"])
            assert sev[k] == (13 if r["ret"] < 0 else 9)
        elif r["type"] == "bio":
            assert (got["podsnoop.bio.bytes"], got["podsnoop.bio.sector"],
                    got["podsnoop.latency_ns"]) == (r["bytes"], r["sector"], r["latency_ns"])
        elif r["type"] == "fs":
            assert (got["file.path"], got["file.name"], got["podsnoop.fs.op"],
                    got["podsnoop.latency_ns"]) == (r["path"], r["file"], r["op"],
                                                    r["latency_ns"])
        elif r["type"] == "cache":
            assert (got["podsnoop.cache.misses"], got["podsnoop.cache.dirtied"]) == \
                (r["misses"], r["dirtied"])
    types = {r["type"] for r in local if r["cgroup_id"] == cgroup.id}
    assert types == {"exec", "open", "bio", "fs", "cache"}, types
    opens = [by_ts[key("open", r["ts_ns"])] for r in local if r["type"] == "open"]
    assert any(o["file.path"] == path + ".missing" and o["podsnoop.open.ret"] == -2
               for o in opens)
    assert any(13 == sev[key("open", r["ts_ns"])] for r in local if r["type"] == "open")


BAD_BYTES = [b"\xff", b"a\xc3(b", b"\xed\xa0\x80", b'"quoted"', b"two\nlines", b"tab\there"]


def per_byte_replacement(b):
    """What docs/otlp.md says: each byte not part of a valid UTF-8 sequence -> U+FFFD."""
    return b.decode("utf-8", errors="replace")


def test_invalid_utf8_quotes_newlines_come_out_valid(cgroup, tmp_path):
    tag = unique("utf")
    d = tmp_path / "d"
    d.mkdir()
    names = [b"f\xff\xfe", b"q\"uote'", b"new\nline"]
    with Receiver(str(tmp_path)) as rx:
        with otlp_agent(cgroup, rx.url, "--tracers", "exec,open") as a:
            cgroup.run([b"/bin/true", tag.encode()] + BAD_BYTES, check=True)
            for n in names:
                cgroup.run(["/usr/bin/python3", "-c",
                            "import os,sys; os.close(os.open(os.fsencode(sys.argv[1]) + "
                            "bytes.fromhex(sys.argv[2]), os.O_CREAT | os.O_RDONLY))",
                            str(d) + "/", n.hex()], check=True)
            rx.wait_for(lambda rx: tagged(rx.records(), tag) and
                        sum(1 for lr in rx.records("open")
                            if attrs(lr["attributes"])["file.path"].startswith(str(d))) >= 3,
                        what="the exec and the opens")
            assert a.stop() == 0
        args = attrs(tagged(rx.records(), tag)[0]["attributes"])["process.command_args"]
        assert args[2:] == [per_byte_replacement(b) for b in BAD_BYTES]
        paths = {attrs(lr["attributes"])["file.path"] for lr in rx.records("open")}
        for n in names:
            assert per_byte_replacement(str(d).encode() + b"/" + n) in paths
        # a strict decoder (Go's, C++'s) would refuse a request with invalid UTF-8
        pb2 = compile_official(str(tmp_path))
        for r in rx.requests("/v1/logs"):
            m = pb2.ExportLogsServiceRequest()
            m.ParseFromString(rx.body(r["n"]))
            assert m.resource_logs
        # (and it does: the check itself fails on a string with a bad byte)
        bad = b"\x0a\x07\x0a\x05\x0a\x03\x0a\x01\xff"  # resource_logs.resource.attributes.key
        with pytest.raises(Exception):
            pb2.ExportLogsServiceRequest().ParseFromString(bad)


def test_503_with_retry_after_then_200_nothing_lost_or_duplicated(cgroup, tmp_path):
    tag = unique("r503")
    with Receiver(str(tmp_path), answers=[{"status": 503, "retry_after": 1},
                                          {"status": 503, "retry_after": 1}]) as rx:
        with otlp_agent(cgroup, rx.url, "--listen", "127.0.0.1:0") as a:
            run_execs(cgroup, tag, 20)
            rx.wait_for(lambda rx: len(tagged(rx.records(), tag)) >= 20, what="20 execs")
            m = metrics(a)
            assert a.stop() == 0
        exactly_once(rx.records(), tag, 20)
        assert [r["status"] for r in rx.requests()][:3] == [503, 503, 200]
        assert any("retrying in 1000 ms" in l for l in a.stderr), "".join(a.stderr)
        assert m[("podsnoop_otlp_batches_total", frozenset({("result", "retried")}))] == 2
        assert not rx.records("loss")


def test_400_is_dropped_counted_not_retried(cgroup, tmp_path):
    tag = unique("r400")
    with Receiver(str(tmp_path), answers=[{"status": 400, "message": "bad batch"}]) as rx:
        with otlp_agent(cgroup, rx.url, "--listen", "127.0.0.1:0") as a:
            run_execs(cgroup, tag, 5)
            rx.wait_for(lambda rx: len(rx.requests()) >= 1, what="the first request")
            first = rx.requests()[0]
            n_first = sum(len(sl["logRecords"]) for rl in first["request"]["resourceLogs"]
                          for sl in rl["scopeLogs"])
            run_execs(cgroup, unique("after"), 1)  # a later batch carries the loss
            rx.wait_for(lambda rx: lost(rx, stage="otlp_rejected") >= n_first,
                        what="the loss record")
            m = metrics(a)
            assert a.stop() == 0
        assert first["status"] == 400
        assert lost(rx, stage="otlp_rejected", reason="http_400") == n_first
        assert m[("podsnoop_events_lost_total",
                  frozenset({("tracer", "exec"), ("stage", "otlp_rejected")}))] == n_first
        # never sent again: the first batch's execs are in no accepted request
        first_ts = {lr["timeUnixNano"] for rl in first["request"]["resourceLogs"]
                    for sl in rl["scopeLogs"] for lr in sl["logRecords"]}
        assert not first_ts & {lr["timeUnixNano"] for lr in rx.records()}
        assert any("OTLP endpoint rejected batch 1 with HTTP 400" in l and "bad batch" in l
                   for l in a.stderr), "".join(a.stderr)


def test_partial_success_is_counted_not_retried(cgroup, tmp_path):
    tag = unique("part")
    with Receiver(str(tmp_path), answers=[{"status": 200, "rejected": 2,
                                           "message": "two too old"}]) as rx:
        with otlp_agent(cgroup, rx.url, "--listen", "127.0.0.1:0") as a:
            run_execs(cgroup, tag, 5)
            rx.wait_for(lambda rx: len(rx.requests()) >= 1, what="the first request")
            run_execs(cgroup, unique("after"), 1)
            rx.wait_for(lambda rx: lost(rx, reason="partial_success") >= 2, what="the loss")
            m = metrics(a)
            assert a.stop() == 0
        assert lost(rx, stage="otlp_rejected", reason="partial_success") == 2
        assert m[("podsnoop_events_lost_total",
                  frozenset({("tracer", "exec"), ("stage", "otlp_rejected")}))] == 2
        all_ts = [lr["timeUnixNano"] for lr in rx.records() if lr["eventName"] == "exec"]
        assert len(all_ts) == len(set(all_ts)), "a record was sent twice"
        assert any("refused 2 of its" in l and "two too old" in l for l in a.stderr)


def test_partial_success_charged_to_the_types_in_proportion(cgroup, tmp_path):
    """A partial success does not say which records were refused: they are charged to
    the batch's record types in proportion (the remainder to the largest)."""
    with Receiver(str(tmp_path), answers=[{"status": 200, "rejected": 7}]) as rx:
        with otlp_agent(cgroup, rx.url, "--tracers", "exec,open") as a:
            run_execs(cgroup, unique("prop"), 5)
            rx.wait_for(lambda rx: len(rx.requests()) >= 1, what="the first request")
            run_execs(cgroup, unique("after"), 1)
            rx.wait_for(lambda rx: lost(rx, reason="partial_success") >= 1, what="the loss")
            assert a.stop() == 0
    first = rx.requests()[0]
    kinds = [lr["eventName"] for rl in first["request"]["resourceLogs"]
             for sl in rl["scopeLogs"] for lr in sl["logRecords"] if lr["eventName"] != "loss"]
    n_exec, n_open = kinds.count("exec"), kinds.count("open")
    assert n_exec and n_open and n_exec != n_open, kinds
    total, n = n_exec + n_open, min(7, n_exec + n_open)
    want = {"exec": n * n_exec // total, "open": n * n_open // total}
    want["exec" if n_exec > n_open else "open"] += n - sum(want.values())
    for tracer, w in want.items():
        assert lost(rx, tracer=tracer, stage="otlp_rejected", reason="partial_success") == w


def test_endpoint_down_longer_than_the_queue(cgroup, tmp_path):
    """Nothing listens: batches fill the queue (1 byte: one batch), the rest are counted
    as otlp_queue losses by tracer, the agent keeps tracing (its local output goes on);
    when the endpoint comes up, the loss records say how many."""
    port = free_port()
    tag = unique("down")
    with otlp_agent(cgroup, "http://127.0.0.1:%d" % port, "--queue-max-bytes", "1",
                    "--batch-records", "10", "--output", "ndjson",
                    "--listen", "127.0.0.1:0") as a:
        run_execs(cgroup, tag, 100)
        a.wait_for(lambda r: r.get("args", [None, None, None])[1:3] == [tag, "99"],
                   what="the last exec, locally")
        deadline = time.time() + 20
        while True:
            m = metrics(a)
            q = m.get(("podsnoop_events_lost_total",
                       frozenset({("tracer", "exec"), ("stage", "otlp_queue")})), 0)
            if q >= 50 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert q >= 50, m
        run_execs(cgroup, unique("still"), 3)
        a.wait_for(lambda r: r["type"] == "exec" and r["args"][1:2] == ["still"] or
                   r["type"] == "exec" and r["args"][1].startswith("still"),
                   what="tracing goes on")
        with Receiver(str(tmp_path), port=port) as rx:
            rx.wait_for(lambda rx: lost(rx, stage="otlp_queue") >= q, timeout=30,
                        what="the loss records")
            assert a.stop() == 0
        delivered = len(tagged(rx.records(), tag))
        assert delivered + lost(rx, stage="otlp_queue", tracer="exec") >= 100


def test_otel_exporter_otlp_endpoint_alone(cgroup, tmp_path):
    tag = unique("env")
    with Receiver(str(tmp_path)) as rx:
        env = dict(os.environ, OTEL_EXPORTER_OTLP_ENDPOINT=rx.url + "/",
                   OTEL_EXPORTER_OTLP_HEADERS="x-tenant=team%20a, x-other = 1",
                   OTEL_SERVICE_NAME="snoop-svc",
                   OTEL_RESOURCE_ATTRIBUTES="k8s.cluster.name=c1,service.name=ignored,"
                                            "deployment.environment.name=t%2Cest")
        with Agent("--tracers", "exec", "--cgroup", cgroup.path, "--batch-ms", "200",
                   env=env) as a:
            run_execs(cgroup, tag, 3)
            rx.wait_for(lambda rx: len(tagged(rx.records(), tag)) == 3, what="3 execs")
            assert a.stop() == 0
            assert not a.lines, "local output is off without --output"
    r = rx.requests("/v1/logs")[0]
    assert r["headers"]["x-tenant"] == "team a" and r["headers"]["x-other"] == "1"
    assert r["headers"]["content-encoding"] == "gzip"
    res = rx.logs()[0][0]
    assert res["service.name"] == "snoop-svc" and res["k8s.cluster.name"] == "c1"
    assert res["deployment.environment.name"] == "t,est"


@pytest.mark.parametrize("args,env,msg", [
    (["--otlp-endpoint", "ftp://x"], {}, "--otlp-endpoint: 'ftp://x' is not an http"),
    (["--otlp-endpoint", "http://"], {}, "is not an http"),
    (["--otlp-endpoint", "http://h", "--otlp-header", "bad key=v"], {}, "not a header name"),
    (["--otlp-endpoint", "http://h", "--otlp-header", "k=v\r\nX-Evil: 1"], {},
     "holds control characters"),
    (["--otlp-endpoint", "http://h", "--otlp-header", "novalue"], {}, "is not KEY=VALUE"),
    ([], {"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
    ([], {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h", "OTEL_EXPORTER_OTLP_HEADERS": "a=%zz"},
     "bad %-escape"),
    ([], {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
     "http/protobuf only"),
    (["--otlp-header", "a=b"], {}, "need --otlp-endpoint"),
])
def test_bad_url_or_header_one_line_exit_2(args, env, msg):
    rc, out, err = run_agent_once(*args, "--check-config", env=env)
    assert rc == 2, (rc, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and msg in lines[0], err


def test_check_config_shows_the_endpoints_and_header_names_only():
    rc, out, err = run_agent_once("--otlp-endpoint", "https://u:pw@h:4318/base",
                                  "--otlp-header", "Authorization=Bearer s3cret",
                                  "--check-config", env={})
    assert rc == 0, err
    assert "otlp-logs-endpoint: https://***@h:4318/base/v1/logs" in out
    assert "otlp-metrics-endpoint: https://***@h:4318/base/v1/metrics" in out
    assert "otlp-header: Authorization" in out and "s3cret" not in out and ":pw@" not in out


def test_every_sink_flushes_against_one_deadline(cgroup):
    """The collector, OTLP logs and OTLP metrics all unreachable at the stop: the three
    sinks flush side by side against one --flush-timeout-ms, so the agent exits after
    about one timeout, not one per sink (which took three), and each sink counts what
    it could not send."""
    flush_s = 4
    dead = "http://127.0.0.1:%d" % free_port()
    with Agent("--tracers", "exec", "--cgroup", cgroup.path, "--collector", dead,
               "--otlp-endpoint", dead, "--flush-timeout-ms", str(flush_s * 1000),
               "--retry-min-ms", "50", "--retry-max-ms", "200", "--interval", "1") as a:
        run_execs(cgroup, unique("deadline"), 20)
        time.sleep(1.5)  # an interval: the metrics sink has an export to send too
        t0 = time.monotonic()
        assert a.stop(timeout=60) == 0
        took = time.monotonic() - t0
    err = "".join(a.stderr)
    for prefix in ("ship", "otlp"):
        assert re.search(r"error: %s: \d+ records in \d+ batches could not be sent before "
                         r"--flush-timeout-ms" % prefix, err), err
    assert re.search(r"otlp-metrics: sent 0 batches", err), err  # it ran, and stopped
    # one timeout and the exit's own work, far from the three timeouts of a stop
    # that waited for each sink in turn
    assert flush_s <= took < 2 * flush_s, (took, err)
