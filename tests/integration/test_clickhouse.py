"""The collector into ClickHouse (issue 17): a real clickhouse-server on loopback
(tests/lib/clickhouse_harness.py), the real agent and collector. The rows must
hold what the NDJSON output writes for the same batches; a batch is answered
200 only once ClickHouse took it; a ClickHouse that cannot take it is 503 with
Retry-After; a ClickHouse the collector cannot use stops it at start."""
import gzip
import json
import os
import subprocess
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
            for k in set(g) - set(w) - {"ts", "received_ns"}:
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
