#!/usr/bin/python3
"""The central path on one machine (`make demo`, as root): a ClickHouse on loopback
(started as the tests start theirs, tests/lib/clickhouse_harness.py, data in a
temporary directory), the collector writing into it, the agent tracing block I/O
of one new cgroup and shipping to the collector, a little workload in that cgroup
(O_DIRECT writes and reads of a file under --dir), then the per-pod latency query's
table (`podsnoop-collector query bio_latency`) on stdout. Everything it started is
stopped and removed at the end; progress goes to stderr.

    demo/demo.py [--dir /var/tmp] [--keep-seconds N]
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))

from clickhouse_harness import ClickHouse  # noqa: E402
from podsnoop_harness import AGENT, Cgroup  # noqa: E402
from ship_harness import COLLECTOR  # noqa: E402

# O_DIRECT: the page cache stays out, every write and read is a block request
WORKLOAD = r"""
import mmap, os, sys
path, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
buf = mmap.mmap(-1, size)
buf.write(b"\x5a" * size)
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o600)
for i in range(n):
    assert os.pwritev(fd, [buf], i * size) == size
os.fsync(fd)
for i in range(n):
    assert os.preadv(fd, [buf], i * size) == size
os.close(fd)
"""
IOS, IO_SIZE = 64, 64 * 1024


def say(msg):
    print("demo: " + msg, file=sys.stderr, flush=True)


class Proc:
    """A background process whose stderr is kept, waited for a line."""

    def __init__(self, argv, ready):
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.lines, self.cond, self.found = [], threading.Condition(), None
        self.ready = re.compile(ready)
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line)
                m = self.ready.search(line)
                if m and not self.found:
                    self.found = m
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_ready(self, what, timeout=30):
        with self.cond:
            self.cond.wait_for(lambda: self.found or self.proc.poll() is not None, timeout)
        if not self.found:
            raise SystemExit("demo: %s did not start:\n%s" % (what, "".join(self.lines)))
        return self.found

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", default="/var/tmp",
                    help="where the workload's file goes (on a disk, not tmpfs)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("demo: run as root (the agent loads BPF programs)")
    for f in (AGENT, COLLECTOR):
        if not os.access(f, os.X_OK):
            raise SystemExit("demo: %s is missing: `make` builds it" % f)
    with tempfile.TemporaryDirectory(prefix="podsnoop-demo-") as tmp, ClickHouse(tmp) as ch, \
            Cgroup("podsnoop-demo-%d" % os.getpid()) as cg:
        say("ClickHouse %s on loopback, data in %s" % (ch.url, tmp))
        coll = Proc([COLLECTOR, "--listen", "127.0.0.1:0", "--clickhouse", ch.url],
                    r"listening on http://[\d.]+:(\d+)/")
        agent = None
        try:
            port = int(coll.wait_ready("the collector").group(1))
            say("collector on 127.0.0.1:%d, writing into ClickHouse" % port)
            agent = Proc([AGENT, "--tracers", "bio", "--cgroup", cg.path, "--interval", "1",
                          "--collector", "http://127.0.0.1:%d" % port, "--batch-ms", "200"],
                         r"info: ready$")
            agent.wait_ready("the agent")
            say("agent tracing block I/O of cgroup %s (id %d)" % (cg.rel, cg.id))
            path = os.path.join(args.dir, "podsnoop-demo-%d.dat" % os.getpid())
            try:
                cg.run(["/usr/bin/python3", "-c", WORKLOAD, path, str(IOS), str(IO_SIZE)],
                       check=True)
            finally:
                if os.path.exists(path):
                    os.unlink(path)
            say("workload done: %d O_DIRECT writes and %d reads of %d KiB in %s" %
                (IOS, IOS, IO_SIZE // 1024, args.dir))
            # the agent's histograms end with the interval; stopping it ships the rest
            time.sleep(1.5)
            rc = agent.stop()
            if rc != 0:
                raise SystemExit("demo: the agent exited %d:\n%s" % (rc, "".join(agent.lines)))
            deadline = time.time() + 30
            sql = "SELECT count() FROM podsnoop.bio_hist FINAL WHERE cgroup_id = %d" % cg.id
            while int(ch.query(sql)) == 0:
                if time.time() > deadline:
                    raise SystemExit("demo: no bio_hist row for the cgroup in ClickHouse")
                time.sleep(0.2)
            say("podsnoop-collector query bio_latency --clickhouse %s" % ch.url)
            p = subprocess.run([COLLECTOR, "query", "bio_latency", "--clickhouse", ch.url],
                               stdout=sys.stdout, stderr=sys.stderr)
            if p.returncode != 0:
                raise SystemExit(p.returncode)
        finally:
            if agent:
                agent.stop()
            coll.stop()
    say("stopped ClickHouse, the collector and the agent; removed their data")


if __name__ == "__main__":
    main()
