"""The collector into ClickHouse (issue 17): a real clickhouse-server on loopback
(tests/lib/clickhouse_harness.py), the real agent and collector. The rows must
hold what the NDJSON output writes for the same batches; a batch is answered
200 only once ClickHouse took it; a ClickHouse that cannot take it is 503 with
Retry-After; a ClickHouse the collector cannot use stops it at start."""
import gzip
import json
import os
import subprocess
import threading
import time

import pytest
from clickhouse_harness import ClickHouse
from podsnoop_harness import unique
from ship_harness import COLLECTOR, Collector, compile_schema, free_port
from test_collector_limits import post
from test_ship import FILE_IO, agent_id, exactly_once, gap_free, run_execs, ship_agent

TABLES = ("exec", "open", "bio", "bio_hist", "fs", "cache", "loss")
K8S = {"namespace": "k8s_namespace", "pod": "k8s_pod", "pod_uid": "k8s_pod_uid",
       "container": "k8s_container", "container_id": "container_id", "runtime": "runtime"}


@pytest.fixture(scope="module")
def pb2(tmp_path_factory):
    return compile_schema(str(tmp_path_factory.mktemp("pb2")))


@pytest.fixture
def ch(tmp_path):
    with ClickHouse(tmp_path) as ch:
        yield ch


def ch_args(ch, *extra):
    return ["--clickhouse", ch.url] + list(extra)


def rows(ch, table, db="podsnoop"):
    """Every row of table (FINAL: as the shipped queries see it), 64-bit ints as numbers,
    ts as its Unix time."""
    return ch.rows("SELECT *, toUInt32(ts) AS ts_unix FROM `%s`.`%s` FINAL ORDER BY agent_id, "
                   "seq%s" % (db, table, ", idx" if table != "batches" else ""))


def flat(rec):
    """An NDJSON record as its row's columns: k8s flattened, buckets as arrays,
    booleans as 0/1."""
    out = {}
    for k, v in rec.items():
        if k == "type":
            continue
        if k == "k8s":
            out.update({K8S[kk]: vv for kk, vv in v.items()})
        elif k == "buckets":
            out["buckets_lo"] = [b["lo"] for b in v]
            out["buckets_hi"] = [b["hi"] for b in v]
            out["buckets_count"] = [b["count"] for b in v]
        elif isinstance(v, bool):
            out[k] = int(v)
        else:
            out[k] = v
    return out


def expected_rows(batches):
    """What each table must hold for the collector's NDJSON batches (ship_harness)."""
    exp = {t: [] for t in TABLES + ("batches",)}
    for b in batches:
        head = {"node": b["node"], "agent_id": b["agent_id"], "seq": b["seq"]}
        idx = {t: 0 for t in TABLES}
        for r in b["recs"] + b["loss_recs"]:
            t = r["type"]
            exp[t].append(dict(head, idx=idx[t], ts_unix=r["ts_ns"] // 10**9, **flat(r)))
            idx[t] += 1
        exp["batches"].append(dict(head, sent_ns=b["ts_ns"], ts_unix=b["ts_ns"] // 10**9,
                                   version=b["version"], kernel=b["kernel"],
                                   started_ns=b["started_ns"], records=b["records"],
                                   losses=b["losses"], bytes=b["bytes"],
                                   skipped=b.get("skipped", 0)))
    return exp


def assert_rows_match(ch, batches):
    """Every table holds exactly the NDJSON's records: each field of each record in its
    row, no row more or fewer; a column the NDJSON left out holds its empty value."""
    exp = expected_rows(batches)
    for t, want in exp.items():
        got = rows(ch, t)
        assert len(got) == len(want), "%s: %d rows, NDJSON has %d" % (t, len(got), len(want))
        for g, w in zip(got, want):
            diff = {k: (g.get(k, "<no column>"), v) for k, v in w.items() if g.get(k) != v}
            assert not diff, "%s row %s: (row, NDJSON) differ: %s" % (t, g, diff)
            for k in set(g) - set(w) - {"ts", "received_ns", "raw_bytes"}:
                assert g[k] in (0, "", None, []), "%s.%s = %r, not in the NDJSON" % (t, k, g[k])


def test_every_record_type_rows_hold_the_ndjson(cgroup, tmp_path, ch):
    """exec, open, bio, bio_hist, fs, cache from a test cgroup, agent -> collector ->
    ClickHouse, with --out beside: each table's rows hold what the NDJSON file has for
    the same batches, field by field."""
    tag, path = unique("ch"), str(tmp_path / unique("file"))
    with Collector(str(tmp_path), *ch_args(ch)) as c:
        with ship_agent(cgroup, c.url, "--tracers", "exec,open,bio,fs,cache",
                        "--interval", "1", "--bio-min-us", "0", "--fs-min-us", "0") as a:
            run_execs(cgroup, tag, 5)
            cgroup.run(["/usr/bin/python3", "-c", FILE_IO, path, "20"], check=True)
            time.sleep(2)  # a cache interval ends
            assert a.stop() == 0
        aid = agent_id(a)
        assert c.stop() == 0
    batches = c.batches(aid)
    gap_free(batches)
    exactly_once([r for b in batches for r in b["recs"]], tag, 5)
    kinds = {r["type"] for b in batches for r in b["recs"]}
    assert kinds >= {"exec", "open", "bio", "bio_hist", "fs", "cache"}, kinds
    assert_rows_match(ch, batches)
    execs = [r for r in rows(ch, "exec") if r["args"][1:2] == [tag]]
    assert sorted(int(r["args"][2]) for r in execs) == list(range(5))
    assert all(r["k8s_pod"] == "" and r["node"] for r in execs)


def synthetic(pb2, seq, agent="f" * 32, node="node-ch"):
    """A batch with an exec, a bio_hist and two loss entries (one with a reason)."""
    b = pb2.Batch(seq=seq, sent_ns=1700000000123456789 + seq)
    b.agent.node, b.agent.agent_id, b.agent.version = node, agent, "test"
    r = b.records.add()
    r.exec.ts_ns = 1700000000000000001 + seq
    r.exec.task.pid, r.exec.task.comm = 4242, b"sh\xff"
    r.exec.filename = b"/bin/\n\"x\""
    r.exec.args.extend([b"a b", b"\x01\xc3\xa9", b""])
    r.exec.retval = -2
    lo = b.losses.add()
    lo.tracer, lo.stage, lo.count, lo.total = "exec", "kernel_ringbuf", 3, 7
    lo = b.losses.add()
    lo.tracer, lo.stage, lo.reason, lo.count, lo.total = "exec", "collector", "http_400", 1, 1
    return gzip.compress(b.SerializeToString())


def test_strings_numbers_losses_exact(pb2, tmp_path, ch):
    """Odd bytes in strings, a 64-bit ns timestamp, a negative retval and the loss
    entries (with and without a reason) come out of ClickHouse as the NDJSON has them."""
    with Collector(str(tmp_path), *ch_args(ch)) as c:
        for seq in (1, 2):
            assert post(c, synthetic(pb2, seq))[:2] == (200, "ok")
        assert c.stop() == 0
    assert_rows_match(ch, c.batches())
    assert [r["reason"] for r in rows(ch, "loss")] == ["", "http_400"] * 2
    assert rows(ch, "exec")[0]["ts_ns"] == 1700000000000000002


def test_clickhouse_alone_writes_no_ndjson(pb2, tmp_path, ch, capfd):
    """--clickhouse without --out: the rows are in ClickHouse, nothing on stdout."""
    with Collector(str(tmp_path), *ch_args(ch), ndjson=False) as c:
        assert post(c, synthetic(pb2, 1))[:2] == (200, "ok")
        assert c.stop() == 0
    assert len(rows(ch, "exec")) == 1 and len(rows(ch, "batches")) == 1
    assert not os.path.exists(c.out)


def test_one_insert_per_table_per_batch(pb2, tmp_path, ch):
    """A batch of 500 records is one INSERT into exec, one into loss, one into batches:
    ClickHouse's query_log counts them."""
    b = pb2.Batch(seq=1, sent_ns=1700000000000000000)
    b.agent.node, b.agent.agent_id = "n", "a" * 32
    for i in range(500):
        r = b.records.add()
        r.exec.ts_ns, r.exec.task.pid = 1700000000000000000 + i, i + 1
    lo = b.losses.add()
    lo.tracer, lo.stage, lo.count = "exec", "kernel_ringbuf", 1
    with Collector(str(tmp_path), *ch_args(ch), ndjson=False) as c:
        ch.query("SYSTEM FLUSH LOGS")
        assert post(c, gzip.compress(b.SerializeToString()))[:2] == (200, "ok")
        assert c.stop() == 0
    assert len(rows(ch, "exec")) == 500
    ch.query("SYSTEM FLUSH LOGS")
    inserts = ch.query("SELECT query FROM system.query_log WHERE type = 2 AND "
                       "query LIKE 'INSERT INTO%FORMAT JSONEachRow' ORDER BY event_time")
    assert sorted(inserts.split("\n")[:-1]) == sorted(
        "INSERT INTO `%s` FORMAT JSONEachRow" % t for t in ("exec", "loss", "batches"))


def test_clickhouse_down_is_503_then_accepted(pb2, tmp_path, ch):
    """ClickHouse gone: 503 with Retry-After, nothing answered 200 that is not in it;
    back: the same batch is taken."""
    with Collector(str(tmp_path), *ch_args(ch, "--clickhouse-timeout-ms", "2000")) as c:
        ch.stop()
        status, msg, hdr = post(c, synthetic(pb2, 1))
        assert status == 503 and "ClickHouse" in msg, msg
        assert int(hdr["Retry-After"]) > 0
        assert c.lines() == []  # --out waits for ClickHouse too
        ch.start()
        assert post(c, synthetic(pb2, 1))[:2] == (200, "ok")
        assert c.stop() == 0
    log = "".join(c.stderr)
    assert log.count("ClickHouse outage:") == 1 and "outage over" in log
    assert len(rows(ch, "exec")) == 1 and len(c.batches()) == 1


def test_pool_bounds_the_clickhouse_buffers(pb2, tmp_path, ch):
    """The rows and their gzip come from --max-buffered-bytes' pool: a batch whose rows
    do not fit is 503 (busy), and fits once the pool allows."""
    b = pb2.Batch(seq=1, sent_ns=1700000000000000000)
    b.agent.node, b.agent.agent_id = "n", "b" * 32
    for i in range(3000):
        r = b.records.add()
        r.exec.ts_ns, r.exec.filename = 1700000000000000000 + i, b"/" + b"x" * 200
    body = gzip.compress(b.SerializeToString())
    with Collector(str(tmp_path), *ch_args(ch), "--max-buffered-bytes", "3M",
                   ndjson=False) as c:
        status, msg, hdr = post(c, body)
        assert status == 503 and "to ClickHouse: collector busy" in msg, msg
        assert rows(ch, "exec") == []
        c.stop()
        c.start(*ch_args(ch), "--max-buffered-bytes", "64M")
        assert post(c, body)[:2] == (200, "ok")
        c.stop()
    assert len(rows(ch, "exec")) == 3000


def start_fails(tmp_path, *args):
    """The collector with args: exits nonzero at start; returns its error lines."""
    p = subprocess.run([COLLECTOR, "--listen", "127.0.0.1:0", "--token-file", token(tmp_path)]
                       + list(args), capture_output=True, timeout=60, text=True)
    assert p.returncode != 0, p.stderr
    errs = [l for l in p.stderr.splitlines() if ": error: " in l]
    assert len(errs) == 1 and len(p.stderr.splitlines()) == 1, p.stderr
    return errs[0]


def token(tmp_path):
    path = tmp_path / "token"
    path.write_text("t0k3n\n")
    return str(path)


def test_unusable_clickhouse_stops_the_start(tmp_path, ch):
    """Unreachable URL, wrong password, a database the user cannot create: one line
    saying so, exit nonzero, and it never listens."""
    e = start_fails(tmp_path, "--clickhouse", "http://127.0.0.1:%d" % free_port())
    assert "ClickHouse at http://127.0.0.1" in e and "onnect" in e, e
    bad = tmp_path / "bad"
    bad.write_text("wrong\n")
    e = start_fails(tmp_path, "--clickhouse", ch.url, "--clickhouse-user", "podsnoop",
                    "--clickhouse-password-file", str(bad))
    assert "Wrong password" in e and "wrong" not in e.replace("Wrong", ""), e
    e = start_fails(tmp_path, "--clickhouse", ch.url, "--clickhouse-user", "reader",
                    "--clickhouse-database", "nope")
    assert "cannot create database nope" in e and "readonly" in e, e
    e = start_fails(tmp_path, "--clickhouse", "ftp://x")
    assert "not an http" in e
    # the right password works, and the credentials in a URL are never printed
    good = tmp_path / "good"
    good.write_text(ClickHouse.PASSWORD + "\n")
    with Collector(str(tmp_path), "--clickhouse", ch.url.replace("//", "//u:hidden@"),
                   "--clickhouse-user", "podsnoop", "--clickhouse-password-file",
                   str(good)) as c:
        assert "hidden" not in "".join(c.stderr)
        assert "writing to ClickHouse at %s" % ch.url in "".join(c.stderr)


def count(ch, table, final=True, db="podsnoop"):
    return int(ch.query("SELECT count() FROM `%s`.`%s`%s" % (db, table,
                                                             " FINAL" if final else "")))


def test_same_batch_through_two_collectors_is_one_copy(pb2, tmp_path, ch):
    """Collectors hold no state of their own: the same batch (a retry after a timeout,
    through another replica) given to two of them is stored twice and read once with
    FINAL, and merged into one by ClickHouse (OPTIMIZE ... FINAL forces the merge a
    background merge does at its own time)."""
    with Collector(str(tmp_path), *ch_args(ch), name="c1", ndjson=False) as c1, \
            Collector(str(tmp_path), *ch_args(ch), name="c2", ndjson=False) as c2:
        for seq in (1, 2):
            assert post(c1, synthetic(pb2, seq))[:2] == (200, "ok")
        assert post(c2, synthetic(pb2, 1))[:2] == (200, "ok")
        assert post(c2, synthetic(pb2, 2))[:2] == (200, "ok")
        assert post(c1, synthetic(pb2, 3))[:2] == (200, "ok")
    for t, k in (("exec", 1), ("loss", 2), ("batches", 1)):  # rows per batch
        assert count(ch, t) == 3 * k, t
        ch.query("OPTIMIZE TABLE podsnoop.`%s` FINAL" % t)
        assert count(ch, t, final=False) == 3 * k, t
    assert [r["seq"] for r in rows(ch, "exec")] == [1, 2, 3]


def test_clickhouse_stopped_then_killed_mid_stream_every_record_once(cgroup, tmp_path, ch):
    """The agent ships execs all along; ClickHouse is SIGSTOPped for 6 s, later SIGKILLed
    and restarted. Every exec is in ClickHouse once (FINAL), the batches without a
    gap, no loss counted anywhere, and the collector logged each outage once."""
    tag, n = unique("stop"), 40
    with Collector(str(tmp_path), *ch_args(ch, "--clickhouse-timeout-ms", "1000"),
                   ndjson=False) as c:
        with ship_agent(cgroup, c.url, "--spool-dir", str(tmp_path / "spool")) as a:
            def execs(start):
                cgroup.run(["/bin/sh", "-c", 'i=%d; while [ $i -lt %d ]; do /bin/true %s $i; '
                            'i=$((i+1)); done' % (start, start + n, tag)], check=True)

            def have(k):
                return int(ch.query("SELECT count() FROM podsnoop.exec FINAL WHERE "
                                    "has(args, '%s')" % tag)) >= k

            execs(0)
            wait(lambda: have(n), "the first execs in ClickHouse")
            ch.pause()
            execs(n)
            time.sleep(6)  # the outage: batches of these execs meet a stopped server
            ch.resume()
            execs(2 * n)
            ch.kill()
            execs(3 * n)
            time.sleep(2)  # a second outage: batches meet a dead server
            ch.start()
            execs(4 * n)
            wait(lambda: have(5 * n), "every exec in ClickHouse", timeout=120)
            assert a.stop() == 0
        aid = agent_id(a)
        assert c.stop() == 0
    got = sorted(int(r["args"][2]) for r in rows(ch, "exec") if r["args"][1:2] == [tag])
    assert got == list(range(5 * n)), "missing or doubled: %s" % (
        sorted(set(range(5 * n)) ^ set(got)) or "doubled")
    seqs = [r["seq"] for r in rows(ch, "batches") if r["agent_id"] == aid]
    assert seqs == list(range(1, len(seqs) + 1))
    assert sum(r["count"] for r in rows(ch, "loss")) == 0, rows(ch, "loss")
    assert a.summary("exec")["lost"] == 0 and a.summary("exec")["map_full"] == 0
    log = "".join(c.stderr)
    # one line as each outage begins and one as it ends (the two may be one, when no
    # batch got through in between)
    assert log.count("ClickHouse outage:") == log.count("outage over") >= 1, log
    assert "503" in "".join(a.stderr) or "retry" in "".join(a.stderr).lower()


def wait(pred, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError("no %s within %ss" % (what, timeout))


# the schema the first collector with --clickhouse (version 1) created, abridged to
# batches: what an upgrade finds
V1_BATCHES = """CREATE TABLE podsnoop.batches (node String, agent_id String, seq UInt64,
ts DateTime, sent_ns UInt64, received_ns UInt64, version String, kernel String,
started_ns UInt64, records UInt64, losses UInt64, skipped UInt64, bytes UInt64)
ENGINE = ReplacingMergeTree PARTITION BY toYYYYMMDD(ts) ORDER BY (agent_id, seq)"""
# and bio of version 2, abridged, which lacks merged (version 3)
V2_BIO = """CREATE TABLE podsnoop.bio (node String, agent_id String, seq UInt64, idx UInt32,
ts DateTime, ts_ns UInt64, disk String, bytes UInt64)
ENGINE = ReplacingMergeTree PARTITION BY toYYYYMMDD(ts) ORDER BY (agent_id, seq, idx)"""


def test_schema_twice_and_over_an_older_version(pb2, tmp_path, ch):
    """A database of schema version 1 with rows in it: the collector adds what versions
    2 and 3 have (batches.raw_bytes, bio.merged), records the version, keeps the rows;
    started again, and by two collectors, nothing changes and nothing fails."""
    ch.query("CREATE DATABASE podsnoop")
    ch.query(V1_BATCHES)
    ch.query(V2_BIO)
    ch.query("INSERT INTO podsnoop.bio (node, agent_id, seq, idx, ts, disk, bytes) VALUES "
             "('old', 'o', 1, 0, now(), 'vda', 4096)")
    ch.query("CREATE TABLE podsnoop.schema_version (version UInt32, applied DateTime, "
             "by String) ENGINE = MergeTree ORDER BY version")
    ch.query("INSERT INTO podsnoop.schema_version VALUES (1, now(), 'v1')")
    ch.query("INSERT INTO podsnoop.batches (node, agent_id, seq, ts, records) VALUES "
             "('old', 'o', 1, now(), 7)")
    for i in range(2):
        with Collector(str(tmp_path), *ch_args(ch), name="c%d" % i, ndjson=False) as c:
            assert post(c, synthetic(pb2, 1 + i))[:2] == (200, "ok")
            assert c.stop() == 0
        assert not [l for l in c.stderr if "error" in l or "warning: " in l and "token" not in l]
    b = rows(ch, "batches")
    assert [(r["node"], r["records"]) for r in b] == [("node-ch", 1), ("node-ch", 1),
                                                       ("old", 7)]
    assert b[2]["raw_bytes"] == 0 and b[0]["raw_bytes"] > 0
    assert ch.query("SELECT version FROM podsnoop.schema_version ORDER BY version") == "1\n4\n"
    assert [(r["node"], r["bytes"], r["merged"]) for r in rows(ch, "bio")] == [("old", 4096, 0)]
    cols = ch.query("SELECT name FROM system.columns WHERE database = 'podsnoop' AND "
                    "table = 'batches'").split()
    assert cols.count("raw_bytes") == 1
    # two at once, over a fresh database
    ch.query("DROP DATABASE podsnoop")
    with Collector(str(tmp_path), *ch_args(ch), name="a", ndjson=False) as c1, \
            Collector(str(tmp_path), *ch_args(ch), name="b", ndjson=False) as c2:
        assert post(c1, synthetic(pb2, 1))[:2] == (200, "ok")
        assert post(c2, synthetic(pb2, 2))[:2] == (200, "ok")
    assert count(ch, "exec") == 2


def test_rate_limited_losses_kept_per_cgroup_and_pod(pb2, tmp_path, ch, cgroup):
    """--rate-limit's refusals leave the agent per cgroup in the batches (Loss.task)
    and land in the loss table with the cgroup and the pod: a real flood of opens
    through agent -> collector -> ClickHouse, and a synthetic batch naming a pod."""
    from test_ratelimit import FLOOD_OPENS
    path, started, stop = (str(tmp_path / unique("flood")), str(tmp_path / "started"),
                           str(tmp_path / "stop"))
    open(path, "w").close()
    with Collector(str(tmp_path), *ch_args(ch)) as c:
        with ship_agent(cgroup, c.url, "--tracers", "open", "--rate-limit", "100,100") as a:
            f = cgroup.popen(["/usr/bin/python3", "-c", FLOOD_OPENS, path, started, stop],
                             stdout=subprocess.PIPE)
            while not os.path.exists(started):
                time.sleep(0.01)
            open(stop, "w").close()
            made = json.loads(f.communicate(timeout=120)[0])["opens"]
            assert a.stop() == 0
        assert c.stop() == 0
    limited = a.rate_limited("open")
    assert 0 < limited < made
    got = [r for r in rows(ch, "loss") if r["stage"] == "rate_limited"]
    # every refusal, once, charged to the flooding cgroup and no other
    assert sum(r["count"] for r in got) == limited, got
    assert {(r["tracer"], r["cgroup_id"]) for r in got} == {("open", cgroup.id)}, got
    assert all(r["k8s_pod"] == "" for r in got)  # no CRI here: the pod is unknown
    # the collector's NDJSON says the same
    lines = [r for b in c.batches() for r in b["loss_recs"] if r["stage"] == "rate_limited"]
    assert {l["cgroup_id"] for l in lines} == {cgroup.id} and all("k8s" not in l for l in lines)

    # a pod the agent knew travels with its loss
    ch.query("TRUNCATE TABLE podsnoop.loss")
    b = pb2.Batch(seq=1, sent_ns=1700000000123456789)
    b.agent.node, b.agent.agent_id, b.agent.version = "node-rl", "e" * 32, "test"
    lo = b.losses.add()
    lo.tracer, lo.stage, lo.count, lo.total = "exec", "rate_limited", 40, 90
    lo.task.cgroup_id = 777
    lo.task.pod.namespace, lo.task.pod.name, lo.task.pod.container = "shop", "cart-0", "cart"
    lo = b.losses.add()
    lo.tracer, lo.stage, lo.count, lo.total = "exec", "kernel_ringbuf", 2, 2
    with Collector(str(tmp_path), *ch_args(ch), name="c2") as c:
        assert post(c, gzip.compress(b.SerializeToString()))[:2] == (200, "ok")
        assert c.stop() == 0
    got = sorted(rows(ch, "loss"), key=lambda r: r["stage"])
    assert [(r["stage"], r["count"], r["cgroup_id"], r["k8s_namespace"], r["k8s_pod"],
             r["k8s_container"]) for r in got] == [
        ("kernel_ringbuf", 2, 0, "", "", ""), ("rate_limited", 40, 777, "shop", "cart-0", "cart")]
