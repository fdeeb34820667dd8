"""The collector into a ClickHouse cluster (issue 17, --clickhouse-cluster): two real
clickhouse-servers on loopback, 127.0.0.1 and 127.0.0.2 on the same HTTP port, each one
shard of the same remote_servers cluster (tests/lib/clickhouse_harness.py). The
collector makes <type>_local on each and a Distributed <type> over them: every row in
exactly one shard, a batch's copies in the same one (so FINAL still reads it once),
the shipped queries reading both shards, retention on each shard."""
import contextlib
import subprocess
import time

import pytest
import test_clickhouse_queries as shipped
from clickhouse_harness import ClickHouse
from ship_harness import COLLECTOR, Collector, compile_schema, free_port
from test_clickhouse import TABLES, start_fails, synthetic
from test_clickhouse_ops import body
from test_collector_limits import post
from test_ship import agent_id, exactly_once, gap_free, run_execs, ship_agent

# The shipped queries' tests, run here over the cluster's `filled` (below): the
# same figures, read through the Distributed tables.
from test_clickhouse_queries import (  # noqa: F401
    test_bio_latency_per_pod_disk_op, test_cache_hit_ratio_per_pod, test_exec_failures_per_pod,
    test_fs_slowest_per_pod, test_losses_per_node_and_stage,
    test_resent_batch_stored_twice_counted_once, test_sql_files_run_with_clickhouse_client)

CLUSTER = "podsnoop_two"
HOSTS = ("127.0.0.1", "127.0.0.2")


@pytest.fixture(scope="module")
def pb2(tmp_path_factory):
    return compile_schema(str(tmp_path_factory.mktemp("pb2")))


@contextlib.contextmanager
def two_shards(tmp):
    """Both servers, each configured with the cluster of the two (one shard each). One
    HTTP port for both, as the collector reaches every server of a cluster at its
    --clickhouse URL's port; TCP ports of their own, because ClickHouse takes a shard
    whose port is its own and whose address is one of the machine's (127.0.0.1 is, to
    the server on 127.0.0.2) for itself."""
    http = free_port()
    tcp = [free_port() for _ in HOSTS]
    shards = "".join("<shard><replica><host>%s</host><port>%d</port></replica></shard>"
                     % (h, p) for h, p in zip(HOSTS, tcp))
    remote = "<remote_servers><%s>%s</%s></remote_servers>" % (CLUSTER, shards, CLUSTER)
    with ClickHouse(tmp, "ch1", remote, HOSTS[0], (http, tcp[0], free_port())) as a, \
            ClickHouse(tmp, "ch2", remote, HOSTS[1], (http, tcp[1], free_port())) as b:
        yield a, b


@pytest.fixture
def shards(tmp_path):
    with two_shards(tmp_path) as s:
        yield s


def cluster_args(ch, *extra):
    return ["--clickhouse", ch.url, "--clickhouse-cluster", CLUSTER] + list(extra)


def local_keys(ch, table):
    """The (agent_id, seq, idx) of every row stored on this server, copies included."""
    idx = ", idx" if table != "batches" else ""
    return [tuple(l.split("\t")) for l in ch.query(
        "SELECT agent_id, seq%s FROM podsnoop.`%s_local` ORDER BY agent_id, seq%s"
        % (idx, table, idx)).splitlines()]


def seqs(ch, table):
    """The batches in table as the queries see them (FINAL): 18.16 refuses FINAL and
    ORDER BY over a Distributed table in one SELECT unless the sort key is selected."""
    return [int(x) for x in ch.query("SELECT DISTINCT seq FROM (SELECT seq FROM podsnoop.`%s` "
                                     "FINAL) ORDER BY seq" % table).split()]


def count(ch, sql):
    return int(ch.query(sql).strip())


@pytest.fixture(scope="module")
def filled(pb2, tmp_path_factory):
    """test_clickhouse_queries' workload through two collectors into the cluster, one
    collector per server, its first batch through both (merges stopped on both)."""
    tmp = tmp_path_factory.mktemp("chcq")
    with two_shards(tmp) as (a, b):
        with Collector(str(tmp), *cluster_args(a), ndjson=False, name="c1") as c1, \
                Collector(str(tmp), *cluster_args(b), ndjson=False, name="c2") as c2:
            for s in (a, b):  # once the tables are there: it stops their merges
                s.query("SYSTEM STOP MERGES")
            for i, data in enumerate(shipped.workload(pb2)):
                assert post(c1, data)[:2] == (200, "ok")
                if i == 0:
                    assert post(c2, data)[:2] == (200, "ok")
            assert c1.stop() == 0 and c2.stop() == 0
        # the figures need both shards: each holds some of the workload's batches
        for s in (a, b):
            assert count(s, "SELECT count() FROM podsnoop.batches_local") > 0
        yield a


def test_agent_rows_each_in_exactly_one_shard(cgroup, tmp_path, shards):
    """The real agent, many small batches, into the cluster: each table's rows are
    split between the shards, none in both, and together they are every record sent
    (the NDJSON file beside has the same batches)."""
    a, b = shards
    tag = "chc%d" % time.time_ns()
    with Collector(str(tmp_path), *cluster_args(a)) as c:
        with ship_agent(cgroup, c.url, "--batch-records", "5") as ag:
            run_execs(cgroup, tag, 200)
            time.sleep(1)
            assert ag.stop() == 0
        aid = agent_id(ag)
        assert c.stop() == 0
    batches = c.batches(aid)
    gap_free(batches)
    recs = [r for x in batches for r in x["recs"]]
    exactly_once(recs, tag, 200)
    assert len(batches) >= 40
    for t in TABLES + ("batches",):
        ka, kb = local_keys(a, t), local_keys(b, t)
        assert not set(ka) & set(kb), t
        assert len(set(ka)) == len(ka) and len(set(kb)) == len(kb), t
        if t == "exec":
            assert len(ka) + len(kb) == len([r for r in recs if r["type"] == "exec"])
            assert ka and kb, "every batch in one shard: %d, %d" % (len(ka), len(kb))
        if t == "batches":
            assert len(ka) + len(kb) == len(batches)
    # through the Distributed tables, from either server: all of it
    for s in (a, b):
        assert count(s, "SELECT count() FROM podsnoop.batches FINAL") == len(batches)
        assert count(s, "SELECT count() FROM podsnoop.exec FINAL WHERE has(args, '%s')"
                     % tag) == 200


def test_batch_twice_through_two_collectors_one_copy(pb2, tmp_path, shards):
    """The same batches delivered through a collector on each server: both copies of a
    batch are stored on one shard (merges stopped), and read once through FINAL."""
    a, b = shards
    with Collector(str(tmp_path), *cluster_args(a), ndjson=False, name="c1") as c1, \
            Collector(str(tmp_path), *cluster_args(b), ndjson=False, name="c2") as c2:
        for s in (a, b):  # once the tables are there: it stops their merges
            s.query("SYSTEM STOP MERGES")
        for seq in range(1, 21):
            assert post(c1, synthetic(pb2, seq))[:2] == (200, "ok")
            assert post(c2, synthetic(pb2, seq))[:2] == (200, "ok")
        assert c1.stop() == 0 and c2.stop() == 0
    for t in ("exec", "loss", "batches"):
        ka, kb = local_keys(a, t), local_keys(b, t)
        assert not set(ka) & set(kb), t
        assert ka and kb, t
        # every key twice, on its one shard
        for k in ka:
            assert ka.count(k) == 2, (t, k)
        for k in kb:
            assert kb.count(k) == 2, (t, k)
    per_batch = {"exec": 1, "loss": 2, "batches": 1}
    for s in (a, b):
        for t, n in per_batch.items():
            assert count(s, "SELECT count() FROM podsnoop.`%s`" % t) == 2 * 20 * n
            assert count(s, "SELECT count() FROM podsnoop.`%s` FINAL" % t) == 20 * n
        assert seqs(s, "exec") == list(range(1, 21))


def test_shard_down_is_503_then_taken(pb2, tmp_path, shards):
    """One shard's server stopped: every batch is 503 (18.16's synchronous insert
    through a Distributed table connects to every shard, even one that gets no rows),
    nothing is stored on the other shard either; once it is back, the same batches are
    taken, each in one shard, read once."""
    a, b = shards
    with Collector(str(tmp_path), *cluster_args(a, "--clickhouse-timeout-ms", "3000"),
                   ndjson=False) as c:
        b.stop()
        for seq in range(1, 11):
            status, msg, _ = post(c, synthetic(pb2, seq))
            assert status == 503 and "127.0.0.2" in msg, msg
        assert local_keys(a, "batches") == []
        b.start()
        for seq in range(1, 11):
            assert post(c, synthetic(pb2, seq))[:2] == (200, "ok")
        assert c.stop() == 0
    ka, kb = local_keys(a, "batches"), local_keys(b, "batches")
    assert ka and kb and len(ka) + len(kb) == 10 and not set(ka) & set(kb)
    assert seqs(a, "exec") == seqs(b, "batches") == list(range(1, 11))


def test_retention_drops_old_days_on_every_shard(pb2, tmp_path, shards):
    """Batches of 2023 and of now on both shards: --retention-days 7 drops the 2023
    partitions from each shard's local tables, and keeps today's."""
    a, b = shards
    old, now = 1700000000 * 10**9, time.time_ns()
    with Collector(str(tmp_path), *cluster_args(a), ndjson=False) as c:
        for seq in range(1, 21):
            assert post(c, body(pb2, seq, old if seq % 2 else now))[:2] == (200, "ok")
        c.stop()
        for s in (a, b):
            assert count(s, "SELECT count() FROM podsnoop.exec_local WHERE ts < toDateTime("
                         "%d)" % (now // 10**9 - 7 * 86400)) > 0
        c.start(*cluster_args(a, "--retention-days", "7"))
        assert c.stop() == 0
    assert "--retention-days 7: dropped" in "".join(c.stderr)
    for s in (a, b):
        for t in ("exec", "loss", "batches"):
            kept = [int(x) for x in s.query("SELECT DISTINCT seq FROM podsnoop.`%s_local` "
                                            "ORDER BY seq" % t).split()]
            assert kept and all(q % 2 == 0 for q in kept), (t, kept)
    assert seqs(a, "exec") == list(range(2, 21, 2))


def test_unknown_cluster_one_line_exit_nonzero(tmp_path, shards):
    """A cluster name the server has not in remote_servers: one line naming the ones
    it has, exit nonzero."""
    a, _ = shards
    line = start_fails(tmp_path, "--clickhouse", a.url, "--clickhouse-cluster", "nope")
    assert "no cluster 'nope'" in line and CLUSTER in line, line
    p = subprocess.run([COLLECTOR, "--listen", "127.0.0.1:0", "--clickhouse-cluster", CLUSTER],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "--clickhouse-cluster needs --clickhouse" in p.stderr


def test_mode_and_database_must_agree(pb2, tmp_path, shards):
    """A database made without --clickhouse-cluster, then used with it (or the other
    way round) would write past the shards: one line, exit nonzero, nothing made."""
    a, b = shards
    with Collector(str(tmp_path), "--clickhouse", a.url, "--clickhouse-database", "single",
                   ndjson=False) as c:
        assert post(c, synthetic(pb2, 1))[:2] == (200, "ok")
        assert c.stop() == 0
    line = start_fails(tmp_path, *cluster_args(a, "--clickhouse-database", "single"))
    assert "table single." in line and "is ReplacingMergeTree, not Distributed" in line, line
    assert count(b, "SELECT count() FROM system.databases WHERE name = 'single'") == 0
    with Collector(str(tmp_path), *cluster_args(a), ndjson=False) as c:
        assert c.stop() == 0
    line = start_fails(tmp_path, "--clickhouse", a.url)
    assert "table podsnoop." in line and "is Distributed, not ReplacingMergeTree" in line, line


def test_chart_cluster_value_runs_the_collector_over_the_cluster(tmp_path, shards):
    """collectorDeployment.clickhouse.cluster becomes --clickhouse-cluster: the
    rendered args start the real collector, which makes the tables on both servers;
    without the value, no such flag; a name ClickHouse could not have is refused."""
    from test_chart import collector_pod, objects, render
    a, b = shards
    base = ["--set", "collectorDeployment.enabled=true",
            "--set", "collectorDeployment.allowInsecure=true",
            "--set", "collectorDeployment.clickhouse.url=" + a.url,
            "--set", "collectorDeployment.clickhouse.user=",
            "--set", "collectorDeployment.port=%d" % free_port()]
    _, _, c = collector_pod(objects(*base))
    assert "--clickhouse-cluster" not in c["args"]
    _, _, c = collector_pod(objects(*base, "--set",
                                    "collectorDeployment.clickhouse.cluster=" + CLUSTER))
    args = c["args"]
    assert args[args.index("--clickhouse-cluster") + 1] == CLUSTER
    pw = tmp_path / "pw"
    pw.write_text("\n")  # the default user's empty password
    argv = [a.url if x == "$(CLICKHOUSE_URL)" else
            str(pw) if x.startswith("/etc/podsnoop/clickhouse/") else x for x in args]
    with Collector(str(tmp_path), *argv[2:], ndjson=False) as col:
        assert col.stop() == 0
    for s in (a, b):
        assert count(s, "SELECT count() FROM system.tables WHERE database = 'podsnoop' AND "
                     "name IN ('exec', 'exec_local')") == 2
    p = render(*base, "--set", "collectorDeployment.clickhouse.cluster=a b", check=False)
    assert p.returncode != 0 and "cluster" in p.stderr, p.stderr
