"""Helpers for the shipping tests: the reference collector as a process, the
wire schema compiled for Google's protobuf, free ports, a test CA.

Used by tests/integration/test_ship.py and bench/ship_bench.py (Debian's
/usr/bin/python3: python3-protobuf, protoc from protobuf-compiler).
"""
import glob
import gzip
import importlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from podsnoop_harness import BUILD, REPO

COLLECTOR = os.path.join(BUILD, "podsnoop-collector")
PROTO_DIR = os.path.join(REPO, "proto")


def free_port():
    """A TCP port nothing listens on now (nothing answers there: 'collector down')."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def compile_schema(outdir):
    """protoc --python_out for proto/podsnoop/v1/*.proto; returns the batch_pb2 module."""
    protos = sorted(glob.glob(os.path.join(PROTO_DIR, "podsnoop", "v1", "*.proto")))
    subprocess.run(["protoc", "-I" + PROTO_DIR, "--python_out=" + outdir] + protos,
                   check=True, capture_output=True)
    if outdir not in sys.path:
        sys.path.insert(0, outdir)
    return importlib.import_module("podsnoop.v1.batch_pb2")


def decode_body(pb2, body):
    """A POSTed (or spooled) body -> podsnoop.v1.Batch, with Google's protobuf."""
    b = pb2.Batch()
    b.ParseFromString(gzip.decompress(body))
    return b


class Collector:
    """build/podsnoop-collector in the background, writing NDJSON to a file."""

    def __init__(self, workdir, *args, port=None, name="collector", ndjson=True):
        self.workdir = workdir
        self.ndjson = ndjson
        self.out = os.path.join(workdir, name + ".ndjson")
        self.extra = [str(a) for a in args]
        self.port = port
        self.proc = None
        self.stderr = []
        self.start()

    def start(self, *args):
        """(Re)start, on the same port and output file when there was one."""
        extra = [str(a) for a in args] or self.extra
        scheme = "https" if "--tls-cert" in extra else "http"
        argv = [COLLECTOR, "--listen", "127.0.0.1:%d" % (self.port or 0)] + \
            (["--out", self.out] if self.ndjson else []) + ["-v"] + extra
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.stderr = []
        ready = threading.Event()

        def read():
            for raw in self.proc.stderr:
                line = raw.decode(errors="replace")
                self.stderr.append(line)
                m = re.search(r"listening on https?://[\d.]+:(\d+)/", line)
                if m:
                    self.port = int(m.group(1))
                if line.rstrip().endswith("info: ready"):
                    ready.set()
            ready.set()
        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        if not ready.wait(20) or self.proc.poll() is not None:
            raise AssertionError("collector did not start: %s\n%s" %
                                 (" ".join(argv), "".join(self.stderr)))
        self.url = "%s://127.0.0.1:%d/v1/batches" % (scheme, self.port)
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("collector ignored %s" % sig)
        if self.proc:
            self._reader.join(timeout=5)
        return self.proc.returncode if self.proc else None

    def lines(self):
        """Every NDJSON line written so far, parsed (invalid JSON fails the test)."""
        if not os.path.exists(self.out):
            return []
        out = []
        with open(self.out, "rb") as f:
            for l in f:
                out.append(json.loads(l))
        return out

    def batches(self, agent_id=None):
        """Batch lines in arrival order, each with its "recs" (records) and "loss_recs"."""
        cur, out = None, []
        for r in self.lines():
            if r["type"] == "batch":
                cur = dict(r, recs=[], loss_recs=[])
                out.append(cur)
            elif r["type"] == "loss":
                cur["loss_recs"].append(r)
            elif r["type"] == "rejected":
                continue
            else:
                cur["recs"].append(r)
        return [b for b in out if agent_id is None or b["agent_id"] == agent_id]

    def records(self, type_="exec"):
        return [r for r in self.lines() if r["type"] == type_]

    def wait_for(self, pred, timeout=30, what="condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred(self):
                return
            time.sleep(0.1)
        raise AssertionError("collector: no %s within %ss; its log:\n%s" %
                             (what, timeout, "".join(self.stderr)))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop(signal.SIGKILL)


def make_ca(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, with openssl.
    Returns a dict of PEM paths: ca, server_cert, server_key, client_cert, client_key."""
    p = {k: os.path.join(d, k + ".pem") for k in
         ("ca", "ca_key", "server_cert", "server_key", "client_cert", "client_key")}

    def run(*argv):
        subprocess.run(["openssl"] + list(argv), check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=podsnoop test CA", "-keyout", p["ca_key"], "-out", p["ca"])
    ext = os.path.join(d, "san.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for who, cn in (("server", "127.0.0.1"), ("client", "podsnoop-agent")):
        csr = os.path.join(d, who + ".csr")
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=" + cn,
            "-keyout", p[who + "_key"], "-out", csr)
        run("x509", "-req", "-in", csr, "-CA", p["ca"], "-CAkey", p["ca_key"],
            "-CAcreateserial", "-days", "2", "-out", p[who + "_cert"],
            *(["-extfile", ext] if who == "server" else []))
    return p
