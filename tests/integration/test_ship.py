"""Shipping to the reference collector, end to end: the real agent tracing a
test cgroup, the real collector (build/podsnoop-collector) on loopback,
faults injected by the collector or by stopping it. Each fault test checks
that nothing is lost: every exec made in the test arrives exactly once, or
is counted as lost in a batch that arrives."""
import glob
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest
from podsnoop_harness import Agent, Cgroup, host_mntns, unique
from ship_harness import Collector, compile_schema, decode_body, free_port, make_ca
from test_endpoints import get, parse_text, sample

# fast retries, so the faults heal in seconds
FAST = ["--batch-ms", "200", "--retry-min-ms", "50", "--retry-max-ms", "500",
        "--collector-timeout-ms", "2000"]


def ship_agent(cg, url, *extra):
    return Agent("--tracers", "exec", "--cgroup", cg.path, "--collector", url, *FAST, *extra)


def run_execs(cg, tag, n):
    """n execs of /bin/true TAG I from one shell in the cgroup (n+1 exec records)."""
    cg.run(["/bin/sh", "-c",
            'i=0; while [ $i -lt %d ]; do /bin/true %s $i; i=$((i+1)); done' % (n, tag)],
           check=True)


def tagged(recs, tag):
    return [r for r in recs if r.get("type") == "exec" and r["args"][1:2] == [tag]]


def agent_id(agent):
    for l in agent.stderr:
        m = re.search(r"shipping to \S+ as agent ([0-9a-f]{32}) ", l)
        if m:
            return m.group(1)
    raise AssertionError("no agent id in:\n" + "".join(agent.stderr))


def exactly_once(recs, tag, n):
    """Each of the n execs of tag arrived, once."""
    got = sorted(int(r["args"][2]) for r in tagged(recs, tag))
    assert got == list(range(n)), "missing or duplicated: %s" % (
        sorted(set(range(n)) ^ set(got)) or "duplicates")


def gap_free(batches):
    seqs = [b["seq"] for b in batches]
    assert seqs == list(range(1, len(seqs) + 1)), "sequence numbers as they arrived: %s" % seqs


def ship_execs(c, a, cg, tag, n):
    """n execs in cg; wait until the collector has them all; stop the agent (exit 0)."""
    run_execs(cg, tag, n)
    c.wait_for(lambda c: len(tagged(c.lines(), tag)) == n, what="%d execs of %s" % (n, tag))
    assert a.stop() == 0


def delivered_once(c, a, tag, n):
    """After the run: each exec arrived once, the agent's batches without a gap."""
    exactly_once(c.lines(), tag, n)
    gap_free(c.batches(agent_id(a)))


def losses(batches, **match):
    return sum(l["count"] for b in batches for l in b["loss_recs"]
               if all(l.get(k) == v for k, v in match.items()))


@pytest.fixture(scope="module")
def pb2(tmp_path_factory):
    """proto/podsnoop/v1 compiled by Debian's protoc for python3-protobuf."""
    return compile_schema(str(tmp_path_factory.mktemp("pb2")))


def test_end_to_end_unique_execs_gap_free(cgroup, tmp_path):
    tag, other = unique("e2e"), unique("outside")
    with Collector(str(tmp_path)) as c:
        with ship_agent(cgroup, c.url) as a:
            run_execs(cgroup, tag, 200)
            subprocess.run(["/bin/true", other, "0"], check=True)  # not in the cgroup
            c.wait_for(lambda c: len(tagged(c.lines(), tag)) == 200, what="200 execs")
            assert a.stop() == 0
        aid = agent_id(a)
        assert a.lines == [], "--collector without --output must print nothing locally"
        assert any("ship: sent" in l for l in a.stderr)
        c.stop()
    recs = c.lines()
    exactly_once(recs, tag, 200)
    assert tagged(recs, other) == [], "an exec outside the selected cgroup was shipped"
    for r in tagged(recs, tag):
        assert r["cgroup_id"] == cgroup.id and r["mntns_id"] == host_mntns()
        assert r["filename"] == "/bin/true" and r["retval"] == 0 and r["comm"] == "true"
    batches = c.batches(aid)
    assert len(batches) >= 1
    gap_free(batches)
    assert sum(b["records"] for b in batches) == len(c.records())
    assert losses(batches) == 0
    b = batches[0]
    assert b["node"] == socket.gethostname()
    assert b["kernel"] == os.uname().release and b["version"]
    assert b["ts_ns"] >= b["started_ns"]


# Inside the test cgroup: opens of a unique path, O_DIRECT writes and a read back
# (bio, fs on ext4, page cache), with fsync so the fs tracer sees slow-ish ops.
FILE_IO = r"""
import mmap, os, sys
path, n_opens = sys.argv[1], int(sys.argv[2])
for _ in range(n_opens):
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT, 0o644))
buf = mmap.mmap(-1, 65536)
buf.write(b"\xa5" * 65536)
fd = os.open(path, os.O_RDWR | os.O_DIRECT)
for i in range(8):
    os.pwritev(fd, [buf], i * 65536)
os.fsync(fd)
os.close(fd)
with open(path, "rb") as f:
    f.read()
"""


def test_every_record_type_end_to_end(cgroup, tmp_path, pb2):
    """exec, open, bio, bio_hist, fs and cache records from a test cgroup: the collector
    writes exactly what the agent writes locally, and Google's protobuf reads the
    same number of each kind from the bodies."""
    tag, path = unique("all"), str(tmp_path / unique("file"))
    bodies = tmp_path / "bodies"
    bodies.mkdir()
    with Collector(str(tmp_path), "--save-bodies", str(bodies)) as c:
        with ship_agent(cgroup, c.url, "--tracers", "exec,open,bio,fs,cache",
                        "--output", "ndjson", "--interval", "1", "--bio-min-us", "0",
                        "--fs-min-us", "0") as a:
            run_execs(cgroup, tag, 5)
            cgroup.run(["/usr/bin/python3", "-c", FILE_IO, path, "50"], check=True)
            time.sleep(2)  # a cache interval ends
            assert a.stop() == 0
        c.wait_for(lambda c: any("ship: sent" in l for l in a.stderr), what="the agent's exit")
        aid = agent_id(a)
        c.stop()
    local = [r for r in a.records() if r["type"] != "loss"]
    shipped = [r for b in c.batches(aid) for r in b["recs"]]
    key = lambda r: json.dumps(r, sort_keys=True)
    assert sorted(map(key, shipped)) == sorted(map(key, local))
    kinds = {t: [r for r in local if r["type"] == t] for t in
             ("exec", "open", "bio", "bio_hist", "fs", "cache")}
    exactly_once(shipped, tag, 5)
    assert len([r for r in kinds["open"] if r["path"] == path]) >= 50
    assert any(r["cgroup_id"] == cgroup.id and r["bytes"] == 65536 for r in kinds["bio"])
    assert any(r["cgroup_id"] == cgroup.id for r in kinds["bio_hist"])
    assert any(r["file"] == os.path.basename(path) for r in kinds["fs"])
    assert any(r["cgroup_id"] == cgroup.id for r in kinds["cache"])
    gap_free(c.batches(aid))
    counts = {}
    for f in sorted(glob.glob(str(bodies / (aid + "-*.pb.gz")))):
        for r in decode_body(pb2, open(f, "rb").read()).records:
            counts[r.WhichOneof("kind")] = counts.get(r.WhichOneof("kind"), 0) + 1
    assert counts == {t: len(v) for t, v in kinds.items() if v}


def test_node_name_flag_and_env(cgroup, tmp_path):
    with Collector(str(tmp_path)) as c:
        with Agent("--tracers", "exec", "--cgroup", cgroup.path, "--collector", c.url,
                   "--batch-ms", "100", "--node-name", "node-from-flag",
                   env=dict(os.environ, NODE_NAME="node-from-env")) as a:
            cgroup.run(["/bin/true"])
            c.wait_for(lambda c: c.batches(), what="a batch")
            a.stop()
        with Agent("--tracers", "exec", "--cgroup", cgroup.path, "--collector", c.url,
                   "--batch-ms", "100", env=dict(os.environ, NODE_NAME="node-from-env")) as a2:
            cgroup.run(["/bin/true"])
            c.wait_for(lambda c: c.batches(agent_id(a2)), what="a batch")
            a2.stop()
        assert {b["node"] for b in c.batches(agent_id(a))} == {"node-from-flag"}
        assert {b["node"] for b in c.batches(agent_id(a2))} == {"node-from-env"}
        assert agent_id(a) != agent_id(a2), "the agent id must change with each run"


def pb_exec_as_ndjson(m, ts_ns):
    """A podsnoop.v1.Exec decoded by Google's protobuf, in NDJSON's terms."""
    t = m.task
    d = {"type": "exec", "ts_ns": ts_ns, "pid": t.pid, "tid": t.tid, "ppid": t.ppid,
         "uid": t.uid, "gid": t.gid, "comm": t.comm.decode(), "filename": m.filename.decode(),
         "args": [a.decode() for a in m.args], "args_truncated": m.args_truncated,
         "retval": m.retval, "cgroup_id": t.cgroup_id, "mntns_id": t.mntns_id,
         "hook": m.hook}
    if m.read_fault:
        d["read_fault"] = True
    if t.HasField("pod"):
        p = t.pod
        d["k8s"] = {"namespace": p.namespace, "pod": p.name, "pod_uid": p.uid,
                    "container": p.container, "container_id": p.container_id,
                    "runtime": p.runtime}
    return d


def test_google_protobuf_agrees_on_every_field(cgroup, tmp_path, pb2):
    """The batches as sent, decoded by python3-protobuf from our .proto, equal the
    agent's own local NDJSON of the same events, and the collector's output."""
    tag = unique("pb")
    bodies = tmp_path / "bodies"
    bodies.mkdir()
    with Collector(str(tmp_path), "--save-bodies", str(bodies)) as c:
        with ship_agent(cgroup, c.url, "--output", "ndjson", "--batch-records", "7") as a:
            run_execs(cgroup, tag, 30)
            cgroup.run(["/bin/sh", "-c", "exec /nonexistent/%s %s 0 'two words' ''" % (tag, tag)])
            c.wait_for(lambda c: len(tagged(c.lines(), tag)) == 31, what="31 execs")
            assert a.stop() == 0
        aid = agent_id(a)
        c.stop()
    local = {(r["pid"], r["args"][2]): r for r in tagged(a.records(), tag)}
    assert len(local) == 31, "--output ndjson next to --collector prints locally too"
    collected = {(r["pid"], r["args"][2]): r for r in tagged(c.lines(), tag)}
    assert collected == local, "the collector must write what the agent writes locally"

    files = sorted(glob.glob(str(bodies / (aid + "-*.pb.gz"))))
    decoded = [decode_body(pb2, open(f, "rb").read()) for f in files]
    assert [b.seq for b in decoded] == list(range(1, len(decoded) + 1))
    assert len(decoded) >= 5  # 31+ records in batches of at most 7
    seen = {}
    for b, meta in zip(decoded, c.batches(aid)):
        assert b.agent.agent_id == aid and b.agent.node == meta["node"]
        assert b.agent.version == meta["version"] and b.agent.kernel == os.uname().release
        assert b.agent.started_ns == meta["started_ns"] and b.sent_ns == meta["ts_ns"]
        assert len(b.records) == meta["records"] <= 7
        assert len(b.losses) == 0
        for r in b.records:
            assert r.WhichOneof("kind") == "exec"
            d = pb_exec_as_ndjson(r.exec, r.exec.ts_ns)
            if d["args"][1:2] == [tag]:
                seen[(d["pid"], d["args"][2])] = d
    assert seen == local
    failed = [r for r in local.values() if r["retval"] != 0]
    assert len(failed) == 1 and failed[0]["retval"] == -2
    assert failed[0]["args"] == ["/nonexistent/" + tag, tag, "0", "two words", ""]


def test_collector_down_10s_and_back(cgroup, tmp_path):
    tag = unique("down")
    with Collector(str(tmp_path)) as c:
        with ship_agent(cgroup, c.url) as a:
            run_execs(cgroup, tag + "a", 20)
            c.wait_for(lambda c: len(tagged(c.lines(), tag + "a")) == 20, what="first execs")
            c.stop()
            run_execs(cgroup, tag + "b", 20)       # while nobody listens
            time.sleep(10)
            c.start()
            run_execs(cgroup, tag + "c", 20)
            c.wait_for(lambda c: len(tagged(c.lines(), tag + "c")) == 20, timeout=60,
                       what="execs after the outage")
            assert a.stop() == 0
        c.stop()
    recs = c.lines()
    for part in "abc":
        exactly_once(recs, tag + part, 20)
    gap_free(c.batches(agent_id(a)))
    assert losses(c.batches()) == 0
    assert any("Connection refused" in l or "Couldn't connect" in l for l in a.stderr)
    assert any("accepted again" in l for l in a.stderr)


def test_500_then_200(cgroup, tmp_path):
    tag = unique("e500")
    with Collector(str(tmp_path), "--fail-status", "500", "--fail-count", "3",
                   "--fail-message", "database on fire") as c:
        with ship_agent(cgroup, c.url) as a:
            ship_execs(c, a, cgroup, tag, 30)
        c.stop()
    delivered_once(c, a, tag, 30)
    assert sum("fault: answering 500" in l for l in c.stderr) == 3
    assert any("HTTP 500: database on fire; retrying" in l for l in a.stderr)


def test_429_with_retry_after_is_honoured(cgroup, tmp_path):
    tag = unique("e429")
    with Collector(str(tmp_path), "--fail-status", "429", "--fail-count", "2",
                   "--retry-after", "2") as c:
        # without Retry-After the backoff here would be at most 50 ms
        with Agent("--tracers", "exec", "--cgroup", cgroup.path, "--collector", c.url,
                   "--batch-ms", "200", "--retry-min-ms", "10", "--retry-max-ms", "50") as a:
            ship_execs(c, a, cgroup, tag, 10)
        c.stop()
    delivered_once(c, a, tag, 10)
    waits = [l for l in a.stderr if "HTTP 429" in l]
    assert waits and all("retrying in 2000 ms" in l for l in waits), "".join(a.stderr)


@pytest.mark.parametrize("when", ["before", "after"])
def test_stall_longer_than_request_timeout(cgroup, tmp_path, when):
    """The collector holds a request past the agent's timeout, before or after it
    wrote the batch: the retry must neither lose nor duplicate anything."""
    tag = unique("stall")
    extra = ["--stall-after-write"] if when == "after" else []
    with Collector(str(tmp_path), "--stall-ms", "4000", "--stall-count", "1", *extra) as c:
        with ship_agent(cgroup, c.url, "--collector-timeout-ms", "1000") as a:
            ship_execs(c, a, cgroup, tag, 15)
        c.stop()
    delivered_once(c, a, tag, 15)
    assert any("timed out" in l.lower() for l in a.stderr), "".join(a.stderr)
    summary = [l for l in c.stderr if "duplicates" in l][-1]
    dups = int(re.search(r"(\d+) duplicates", summary).group(1))
    assert dups == (1 if when == "after" else 0), summary


def spooled(pb2, spool):
    """Batches in a spool directory, oldest first, decoded with Google's protobuf."""
    return [decode_body(pb2, open(f, "rb").read())
            for f in sorted(glob.glob(os.path.join(spool, "*.batch")))]


def spooled_tags(pb2, spool, tag):
    return sorted(int(r.exec.args[2]) for b in spooled(pb2, spool) for r in b.records
                  if r.exec.args[1:2] == [tag.encode()])


def test_sigkill_while_collector_down_then_restart(cgroup, tmp_path, pb2):
    tag = unique("kill")
    port, spool = free_port(), str(tmp_path / "spool")
    url = "http://127.0.0.1:%d/v1/batches" % port
    a = ship_agent(cgroup, url, "--spool-dir", spool, "--batch-records", "10")
    try:
        run_execs(cgroup, tag + "a", 45)
        deadline = time.time() + 30
        while spooled_tags(pb2, spool, tag + "a") != list(range(45)):
            assert time.time() < deadline, "execs never reached the spool:\n" + "".join(a.stderr)
            time.sleep(0.1)
        old_id = agent_id(a)
        a.stop(signal.SIGKILL)
    finally:
        if a.proc.poll() is None:
            a.stop(signal.SIGKILL)
    n_spooled = len(spooled(pb2, spool))
    assert n_spooled >= 5
    with Collector(str(tmp_path), port=port) as c:
        with ship_agent(cgroup, c.url, "--spool-dir", spool) as b:
            assert any("from an earlier run are sent first" in l for l in b.stderr)
            run_execs(cgroup, tag + "b", 10)
            c.wait_for(lambda c: len(tagged(c.lines(), tag + "b")) == 10, what="new execs")
            assert b.stop() == 0
        c.stop()
    exactly_once(c.lines(), tag + "a", 45)
    exactly_once(c.lines(), tag + "b", 10)
    arrival = [x["agent_id"] for x in c.batches()]
    old = c.batches(old_id)
    assert len(old) == n_spooled
    gap_free(old)                                  # in order, none missing
    assert arrival[:len(old)] == [old_id] * len(old), "spooled batches must go first"
    gap_free(c.batches(agent_id(b)))
    assert glob.glob(os.path.join(spool, "*.batch")) == []


def test_spool_limit_drops_counted_exactly(cgroup, tmp_path):
    """Collector down, a small queue and spool: once both are full, batches are
    dropped; every record is either delivered later or counted in a batch that is."""
    tag, n = unique("full"), 300
    port, spool = free_port(), str(tmp_path / "spool")
    url = "http://127.0.0.1:%d/v1/batches" % port
    with ship_agent(cgroup, url, "--spool-dir", spool, "--spool-max-bytes", "3000",
                    "--queue-max-bytes", "4000", "--batch-records", "5",
                    "--listen", "127.0.0.1:0") as a:
        run_execs(cgroup, tag, n)
        deadline = time.time() + 30
        while not any("batch of" in l and "dropped" in l for l in a.stderr):
            assert time.time() < deadline, "".join(a.stderr)
            time.sleep(0.1)
        time.sleep(1)  # the last records reach a batch (counted either way)
        sizes = [os.path.getsize(f) for f in glob.glob(spool + "/*.batch")]
        m = parse_text(get(a.listen_port(), "/metrics")[2])
        assert sample(m, "podsnoop_spool_bytes") == sum(sizes)
        assert sample(m, "podsnoop_ship_batches_total", result="retried") >= 1
        assert sample(m, "podsnoop_ship_batches_total", result="sent") == 0
        lost_metric = sum(v for (name, labels), v in m.items()
                          if name == "podsnoop_events_lost_total" and
                          ("tracer", "exec") in labels and
                          dict(labels)["stage"] in ("spool_full", "shipping_queue"))
        with Collector(str(tmp_path), port=port) as c:
            c.wait_for(lambda c: losses(c.batches(), tracer="exec", stage="spool") > 0,
                       what="the loss counters")
            assert a.stop() == 0
            c.stop()
    got = len(tagged(c.lines(), tag))
    records = len(c.records())            # the shell's own exec is in the cgroup too
    # the queue fills first when the spool is written more slowly than batches come
    lost = {}
    for l in (l for b in c.batches() for l in b["loss_recs"]):
        lost[(l["stage"], l["reason"])] = lost.get((l["stage"], l["reason"]), 0) + l["count"]
    assert set(lost) <= {("spool", "full"), ("ship_queue", "full")}, lost
    assert 0 < got < n and lost[("spool", "full")] > 0
    assert 3000 - max(sizes) < sum(sizes) <= 3000   # the spool was full, never over
    assert records + sum(lost.values()) == n + 1, "delivered %d + counted lost %s != %d\n%s" % (
        records, lost, n + 1, "".join(a.stderr))
    assert lost_metric == sum(lost.values())    # /metrics said the same before delivery
    gap_free(c.batches(agent_id(a)))       # dropped batches do not use up a number
    assert not any("not reported to the collector" in l for l in a.stderr)


def test_400_dropped_counted_later_batches_go(cgroup, tmp_path):
    tag = unique("e400")
    with Collector(str(tmp_path), "--reject-seq", "2") as c:
        with ship_agent(cgroup, c.url, "--batch-records", "5", "--batch-ms", "60000") as a:
            run_execs(cgroup, tag, 24)     # 25 records: batches 1..5 of 5
            c.wait_for(lambda c: any(l["type"] == "rejected" for l in c.lines()),
                       what="the rejection")
            run_execs(cgroup, tag + "x", 4)
            assert a.stop() == 0
        c.stop()
    rejected = [l for l in c.lines() if l["type"] == "rejected"]
    assert len(rejected) == 1 and rejected[0]["seq"] == 2 and rejected[0]["records"] == 5
    batches = c.batches(agent_id(a))
    assert [b["seq"] for b in batches][:1] == [1] and 2 not in [b["seq"] for b in batches]
    assert max(b["seq"] for b in batches) >= 6, "batches after the rejected one must go"
    assert len(tagged(c.lines(), tag)) == 24 - 5
    exactly_once(c.lines(), tag + "x", 4)
    assert losses(batches, tracer="exec", stage="collector", reason="http_400") == 5
    log = [l for l in a.stderr if "rejected batch 2 with HTTP 400" in l]
    assert log and "rejected by --reject-seq" in log[0] and "5 records counted as lost" in log[0]


def test_token(cgroup, tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text("s3cret-%s\n" % unique())
    bad.write_text("wrong\n")
    tag = unique("tok")
    with Collector(str(tmp_path), "--token-file", str(good)) as c:
        with ship_agent(cgroup, c.url, "--collector-token-file", str(bad)) as a:
            run_execs(cgroup, tag + "bad", 3)
            c.wait_for(lambda c: any("answered 401" in l for l in c.stderr), what="a 401")
            assert a.stop() == 0
        with ship_agent(cgroup, c.url, "--collector-token-file", str(good)) as a2:
            run_execs(cgroup, tag + "good", 3)
            c.wait_for(lambda c: len(tagged(c.lines(), tag + "good")) == 3, what="3 execs")
            assert a2.stop() == 0
        c.stop()
    assert tagged(c.lines(), tag + "bad") == []
    errs = [l for l in a.stderr if "HTTP 401" in l]
    assert errs, "".join(a.stderr)
    assert "error:" in errs[0] and "invalid bearer token" in errs[0]
    assert "check --collector-token-file" in errs[0] and "counted as lost" in errs[0]
    exactly_once(c.lines(), tag + "good", 3)


def test_tls_with_a_test_ca(cgroup, tmp_path):
    pki = make_ca(str(tmp_path))
    tag = unique("tls")
    tls = ["--tls-cert", pki["server_cert"], "--tls-key", pki["server_key"],
           "--tls-client-ca", pki["ca"]]
    with Collector(str(tmp_path), *tls) as c:
        assert c.url.startswith("https://")
        with ship_agent(cgroup, c.url, "--collector-ca", pki["ca"],
                        "--collector-cert", pki["client_cert"],
                        "--collector-key", pki["client_key"]) as a:
            run_execs(cgroup, tag, 5)
            c.wait_for(lambda c: len(tagged(c.lines(), tag)) == 5, what="5 execs over TLS")
            assert a.stop() == 0
        # negative: a collector we cannot verify (no --collector-ca) is never sent to
        with ship_agent(cgroup, c.url, "--collector-cert", pki["client_cert"],
                        "--collector-key", pki["client_key"],
                        "--flush-timeout-ms", "500") as n1:
            run_execs(cgroup, tag + "noca", 2)
            deadline = time.time() + 20
            while not any("certificate" in l.lower() and "retrying" in l for l in n1.stderr):
                assert time.time() < deadline, "".join(n1.stderr)
                time.sleep(0.1)
            assert n1.stop() == 0
        # negative: without a client certificate the collector refuses
        with ship_agent(cgroup, c.url, "--collector-ca", pki["ca"]) as n2:
            run_execs(cgroup, tag + "nocert", 2)
            c.wait_for(lambda c: any("answered 403" in l for l in c.stderr), what="a 403")
            assert n2.stop() == 0
        c.stop()
    exactly_once(c.lines(), tag, 5)
    assert tagged(c.lines(), tag + "noca") == [] and tagged(c.lines(), tag + "nocert") == []
    assert any("HTTP 403" in l for l in n2.stderr)


def test_sigterm_while_down_spools_and_exits_0(cgroup, tmp_path, pb2):
    tag = unique("term")
    port, spool = free_port(), str(tmp_path / "spool")
    url = "http://127.0.0.1:%d/v1/batches" % port
    with ship_agent(cgroup, url, "--spool-dir", spool, "--flush-timeout-ms", "1000") as a:
        run_execs(cgroup, tag, 12)
        assert a.stop() == 0
    assert spooled_tags(pb2, spool, tag) == list(range(12))
    assert any("wait in %s for the next start" % spool in l for l in a.stderr)
    # and without a spool, what cannot be sent is reported lost, not kept quiet
    with ship_agent(cgroup, url, "--flush-timeout-ms", "500") as b:
        run_execs(cgroup, tag + "x", 3)
        assert b.stop() == 0
    assert any("could not be sent" in l and "no --spool-dir" in l for l in b.stderr)
