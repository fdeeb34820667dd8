"""An OTLP/HTTP receiver for the tests (tests/otlp/receiver.js): node decoding every
request with the OpenTelemetry project's own generated code from npm (installed into
build/otlp-node by make test-build); and python3-protobuf's strict reading of the same
bodies with the official .proto files from npm (invalid UTF-8 in a string fails it)."""
import importlib
import json
import os
import subprocess
import sys
import time

from podsnoop_harness import BUILD, REPO

NODE_MODULES = os.path.join(BUILD, "otlp-node", "node_modules")
RAW_PROTOS = os.path.join(NODE_MODULES, "@opentelemetry", "otlp-grpc-exporter-base", "build",
                          "protos")


class Receiver:
    def __init__(self, workdir, answers=None, port=None):
        self.dir = os.path.join(workdir, "otlp-rx-%d" % time.monotonic_ns())
        os.makedirs(self.dir)
        if answers is not None:
            with open(os.path.join(self.dir, "answers.json"), "w") as f:
                json.dump(answers, f)
        self.proc = subprocess.Popen(
            ["node", os.path.join(REPO, "tests", "otlp", "receiver.js"), NODE_MODULES,
             self.dir] + ([str(port)] if port else []),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("port "), line + self.proc.stderr.read()
        self.port = int(line.split()[1])
        self.url = "http://127.0.0.1:%d" % self.port

    def requests(self, path=None):
        """Every request so far, in order; path: only those to it ("/v1/metrics")."""
        try:
            with open(os.path.join(self.dir, "requests.ndjson")) as f:
                return [r for r in map(json.loads, f) if path is None or r["path"] == path]
        except FileNotFoundError:
            return []

    def body(self, n):
        with open(os.path.join(self.dir, "%d.pb" % n), "rb") as f:
            return f.read()

    def logs(self, accepted_only=True):
        """Every LogRecord of the requests answered 200, as (resource attrs, record)."""
        out = []
        for r in self.requests():
            if r.get("error") or (accepted_only and r["status"] != 200):
                continue
            for rl in r["request"].get("resourceLogs", []):
                res = attrs(rl.get("resource", {}).get("attributes", []))
                for sl in rl.get("scopeLogs", []):
                    for lr in sl.get("logRecords", []):
                        out.append((res, lr))
        return out

    def exports(self, accepted_only=True):
        """Every /v1/metrics request answered 200, in order, as (resource attrs,
        {metric name: Metric}) (one ResourceMetrics and ScopeMetrics each)."""
        out = []
        for r in self.requests("/v1/metrics"):
            if r.get("error") or (accepted_only and r["status"] != 200):
                continue
            rms = r["request"].get("resourceMetrics", [])
            assert len(rms) == 1 and len(rms[0].get("scopeMetrics", [])) == 1, r
            ms = {}
            for m in rms[0]["scopeMetrics"][0].get("metrics", []):
                assert m["name"] not in ms, "metric %s twice" % m["name"]
                ms[m["name"]] = m
            out.append((attrs(rms[0].get("resource", {}).get("attributes", [])), ms))
        return out

    def records(self, event=None, accepted_only=True):
        return [lr for _, lr in self.logs(accepted_only)
                if event is None or lr.get("eventName") == event]

    def wait_for(self, pred, timeout=20, what="requests"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred(self):
                return
            time.sleep(0.1)
        raise AssertionError("no %s within %ss: %d requests" % (what, timeout,
                                                                 len(self.requests())))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def value(v):
    """An AnyValue as toObject gives it -> a Python value (ints as int)."""
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "boolValue" in v:
        return v["boolValue"]
    if "doubleValue" in v:
        return v["doubleValue"]
    if "arrayValue" in v:
        return [value(x) for x in v["arrayValue"].get("values", [])]
    raise AssertionError("unexpected AnyValue %r" % v)


def attrs(kvs):
    out = {}
    for kv in kvs:
        assert kv["key"] not in out, "attribute %s twice" % kv["key"]
        out[kv["key"]] = value(kv.get("value", {}))
    return out


def points(metric):
    """A Metric's data points as {frozenset(attributes): point}; each set once."""
    kind = "histogram" if "histogram" in metric else "sum"
    out = {}
    for p in metric[kind].get("dataPoints", []):
        k = frozenset(attrs(p.get("attributes", [])).items())
        assert k not in out, "%s: %r twice" % (metric["name"], k)
        out[k] = p
    return out


def compile_official(outdir, signal="logs"):
    """The official service .protos (npm) for python3-protobuf: the request module of
    the signal."""
    protos = []
    for d, _, fs in os.walk(os.path.join(RAW_PROTOS, "opentelemetry")):
        protos += [os.path.join(d, f) for f in fs if f.endswith(".proto") and
                   "trace" not in d]
    subprocess.run(["protoc", "-I" + RAW_PROTOS, "--python_out=" + outdir] + protos,
                   check=True, capture_output=True)
    if outdir not in sys.path:
        sys.path.insert(0, outdir)
    return importlib.import_module("opentelemetry.proto.collector.%s.v1.%s_service_pb2" %
                                   (signal, signal))
