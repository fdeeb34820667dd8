"""`make demo` (demo/demo.py): ClickHouse on loopback, the collector, the agent and a
little O_DIRECT workload in a new cgroup, then the per-pod latency table. The table
must have the workload's cgroup, for writes and reads, with at least the workload's
requests, and nothing else (the agent traced that cgroup only); everything it started
is gone after."""
import os
import re
import subprocess
import urllib.request

from podsnoop_harness import REPO, cgroup2_mount


def test_make_demo_prints_the_workloads_latency_rows():
    p = subprocess.run(["make", "-s", "-C", REPO, "demo"], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    m = re.search(r"agent tracing block I/O of cgroup (\S+) \(id (\d+)\)", p.stderr)
    cg_path, cg = cgroup2_mount() + m.group(1), m.group(2)
    lines = p.stdout.rstrip("\n").split("\n")
    assert lines[0].split() == ["pod", "disk", "op", "requests", "mean_us", "p50_us",
                                "p90_us", "p99_us"], p.stdout
    rows = [l.split() for l in lines[2:-1]]
    assert lines[-1] == "(%d rows)" % len(rows)
    assert rows and all(r[:2] == ["cgroup", cg] for r in rows), p.stdout
    ops = {}
    for r in rows:
        ops[r[3]] = ops.get(r[3], 0) + int(r[4])
        p50, p90, p99 = (int(x) for x in r[6:9])
        assert 0 < p50 <= p90 <= p99, r
    # 64 O_DIRECT writes and 64 reads of 64 KiB: each one request at least
    assert ops.get("W", 0) >= 64 and ops.get("R", 0) >= 64, p.stdout
    # stopped and removed
    url = re.search(r"ClickHouse (http://\S+) on loopback, data in (\S+)", p.stderr)
    assert not os.path.exists(url.group(2))
    try:
        urllib.request.urlopen(url.group(1) + "/ping", timeout=2)
        raise AssertionError("ClickHouse still answers")
    except OSError:
        pass
    assert not os.path.exists(cg_path)
    assert "stopped ClickHouse, the collector and the agent" in p.stderr
