"""Test harness for podsnoop's integration tests: run the real agent, make real
cgroups and processes, read the records it prints.

Used by tests/integration/*.py (pytest, run with Debian's /usr/bin/python3).
"""
import json
import os
import select
import signal
import subprocess
import threading
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("PODSNOOP_BUILD", os.path.join(REPO, "build"))
AGENT = os.path.join(BUILD, "podsnoop")


def cgroup2_mount():
    """Where cgroup2 is mounted (the first full mount), from mountinfo."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            if right.split()[0] == "cgroup2" and fields[3] == "/":
                return fields[4].replace("\\040", " ")
    raise RuntimeError("cgroup2 is not mounted")


def host_mntns():
    return os.stat("/proc/self/ns/mnt").st_ino


def unique(prefix="ps"):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:12])


class Cgroup:
    """A cgroup v2 directory made for one test; removed with everything in it."""

    def __init__(self, name=None, parent=None):
        base = parent.path if parent else cgroup2_mount()
        self.name = name or unique("pstest")
        self.path = os.path.join(base, self.name)
        os.mkdir(self.path)
        self.rel = "/" + os.path.relpath(self.path, cgroup2_mount())
        self.id = os.stat(self.path).st_ino
        self.children = []

    def child(self, name=None):
        c = Cgroup(name, parent=self)
        self.children.append(c)
        return c

    def enter_fn(self):
        """A preexec_fn that moves the forked child into this cgroup."""
        procs = os.path.join(self.path, "cgroup.procs")

        def enter():
            with open(procs, "w") as f:
                f.write("0")  # 0: the writing process itself
        return enter

    def run(self, argv, **kw):
        """Run argv inside this cgroup, wait, return the CompletedProcess."""
        return subprocess.run(argv, preexec_fn=self.enter_fn(), **kw)

    def popen(self, argv, **kw):
        return subprocess.Popen(argv, preexec_fn=self.enter_fn(), **kw)

    def remove(self):
        for c in self.children:
            c.remove()
        if not os.path.isdir(self.path):
            return
        deadline = time.time() + 10
        while True:
            with open(os.path.join(self.path, "cgroup.procs")) as f:
                pids = [int(p) for p in f.read().split()]
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.rmdir(self.path)
                return
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class Agent:
    """build/podsnoop running in the background; records are read as they come."""

    def __init__(self, *args, ready_timeout=30, env=None, wrap=()):
        """wrap: a command prefix the agent runs under (e.g. unshare)."""
        self.args = list(wrap) + [AGENT] + [str(a) for a in args]
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env)
        self.lines = []        # raw stdout lines (bytes)
        self.stderr = []       # stderr lines (str)
        self._cond = threading.Condition()
        self._ready = False
        self._threads = [threading.Thread(target=self._read_out, daemon=True),
                         threading.Thread(target=self._read_err, daemon=True)]
        for t in self._threads:
            t.start()
        with self._cond:
            self._cond.wait_for(lambda: self._ready or self.proc.poll() is not None,
                                timeout=ready_timeout)
        if not self._ready:
            self.stop(signal.SIGKILL)
            raise AssertionError("agent did not become ready: %s\n%s" %
                                 (" ".join(self.args), "".join(self.stderr)))

    def _read_out(self):
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()

    def _read_err(self):
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace")
            with self._cond:
                self.stderr.append(line)
                if line.rstrip().endswith("info: ready"):
                    self._ready = True
                self._cond.notify_all()

    def records(self):
        """Every stdout line parsed as JSON (a line that is not JSON fails the test)."""
        with self._cond:
            lines = list(self.lines)
        out = []
        for l in lines:
            try:
                out.append(json.loads(l))
            except ValueError as e:
                raise AssertionError("agent printed invalid JSON (%s): %r" % (e, l))
        return out

    def wait_for(self, pred, timeout=10, what="record"):
        """Wait until some record satisfies pred; return it."""
        deadline = time.time() + timeout
        while True:
            for r in self.records():
                if pred(r):
                    return r
            left = deadline - time.time()
            if left <= 0 or self.proc.poll() is not None:
                raise AssertionError("no %s within %ss; agent stderr:\n%s" %
                                     (what, timeout, "".join(self.stderr)))
            with self._cond:
                self._cond.wait(timeout=min(left, 0.2))

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Signal the agent, wait for it, return its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError("agent ignored %s for %ss" % (sig, timeout))
        for t in self._threads:
            t.join(timeout=5)
        return rc

    def summary(self, tracer):
        """The exit summary counters for a tracer, as a dict."""
        import re
        for line in self.stderr:
            m = re.search(r": %s: seen (\d+), filtered (\d+), emitted (\d+), lost (\d+) "
                          r"\(ring buffer full\), (\d+) \(map full\), read errors (\d+)" % tracer,
                          line)
            if m:
                keys = ("seen", "filtered", "emitted", "lost", "map_full", "read_err")
                return dict(zip(keys, map(int, m.groups())))
        raise AssertionError("no summary for %s in:\n%s" % (tracer, "".join(self.stderr)))

    def rate_limited(self, tracer):
        """The exit summary's count of the tracer's records --rate-limit refused."""
        import re
        for line in self.stderr:
            m = re.search(r": %s: rate limited (\d+) \(--rate-limit " % tracer, line)
            if m:
                return int(m.group(1))
        raise AssertionError("no rate limited line for %s in:\n%s" %
                             (tracer, "".join(self.stderr)))

    def shed(self, tracer):
        """The exit summary's count of the tracer's records --shed refused."""
        import re
        for line in self.stderr:
            m = re.search(r": %s: shed (\d+) \(--shed: " % tracer, line)
            if m:
                return int(m.group(1))
        raise AssertionError("no shed line for %s in:\n%s" % (tracer, "".join(self.stderr)))

    def listen_port(self):
        """The port the agent's --listen endpoints bound (from its log line)."""
        import re
        for line in self.stderr:
            m = re.search(r"serving /healthz /readyz /metrics on \S+ \(port (\d+)\)", line)
            if m:
                return int(m.group(1))
        raise AssertionError("agent is not serving endpoints:\n" + "".join(self.stderr))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.stop(signal.SIGKILL)


def run_agent_once(*args, timeout=30, env=None):
    """Run the agent to completion (bad flags, probe, --duration): rc, stdout, stderr.
    env: variables added to this environment less its OTEL_* ones (None: as it is)."""
    if env is not None:
        env = dict({k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}, **env)
    p = subprocess.run([AGENT] + [str(a) for a in args], capture_output=True, timeout=timeout,
                       env=env)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def make_program(tmpdir, name=None):
    """A uniquely named executable (a copy of /bin/true) to exec."""
    path = os.path.join(tmpdir, name or unique("prog"))
    with open("/bin/true", "rb") as src, open(path, "wb") as dst:
        dst.write(src.read())
    os.chmod(path, 0o755)
    return path
