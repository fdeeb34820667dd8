"""A real clickhouse-server for the tests, as containerd is: started on loopback
with a private data directory and free ports, stopped (and its directory
removed) at the end. Debian 12's clickhouse-server 18.16.1 (the Makefile's
test packages install it; /work/shared/CLICKHOUSE.md has what it can do).

    with ClickHouse(tmpdir) as ch:
        ch.query("SELECT 1")          # -> "1\n"
        ch.rows("SELECT ... FORMAT JSONEachRow")   # -> [dict, ...]

Users: "default" (no password, all rights), "podsnoop" (password
ClickHouse.PASSWORD) and "reader" (readonly: cannot create a database).
"""
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from ship_harness import free_port

SERVER = "/usr/bin/clickhouse-server"
if not os.path.exists(SERVER):
    SERVER = "/usr/sbin/clickhouse-server"

CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <http_port>{http}</http_port><tcp_port>{tcp}</tcp_port>
  <interserver_http_port>{inter}</interserver_http_port>
  <listen_host>{host}</listen_host>
  <path>{dir}/data/</path><tmp_path>{dir}/tmp/</tmp_path>
  <format_schema_path>{dir}/format_schemas/</format_schema_path>
  <users_config>{dir}/users.xml</users_config>
  <default_profile>default</default_profile><default_database>default</default_database>
  <mark_cache_size>53687091</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  {remote_servers}
</yandex>
"""

USERS = """<?xml version="1.0"?>
<yandex>
  <profiles>
    <default><max_memory_usage>2000000000</max_memory_usage><log_queries>1</log_queries></default>
    <readonly><readonly>1</readonly></readonly>
  </profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></default>
    <podsnoop><password>{password}</password><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></podsnoop>
    <reader><password></password><networks><ip>127.0.0.1</ip></networks>
      <profile>readonly</profile><quota>default</quota></reader>
  </users>
  <quotas><default></default></quotas>
</yandex>
"""


class ClickHouse:
    """One clickhouse-server process; .url is its HTTP interface."""
    PASSWORD = "s3cret-Pa55"

    def __init__(self, workdir, name="clickhouse", remote_servers="", host="127.0.0.1",
                 ports=None):
        """ports: (http, tcp, interserver), free ones when None; servers on different
        loopback hosts (127.0.0.2, ...) can share them, as a cluster's servers do."""
        if not os.path.exists(SERVER):
            raise AssertionError("no clickhouse-server: `make test-build` installs it "
                                 "(the Makefile's PKGS_TEST)")
        self.dir = os.path.join(str(workdir), name)
        os.makedirs(self.dir, exist_ok=True)
        self.remote_servers, self.host = remote_servers, host
        self.http_port, self.tcp_port, self.inter_port = ports or (free_port(), free_port(),
                                                                   free_port())
        self.proc = None
        self.log = os.path.join(self.dir, "server.log")
        with open(os.path.join(self.dir, "users.xml"), "w") as f:
            f.write(USERS.format(password=self.PASSWORD))
        self.start()

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.http_port)

    def write_config(self):
        path = os.path.join(self.dir, "config.xml")
        with open(path, "w") as f:
            f.write(CONFIG.format(http=self.http_port, tcp=self.tcp_port,
                                  inter=self.inter_port, dir=self.dir, host=self.host,
                                  remote_servers=self.remote_servers))
        return path

    def start(self, timeout=60):
        """(Re)start on the same ports and data; returns once /ping answers."""
        cfg = self.write_config()
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([SERVER, "--config-file=" + cfg], cwd=self.dir,
                                     stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        logf.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("clickhouse-server exited %d:\n%s" %
                                     (self.proc.returncode, self.tail()))
            if self.ping():
                return self
            time.sleep(0.1)
        raise AssertionError("clickhouse-server did not answer /ping within %ds:\n%s" %
                             (timeout, self.tail()))

    def tail(self, n=4000):
        try:
            with open(self.log, "rb") as f:
                return f.read()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def ping(self):
        try:
            with urllib.request.urlopen(self.url + "/ping", timeout=2) as r:
                return r.read().strip() == b"Ok."
        except (OSError, urllib.error.URLError):
            return False

    def query(self, sql, database=None, user="default", password="", **settings):
        """Runs sql (POST) with settings; returns the answer's text, or raises with
        ClickHouse's error."""
        params = dict(settings, user=user, password=password)
        if database:
            params["database"] = database
        req = urllib.request.Request(self.url + "/?" + urllib.parse.urlencode(params),
                                     data=sql.encode(), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            raise AssertionError("clickhouse: %s: %s" % (sql[:200], e.read().decode()[:2000]))

    def rows(self, sql, database=None):
        """sql with FORMAT JSONEachRow appended: a list of dicts."""
        out = self.query(sql + " FORMAT JSONEachRow", database,
                         output_format_json_quote_64bit_integers=0)
        return [json.loads(l) for l in out.splitlines() if l.strip()]

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def kill(self):
        """SIGKILL (a crash): the data directory stays for start()."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
