"""Debian's real Prometheus (apt package `prometheus`, 2.42) for tests: a
private server that scrapes given targets, and its HTTP query API.

    with Prometheus(["127.0.0.1:9464"], job="podsnoop") as prom:
        prom.wait_for_target_up()
        prom.query('podsnoop_events_emitted_total{tracer="exec"}')  # -> [(labels, value)]

Everything lives in one temporary directory (config, TSDB, log), removed on
exit; the server is stopped by its pid.
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

PROMETHEUS = "/usr/bin/prometheus"


def free_port():
    """A TCP port free on loopback right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    def __init__(self, targets, job="podsnoop", scrape_interval="1s", start_timeout=30):
        if not os.path.exists(PROMETHEUS):
            raise RuntimeError("%s missing: apt-get install prometheus" % PROMETHEUS)
        self.dir = tempfile.mkdtemp(prefix="psprom-")
        self.job = job
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.config = os.path.join(self.dir, "prometheus.yml")
        with open(self.config, "w") as f:
            # JSON is YAML: no YAML library needed here
            json.dump({
                "global": {"scrape_interval": scrape_interval,
                           "evaluation_interval": scrape_interval},
                "scrape_configs": [{"job_name": job, "metrics_path": "/metrics",
                                    "static_configs": [{"targets": list(targets)}]}],
            }, f)
        self.log_path = os.path.join(self.dir, "prometheus.log")
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                [PROMETHEUS, "--config.file=" + self.config,
                 "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
                 "--web.listen-address=127.0.0.1:%d" % self.port,
                 "--web.enable-lifecycle"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=self.dir)
        finally:
            log.close()
        try:
            self._wait(lambda: self._get("/-/ready", raw=True), start_timeout, "/-/ready")
        except Exception:
            self.close()
            raise

    def log_tail(self, n=30):
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-n:])

    def _get(self, path, params=None, raw=False):
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as r:
            body = r.read()
        if raw:
            return body
        doc = json.loads(body)
        if doc.get("status") != "success":
            raise RuntimeError("prometheus %s: %s" % (path, doc))
        return doc["data"]

    def _wait(self, pred, timeout, what):
        deadline = time.time() + timeout
        last = None
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("prometheus exited (%s):\n%s" % (self.proc.returncode,
                                                                   self.log_tail()))
            try:
                v = pred()
                if v:
                    return v
            except Exception as e:  # noqa: BLE001 - retried until the deadline
                last = e
            if time.time() > deadline:
                raise AssertionError("prometheus: no %s within %ss (last: %r)\n%s" %
                                     (what, timeout, last, self.log_tail()))
            time.sleep(0.2)

    def targets(self):
        return self._get("/api/v1/targets")["activeTargets"]

    def wait_for_target_up(self, timeout=30):
        """Wait until every target was scraped successfully; returns the targets."""
        def up():
            t = self.targets()
            return t if t and all(x["health"] == "up" for x in t) else None
        return self._wait(up, timeout, "healthy scrape of every target")

    def query(self, expr):
        """Instant query: [(labels dict, float value)]."""
        data = self._get("/api/v1/query", {"query": expr})
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def wait_for_query(self, expr, pred, timeout=30):
        """Wait until pred(results of query(expr)) is true; returns the results."""
        return self._wait(lambda: (lambda r: r if pred(r) else None)(self.query(expr)),
                          timeout, "query %s matching" % expr)

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
