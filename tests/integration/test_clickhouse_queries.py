"""The shipped queries (issue 17): `podsnoop-collector query NAME` over a real
clickhouse-server (tests/lib/clickhouse_harness.py) filled through the collector
from synthetic batches with known values; each query's table must hold the
exact figures per pod. One batch reaches ClickHouse twice (through two
collectors, merges stopped): the queries count it once (FINAL). The same .sql
files run with clickhouse-client."""
import gzip
import os
import subprocess
import time

import pytest
from clickhouse_harness import ClickHouse
from podsnoop_harness import REPO
from ship_harness import COLLECTOR, Collector, compile_schema
from test_collector_limits import post

NOW = int(time.time())
NS = 10**9
OPEN = 1 << 26  # lower bound of the agent's last, open bio_hist bucket (µs)
QUERIES = ("bio_latency", "cache_hit_ratio", "exec_failures", "fs_slowest", "losses")


@pytest.fixture(scope="module")
def pb2(tmp_path_factory):
    return compile_schema(str(tmp_path_factory.mktemp("pb2")))


@pytest.fixture(scope="module")
def filled(pb2, tmp_path_factory):
    """A ClickHouse holding the known workload (below), one batch of it twice."""
    tmp = tmp_path_factory.mktemp("chq")
    with ClickHouse(tmp) as ch:
        with Collector(str(tmp), "--clickhouse", ch.url, ndjson=False, name="c1") as c1, \
                Collector(str(tmp), "--clickhouse", ch.url, ndjson=False, name="c2") as c2:
            ch.query("SYSTEM STOP MERGES")  # both copies of the resent batch stay stored
            for i, body in enumerate(workload(pb2)):
                assert post(c1, body)[:2] == (200, "ok")
                if i == 0:  # an agent's retry that reached another replica
                    assert post(c2, body)[:2] == (200, "ok")
            assert c1.stop() == 0 and c2.stop() == 0
        yield ch


def task(t, cgroup, pod=None, pid=100, comm=b"app"):
    t.cgroup_id, t.pid, t.tid, t.comm = cgroup, pid, pid, comm
    if pod:
        t.pod.namespace, t.pod.name, t.pod.uid = pod[0], pod[1], "uid-" + pod[1]
        t.pod.container, t.pod.runtime = "main", "containerd"


WEB, CRON = ("shop", "web"), ("ops", "cron")


def bio_hist(b, ts, cgroup, pod, disk, op, buckets, sum_ns):
    r = b.records.add().bio_hist
    r.ts_ns, r.interval_ns, r.disk, r.op, r.unit = ts * NS, 10 * NS, disk, op, "usecs"
    r.dev_major, r.dev_minor = 253, 0 if disk == b"vda" else 16
    task(r.task, cgroup, pod)
    for lo, n in buckets:
        bk = r.buckets.add()
        bk.lower, bk.count = lo, n
        bk.upper = 0 if lo == OPEN else (1 if lo == 0 else 2 * lo - 1)
    r.count, r.sum_ns = sum(n for _, n in buckets), sum_ns


def batch(pb2, seq, node="node-1", agent="a" * 32):
    b = pb2.Batch(seq=seq, sent_ns=(NOW - 30) * NS + seq)
    b.agent.node, b.agent.agent_id, b.agent.version = node, agent, "test"
    return b


def workload(pb2):
    """The batches; the figures each query must give for them are in the tests."""
    out = []
    b = batch(pb2, 1)
    # web on vda, reads, two intervals: 0-1 µs x10, 2-3 x20, 4-7 x110, 64-127 x10,
    # 1024-2047 x50 (200 requests, 20 ms in all)
    bio_hist(b, NOW - 60, 101, WEB, b"vda", "R", [(0, 10), (2, 20), (4, 60)], 1000000)
    bio_hist(b, NOW - 50, 101, WEB, b"vda", "R", [(4, 50), (64, 10), (1024, 50)], 19000000)
    # web on vda, writes: 8-15 x98, 2 in the open bucket
    bio_hist(b, NOW - 60, 101, WEB, b"vda", "W", [(8, 98), (OPEN, 2)], 300000000)
    # web on vdb, reads: 16-31 x4
    bio_hist(b, NOW - 60, 101, WEB, b"vdb", "R", [(16, 4)], 80000)
    # a cgroup in no pod
    bio_hist(b, NOW - 60, 202, None, b"vda", "R", [(2, 1)], 2500)
    # execs: web 5, 3 failed; cgroup 202: 2, 1 failed; cron: 3, none failed
    for i, (ret, fn) in enumerate([(0, b"/bin/ok"), (-2, b"/bin/missing"), (-2, b"/bin/missing"),
                                   (-13, b"/etc/secret"), (0, b"/bin/ok")]):
        e = b.records.add().exec
        e.ts_ns, e.retval, e.filename = (NOW - 40) * NS + i, ret, fn
        task(e.task, 101, WEB, pid=200 + i)
    for i, ret in enumerate([0, -2]):
        e = b.records.add().exec
        e.ts_ns, e.retval, e.filename = (NOW - 40) * NS + i, ret, b"/bin/nope"
        task(e.task, 202, pid=300 + i)
    for i in range(3):
        e = b.records.add().exec
        e.ts_ns, e.retval, e.filename = (NOW - 40) * NS + i, 0, b"/usr/bin/cron"
        task(e.task, 303, CRON, pid=400 + i)
    lo = b.losses.add()
    lo.tracer, lo.stage, lo.count, lo.total = "exec", "kernel_ringbuf", 3, 3
    out.append(b)

    b = batch(pb2, 2)
    # fs: web 7 operations of 1.1 .. 7.7 ms, cgroup 202 one of 0.5 ms
    for i in range(7):
        f = b.records.add().fs
        f.ts_ns, f.op, f.ret = (NOW - 30 + i) * NS, "read" if i % 2 else "write", 4096 * (i + 1)
        f.latency_ns, f.path, f.file = 1100000 * (i + 1), b"/data/f%d" % i, b"f%d" % i
        f.fstype = "ext4"
        task(f.task, 101, WEB, comm=b"db")
    f = b.records.add().fs
    f.ts_ns, f.op, f.latency_ns, f.path, f.fstype = (NOW - 30) * NS, "fsync", 500000, b"/x", "ext4"
    task(f.task, 202, comm=b"sync")
    # cache: web two intervals with accesses, one without; cgroup 202: nothing read
    for acc, hits, misses, known in [(100, 80, 20, True), (50, 45, 5, True), (0, 0, 30, False)]:
        c = b.records.add().cache
        c.ts_ns, c.interval_ns, c.accesses_known = (NOW - 20) * NS, 10 * NS, known
        c.accesses, c.hits, c.misses, c.dirtied = acc, hits, misses, 2
        task(c.task, 101, WEB)
    c = b.records.add().cache
    c.ts_ns, c.interval_ns, c.accesses_known, c.hit_ratio_known = (NOW - 20) * NS, 10 * NS, True, False
    task(c.task, 202)
    lo = b.losses.add()
    lo.tracer, lo.stage, lo.count, lo.total = "exec", "kernel_ringbuf", 4, 7
    out.append(b)

    # two hours ago: out of the default window (the last hour)
    b = batch(pb2, 3)
    bio_hist(b, NOW - 7200, 101, WEB, b"vda", "R", [(1 << 20, 1000)], 1000 * 1500000000)
    e = b.records.add().exec
    e.ts_ns, e.retval, e.filename = (NOW - 7200) * NS, -1, b"/bin/old"
    task(e.task, 303, CRON)
    out.append(b)

    b = batch(pb2, 1, node="node-2", agent="b" * 32)
    lo = b.losses.add()
    lo.tracer, lo.stage, lo.reason, lo.count, lo.total = "bio", "ship", "spool_full", 5, 5
    lo = b.losses.add()
    lo.tracer, lo.stage, lo.count, lo.total = "fs", "kernel_ringbuf", 0, 9
    out.append(b)
    return [gzip.compress(x.SerializeToString()) for x in out]


def query(ch, *args, check=True):
    p = subprocess.run([COLLECTOR, "query"] + list(args) + ["--clickhouse", ch.url],
                       capture_output=True, text=True, timeout=60)
    if check:
        assert p.returncode == 0 and p.stderr == "", p.stderr
    return p


def table(text):
    """An aligned table -> (header, [rows as lists of str]); the rule line under
    the names gives each column's extent; the last line counts the rows."""
    lines = text.rstrip("\n").split("\n")
    head, rule, body, foot = lines[0], lines[1], lines[2:-1], lines[-1]
    spans, i = [], 0
    for dash in rule.split("  "):
        spans.append((i, i + len(dash)))
        i += len(dash) + 2
    cut = lambda l: [l[a:b].strip() for a, b in spans]  # noqa: E731
    assert foot == "(%d row%s)" % (len(body), "" if len(body) == 1 else "s"), foot
    return cut(head), [cut(l) for l in body]


def test_bio_latency_per_pod_disk_op(filled):
    """p50/p90/p99 are the upper bounds of the log2 buckets that hold them, over all
    the window's histograms of a pod, disk and op together; the open bucket gives
    its lower bound; the pods ordered by p99; the old interval is outside."""
    head, rows = table(query(filled, "bio_latency").stdout)
    assert head == ["pod", "disk", "op", "requests", "mean_us", "p50_us", "p90_us", "p99_us"]
    assert rows == [
        ["shop/web", "vda", "W", "100", "3000", "15", "15", str(OPEN)],
        ["shop/web", "vda", "R", "200", "100", "7", "2047", "2047"],
        ["shop/web", "vdb", "R", "4", "20", "31", "31", "31"],
        ["cgroup 202", "vda", "R", "1", "2.5", "3", "3", "3"],
    ]
    # three hours back: the old interval's 1000 requests of 1-2 s join web's vda reads
    _, rows = table(query(filled, "bio_latency", "--since", "3h").stdout)
    assert rows[1] == ["shop/web", "vda", "R", "1200", "1250016.7", "2097151", "2097151",
                       "2097151"]
    # only the old interval: an absolute window
    _, rows = table(query(filled, "bio_latency", "--since", "@%d" % (NOW - 7300),
                          "--until", "@%d" % (NOW - 7100)).stdout)
    assert rows == [["shop/web", "vda", "R", "1000", "1500000", "2097151", "2097151",
                     "2097151"]]


def test_exec_failures_per_pod(filled):
    """Pods with failed execs, most first; cron, with none failed, is not listed."""
    head, rows = table(query(filled, "exec_failures").stdout)
    assert head == ["pod", "execs", "failed", "failed_pct", "top_errors", "top_files"]
    assert rows == [["shop/web", "5", "3", "60", "-2 -13", "/bin/missing /etc/secret"],
                    ["cgroup 202", "2", "1", "50", "-2", "/bin/nope"]]
    _, rows = table(query(filled, "exec_failures", "--since", "1d").stdout)
    assert rows[-1] == ["ops/cron", "4", "1", "25", "-1", "/bin/old"]


def test_fs_slowest_per_pod(filled):
    """Five a pod, slowest first."""
    head, rows = table(query(filled, "fs_slowest").stdout)
    assert head == ["pod", "op", "latency_ms", "bytes", "comm", "file", "time"]
    when = lambda t: filled.query("SELECT toString(toDateTime(%d))" % t).strip()  # noqa: E731
    assert [r[:6] for r in rows] == [
        ["cgroup 202", "fsync", "0.5", "0", "sync", "/x"],
        ["shop/web", "write", "7.7", "28672", "db", "/data/f6"],
        ["shop/web", "read", "6.6", "24576", "db", "/data/f5"],
        ["shop/web", "write", "5.5", "20480", "db", "/data/f4"],
        ["shop/web", "read", "4.4", "16384", "db", "/data/f3"],
        ["shop/web", "write", "3.3", "12288", "db", "/data/f2"],
    ]
    assert rows[1][6] == when(NOW - 24) and rows[0][6] == when(NOW - 30)


def test_cache_hit_ratio_per_pod(filled):
    """hits / (hits + misses) over the intervals whose accesses are known; a pod that
    read nothing has no ratio ("-")."""
    head, rows = table(query(filled, "cache_hit_ratio").stdout)
    assert head == ["pod", "intervals", "hits_known", "misses_known", "hit_pct",
                    "misses_all", "dirtied_pages", "any_estimated"]
    assert rows == [["shop/web", "3", "125", "25", "83.33", "55", "6", "0"],
                    ["cgroup 202", "1", "0", "0", "-", "0", "0", "0"]]


def test_losses_per_node_and_stage(filled):
    """Summed over the batches (the resent one once); a counter of 0 is not listed."""
    head, rows = table(query(filled, "losses").stdout)
    assert head == ["node", "tracer", "stage", "reason", "lost", "batches", "last"]
    assert [r[:6] for r in rows] == [["node-1", "exec", "kernel_ringbuf", "", "7", "2"],
                                     ["node-2", "bio", "ship", "spool_full", "5", "1"]]
    assert rows[0][6] == filled.query("SELECT toString(toDateTime(%d))" % (NOW - 30)).strip()


def test_resent_batch_stored_twice_counted_once(filled):
    """The premise of the FINAL above: the batch sent through both collectors is in
    the tables twice."""
    assert filled.query("SELECT count() FROM podsnoop.exec").strip() == "21"
    assert filled.query("SELECT count() FROM podsnoop.exec FINAL").strip() == "11"


def test_sql_files_run_with_clickhouse_client(filled, tmp_path):
    """`make install` puts the queries in share/podsnoop/queries/; each runs as it is
    with clickhouse-client (the last hour) and gives the rows the command gives."""
    dest = str(tmp_path / "root")
    subprocess.run(["make", "-s", "-C", REPO, "install", "DESTDIR=" + dest, "PREFIX=/usr"],
                   check=True, capture_output=True, timeout=300)
    qdir = os.path.join(dest, "usr/share/podsnoop/queries")
    assert sorted(os.listdir(qdir)) == sorted(q + ".sql" for q in QUERIES)
    assert os.access(os.path.join(dest, "usr/bin/podsnoop-collector"), os.X_OK)
    for q in QUERIES:
        with open(os.path.join(qdir, q + ".sql")) as f:
            p = subprocess.run(["clickhouse-client", "--port", str(filled.tcp_port),
                                "-d", "podsnoop", "--format", "TabSeparated"], stdin=f,
                               capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        _, rows = table(query(filled, q).stdout)
        assert len(p.stdout.splitlines()) == len(rows) > 0, (q, p.stdout)


def test_query_list_and_sql(filled):
    """--list names every query; --sql shows the window put into the file's SQL."""
    out = query(filled, "--list").stdout
    assert [l.split()[0] for l in out.splitlines()] == list(QUERIES)
    sql = query(filled, "losses", "--sql", "--since", "2h", "--until",
                "2026-01-02T03:04:05Z").stdout
    assert "ts >= (now() - 7200) AND ts <= toDateTime(1767323045)" in sql
    with open(os.path.join(REPO, "collector/queries/losses.sql")) as f:
        want = f.read().replace("/*since*/", "").replace("/*until*/", "")
    assert query(filled, "losses", "--sql").stdout == want


@pytest.mark.parametrize("args, msg", [
    (["nope"], "no query 'nope' (there are bio_latency, cache_hit_ratio, exec_failures, "
     "fs_slowest, losses)"),
    ([], "name one query"),
    (["losses", "--since", "yesterday"], "--since 'yesterday': not a duration"),
    (["losses", "--until", "5x"], "--until '5x': not a duration"),
])
def test_bad_query_or_option_one_line_exit_2(filled, args, msg):
    p = query(filled, *args, check=False)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and p.stderr.startswith("podsnoop-collector: error: ")
    assert msg in p.stderr, p.stderr


def test_clickhouse_unreachable_or_refusing_one_line_exit_2(filled, tmp_path):
    """Nothing listening, a wrong password, a database that is not there: one line
    naming the cause, exit 2, no table."""
    bad = tmp_path / "pw"
    bad.write_text("wrong\n")
    cases = [
        ([COLLECTOR, "query", "losses", "--clickhouse", "http://127.0.0.1:1"],
         "ClickHouse at http://127.0.0.1:1"),
        ([COLLECTOR, "query", "losses", "--clickhouse", filled.url, "--clickhouse-user",
          "podsnoop", "--clickhouse-password-file", str(bad)], "password"),
        ([COLLECTOR, "query", "losses", "--clickhouse", filled.url, "--clickhouse-database",
          "nothere"], "nothere"),
    ]
    for argv, msg in cases:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and p.stdout == "", (argv, p.stdout)
        assert p.stderr.count("\n") == 1 and msg in p.stderr, (argv, p.stderr)
    good = tmp_path / "good"
    good.write_text(ClickHouse.PASSWORD + "\n")
    p = subprocess.run([COLLECTOR, "query", "losses", "--clickhouse", filled.url,
                        "--clickhouse-user", "podsnoop", "--clickhouse-password-file",
                        str(good)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and table(p.stdout)[1], p.stderr
