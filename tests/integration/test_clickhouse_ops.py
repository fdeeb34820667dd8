"""Running the collector into ClickHouse (issue 17): --retention-days, the collector's
own /metrics, the outage log. A real clickhouse-server on loopback
(tests/lib/clickhouse_harness.py), the real collector; batches are made here, with the
record times each test needs."""
import gzip
import subprocess
import time

import pytest
from clickhouse_harness import ClickHouse
from ship_harness import COLLECTOR, Collector, compile_schema
from test_collector_limits import post
from test_endpoints import get, parse_text, sample

DAY = 86400 * 10**9


@pytest.fixture(scope="module")
def pb2(tmp_path_factory):
    return compile_schema(str(tmp_path_factory.mktemp("pb2")))


@pytest.fixture
def ch(tmp_path):
    with ClickHouse(tmp_path) as ch:
        yield ch


def body(pb2, seq, ts_ns, n=1, agent="r" * 32):
    """A batch sent at ts_ns with n execs of that time and one loss entry."""
    b = pb2.Batch(seq=seq, sent_ns=ts_ns)
    b.agent.node, b.agent.agent_id, b.agent.version = "node-r", agent, "test"
    for i in range(n):
        r = b.records.add()
        r.exec.ts_ns, r.exec.task.pid = ts_ns + i, 100 + i
        r.exec.args.extend([b"true", b"%d" % seq])
    lo = b.losses.add()
    lo.tracer, lo.stage, lo.count = "exec", "kernel_ringbuf", 0
    return gzip.compress(b.SerializeToString())


def seqs(ch, table):
    return [int(s) for s in ch.query("SELECT DISTINCT seq FROM podsnoop.`%s` FINAL ORDER BY "
                                     "seq" % table).split()]


def wait(pred, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError("no %s within %ss" % (what, timeout))


def test_retention_drops_old_days_keeps_recent(pb2, tmp_path, ch):
    """Batches of 2023, of 5 days ago and of now: without --retention-days (0, the
    default) all stay, restarts included; --retention-days 7 drops the 2023 day at start
    from every table, keeps the others; --retention-days 3 drops the 5-days-old one; a
    2023 batch arriving later goes at the next periodic check."""
    now = time.time_ns()
    old, five = 1700000000 * 10**9, now - 5 * DAY
    args = ["--clickhouse", ch.url]
    with Collector(str(tmp_path), *args, ndjson=False) as c:
        for seq, ts in ((1, old), (2, five), (3, now)):
            assert post(c, body(pb2, seq, ts))[:2] == (200, "ok")
        c.stop()
        c.start(*args, "--retention-days", "0")
        c.stop()
        for t in ("exec", "loss", "batches"):
            assert seqs(ch, t) == [1, 2, 3], t
        c.start(*args, "--retention-days", "7")
        for t in ("exec", "loss", "batches"):
            assert seqs(ch, t) == [2, 3], t
        assert "--retention-days 7: dropped 3 day partitions" in "".join(c.stderr)
        c.stop()
        c.start(*args, "--retention-days", "3", "--retention-check-s", "1")
        for t in ("exec", "loss", "batches"):
            assert seqs(ch, t) == [3], t
        assert post(c, body(pb2, 4, old + 3 * DAY))[:2] == (200, "ok")
        assert post(c, body(pb2, 5, now))[:2] == (200, "ok")
        # one pass drops the tables one after another: wait for each
        wait(lambda: seqs(ch, "exec") == [3, 5], "the late 2023 batch dropped")
        wait(lambda: seqs(ch, "batches") == [3, 5], "the late 2023 batches row dropped")
        wait(lambda: seqs(ch, "loss") == [3, 5], "the late 2023 loss rows dropped")
        assert c.stop() == 0
    # other tables of the database are not ours to drop
    assert ch.query("SELECT count() FROM podsnoop.schema_version") != "0\n"


def start_fails(*args):
    p = subprocess.run([COLLECTOR, "--listen", "127.0.0.1:0"] + list(args),
                       capture_output=True, timeout=30, text=True)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and ": error: " in lines[0], p.stderr
    return lines[0]


def test_retention_flag_checked():
    """A negative, non-numeric or huge --retention-days, a zero --retention-check-s, and
    --retention-days without --clickhouse: one line, exit 2."""
    url = ["--clickhouse", "http://127.0.0.1:1"]
    for bad in ("-1", "x", "7d", "100001"):
        assert "--retention-days: '%s' is not a number" % bad in start_fails(
            *url, "--retention-days", bad)
    assert "--retention-check-s: '0'" in start_fails(*url, "--retention-days", "1",
                                                      "--retention-check-s", "0")
    assert "--retention-days needs --clickhouse" in start_fails("--retention-days", "3")


def test_outage_is_two_log_lines_with_duration_and_refused(pb2, tmp_path, ch):
    """ClickHouse down for three batches: one line as the outage begins, none per
    refused batch, one as it ends saying how long it lasted and that 3 were refused."""
    with Collector(str(tmp_path), "--clickhouse", ch.url, "--clickhouse-timeout-ms", "2000",
                   ndjson=False) as c:
        ch.stop()
        for seq in (1, 2, 3):
            assert post(c, body(pb2, seq, time.time_ns()))[0] == 503
        ch.start()
        assert post(c, body(pb2, 4, time.time_ns()))[:2] == (200, "ok")
        assert c.stop() == 0
    log = "".join(c.stderr)
    assert log.count("ClickHouse outage:") == 1, log
    over = [l for l in c.stderr if "ClickHouse outage over after" in l]
    assert len(over) == 1 and "3 batches were answered 503" in over[0], log
    assert float(over[0].split("outage over after ")[1].split(" s")[0]) > 0


def scrape(c):
    """The collector's /metrics, parsed (test_endpoints.parse_text)."""
    status, ctype, text = get(c.port, "/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), (status, ctype)
    return parse_text(text)


def test_metrics_count_rows_inserts_failures_outages(pb2, tmp_path, ch):
    """/metrics after 3 batches of 2 execs and a loss entry: rows per table, one insert
    per table per batch, each timed; ClickHouse stopped: the failed inserts, the refused
    batches and one outage, up 0; back: up 1, the outage still counted once."""
    with Collector(str(tmp_path), "--clickhouse", ch.url, "--clickhouse-timeout-ms", "2000",
                   ndjson=False) as c:
        m = scrape(c)
        assert sample(m, "podsnoop_collector_clickhouse_inserts_total") == 0
        for seq in (1, 2, 3):
            assert post(c, body(pb2, seq, time.time_ns(), n=2))[:2] == (200, "ok")
        m = scrape(c)
        want = {"exec": 6, "loss": 3, "batches": 3, "open": 0, "bio": 0, "bio_hist": 0,
                "fs": 0, "cache": 0}
        for t, n in want.items():
            assert sample(m, "podsnoop_collector_clickhouse_rows_total", table=t) == n, t
        assert sample(m, "podsnoop_collector_clickhouse_inserts_total") == 9
        assert sample(m, "podsnoop_collector_clickhouse_insert_seconds_count") == 9
        assert sample(m, "podsnoop_collector_clickhouse_insert_seconds_bucket", le="+Inf") == 9
        assert sample(m, "podsnoop_collector_clickhouse_insert_seconds_sum") > 0
        assert sample(m, "podsnoop_collector_batches_total") == 3
        assert sample(m, "podsnoop_collector_records_total") == 6
        for name, v in (("inserts_failed_total", 0), ("batches_refused_total", 0),
                        ("outages_total", 0), ("up", 1)):
            assert sample(m, "podsnoop_collector_clickhouse_" + name) == v, name
        ch.stop()
        for seq in (4, 5):
            assert post(c, body(pb2, seq, time.time_ns()))[0] == 503
        m = scrape(c)
        # the first insert of each batch fails, and the batch stops there
        for name, v in (("inserts_failed_total", 2), ("batches_refused_total", 2),
                        ("outages_total", 1), ("up", 0), ("inserts_total", 9)):
            assert sample(m, "podsnoop_collector_clickhouse_" + name) == v, name
        ch.start()
        assert post(c, body(pb2, 4, time.time_ns()))[:2] == (200, "ok")
        m = scrape(c)
        for name, v in (("inserts_failed_total", 2), ("outages_total", 1), ("up", 1),
                        ("inserts_total", 12)):
            assert sample(m, "podsnoop_collector_clickhouse_" + name) == v, name
        assert sample(m, "podsnoop_collector_clickhouse_rows_total", table="exec") == 7
        assert c.stop() == 0


def test_metrics_without_clickhouse_have_no_clickhouse_families(tmp_path):
    """The NDJSON collector's /metrics: its own counters, none of ClickHouse's."""
    with Collector(str(tmp_path)) as c:
        m = scrape(c)
        assert sample(m, "podsnoop_collector_batches_total") == 0
        assert not [k for k in m if k[0].startswith("podsnoop_collector_clickhouse_")]
        assert c.stop() == 0
