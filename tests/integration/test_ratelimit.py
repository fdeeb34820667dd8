"""--rate-limit against the real kernel: a token bucket per (cgroup, tracer)
before the ring buffer. A flooding cgroup is held to its limit while the
agent is starved of CPU, a quiet cgroup loses nothing, and every refused
record is counted in loss records that name the flooder and no other."""
import json
import os
import signal
import subprocess
import time

from podsnoop_harness import Agent, Cgroup, run_agent_once, unique

PY = "/usr/bin/python3"

# Opens on one path, at least 50000 and until the stop file exists, counted;
# the stop file is looked for with stat() (not an open) so that the flooder's
# only opens during the flood are the counted ones. mkdir() says it has
# started. Python's own opens at start-up come first, inside the burst.
FLOOD_OPENS = r"""
import json, os, sys
path, started, stop = sys.argv[1:4]
n = 0
while True:
    for _ in range(1000):
        os.close(os.open(path, os.O_RDONLY))
    n += 1000
    if n == 1000:
        os.mkdir(started)
    if n >= 50000 and os.path.exists(stop):
        break
print(json.dumps({"opens": n}))
"""

OPEN_UNIQUE = r"""
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    os.close(os.open(os.path.join(d, "q%03d" % i), os.O_RDONLY | os.O_CREAT, 0o600))
"""


def rl_losses(records, tracer, stage="rate_limited"):
    return [r for r in records if r.get("type") == "loss" and r["tracer"] == tracer
            and r["stage"] == stage]


def wait_path(path, timeout=60):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        assert time.time() < deadline, "%s never appeared" % path
        time.sleep(0.01)


def test_bad_values_exit_2_with_one_line():
    for bad in ("x", "-1", "1,2,3", "0,5", "10,0", "10,", ",10", "100000001", "10,1000000001"):
        rc, out, err = run_agent_once("--rate-limit", bad, "--check-config")
        assert rc == 2, (bad, rc, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "--rate-limit" in lines[0], (bad, err)


def test_check_config_shows_the_limit_and_its_default():
    rc, out, _ = run_agent_once("--check-config")
    assert rc == 0 and "rate-limit: 20000,100000\n" in out
    rc, out, _ = run_agent_once("--check-config", "--rate-limit", "500")
    assert rc == 0 and "rate-limit: 500,2500\n" in out
    rc, out, _ = run_agent_once("--check-config", "--rate-limit", "500,7")
    assert rc == 0 and "rate-limit: 500,7\n" in out
    rc, out, _ = run_agent_once("--check-config", "--rate-limit", "0")
    assert rc == 0 and "rate-limit: off\n" in out


def test_open_flood_is_held_to_its_bucket_and_a_quiet_cgroup_loses_nothing(tmp_path):
    top = Cgroup()
    flooder, quiet = top.child(), top.child()
    target = str(tmp_path / unique("flood"))
    open(target, "w").close()
    qdir = tmp_path / unique("quiet")
    qdir.mkdir()
    started, stop = str(tmp_path / "started"), str(tmp_path / "stop")
    try:
        # The agent starved: nice 19 on the flooder's CPU. What the buckets let
        # through in the flood's time (a burst of 1000 + 200 a second, about 150
        # bytes each, and the quiet cgroup's 360 with Python's own) fits the
        # 1 MiB ring for 25 s of flood, so nothing but the limiter may refuse a
        # record however slowly the agent reads; the flood alone (7 MB) fills
        # it many times over.
        with Agent("--tracers", "open", "--cgroup", top.path, "--cri-socket", "none",
                   "--rate-limit", "200,1000", "--ringbuf-kb", "1024",
                   wrap=("taskset", "-c", "0", "nice", "-n", "19")) as a:
            t0 = time.monotonic()
            f = flooder.popen(["taskset", "-c", "0", PY, "-c", FLOOD_OPENS, target, started,
                               stop], stdout=subprocess.PIPE)
            wait_path(started)
            quiet.run(["taskset", "-c", "1", PY, "-c", OPEN_UNIQUE, str(qdir), "300"],
                      check=True)
            open(stop, "w").close()
            made = json.loads(f.communicate(timeout=120)[0])["opens"]
            flood_s = time.monotonic() - t0
            quiet_paths = {str(qdir / ("q%03d" % i)) for i in range(300)}
            deadline = time.time() + 60
            while time.time() < deadline:
                got = {r["path"] for r in a.records() if r.get("type") == "open"
                       and r["cgroup_id"] == quiet.id}
                if quiet_paths <= got:
                    break
                time.sleep(0.1)
            assert a.stop() == 0
        recs = a.records()
        got = {r["path"] for r in recs if r.get("type") == "open" and r["cgroup_id"] == quiet.id}
        assert quiet_paths <= got, "quiet cgroup lost %d of its 300 opens" % len(quiet_paths - got)
        delivered = sum(1 for r in recs if r.get("type") == "open" and r["path"] == target)
        losses = rl_losses(recs, "open")
        limited = sum(l["count"] for l in losses)
        shed = sum(l["count"] for l in rl_losses(recs, "open", "shed"))
        # the bucket's bound: the burst and the rate over (at most) the flood's time
        assert 0 < delivered <= 1000 + 200 * (flood_s + 1), (delivered, flood_s)
        assert delivered + limited + shed == made, (delivered, limited, shed, made)
        # the losses name the flooder, and no other cgroup
        assert losses and {l["cgroup_id"] for l in losses} == {flooder.id}, losses
        assert all(l["count"] > 0 for l in losses)
        assert losses[-1]["total"] == limited
        assert a.rate_limited("open") == limited
        s = a.summary("open")
        assert s["lost"] == 0 and s["map_full"] == 0, s
    finally:
        top.remove()


def test_rate_limit_0_refuses_nothing(cgroup, tmp_path):
    path = str(tmp_path / unique("opened"))
    open(path, "w").close()
    code = "import os, sys\nfor _ in range(3000): os.close(os.open(sys.argv[1], os.O_RDONLY))"
    with Agent("--tracers", "open", "--cgroup", cgroup.path, "--rate-limit", "0") as a:
        cgroup.run([PY, "-c", code, path], check=True)
        deadline = time.time() + 30
        while (sum(1 for r in a.records() if r.get("type") == "open" and r["path"] == path)
               < 3000 and time.time() < deadline):
            time.sleep(0.05)
        assert a.stop() == 0
    recs = a.records()
    assert sum(1 for r in recs if r.get("type") == "open" and r["path"] == path) == 3000
    assert not rl_losses(recs, "open")
    # the same opens under a small bucket are refused: the limit is what made the difference
    with Agent("--tracers", "open", "--cgroup", cgroup.path, "--rate-limit", "100,10") as a:
        cgroup.run([PY, "-c", code, path], check=True)
        assert a.stop() == 0
    recs = a.records()
    delivered = sum(1 for r in recs if r.get("type") == "open" and r["path"] == path)
    assert delivered < 3000
    assert delivered + sum(l["count"] for l in rl_losses(recs, "open")) >= 3000


def agent_maps(pid, name):
    """bpftool's dumps of the agent's BPF maps called name: [(map, dump)]. Works on a
    stopped agent too: bpftool reads the maps by id."""
    ids = set()
    for fd in os.listdir("/proc/%d/fdinfo" % pid):
        try:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                info = dict((k.strip(), v.strip()) for k, v in
                            (l.split(":", 1) for l in f.read().splitlines() if ":" in l))
        except OSError:
            continue
        if "map_id" in info:
            ids.add(int(info["map_id"]))
    show = json.loads(subprocess.run(["bpftool", "map", "show", "-j"], capture_output=True,
                                     text=True, check=True).stdout)
    return [(m, json.loads(subprocess.run(["bpftool", "map", "dump", "id", str(m["id"]), "-j"],
                                          capture_output=True, text=True, check=True).stdout))
            for m in show if m["id"] in ids and m.get("name") == name]


def buckets(pid):
    """The agent's --rate-limit buckets, {cgroup id: struct ps_rl_val as a dict}, of
    every limited tracer it runs (read through bpftool with the map's BTF)."""
    out = {}
    for m, dump in agent_maps(pid, "ps_rl"):
        if m["max_entries"] > 1:
            for e in dump:
                out[e["formatted"]["key"]] = e["formatted"]["value"]
    return out


PACED_OPENS = r"""
import os, sys, time
path, n, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
for _ in range(n):
    os.close(os.open(path, os.O_RDONLY))
    time.sleep(gap)
"""

def test_below_the_limit_nothing_is_refused(cgroup, tmp_path):
    """Opens at most every 2 ms against 1000 a second: a sleep is never shorter
    than asked, so the records never come faster than half the rate and the
    bucket never empties, however the machine schedules them."""
    path = str(tmp_path / unique("paced"))
    open(path, "w").close()
    with Agent("--tracers", "open", "--cgroup", cgroup.path, "--rate-limit", "1000,100") as a:
        cgroup.run([PY, "-c", PACED_OPENS, path, "500", "0.002"], check=True)
        deadline = time.time() + 30
        while (sum(1 for r in a.records() if r.get("type") == "open" and r["path"] == path)
               < 500 and time.time() < deadline):
            time.sleep(0.05)
        b = buckets(a.proc.pid)[cgroup.id]
        assert a.stop() == 0
    recs = a.records()
    assert sum(1 for r in recs if r.get("type") == "open" and r["path"] == path) == 500
    assert b["dropped"] == 0 and b["passed"] >= 500, b
    assert not rl_losses(recs, "open")
    assert a.rate_limited("open") == 0


def test_above_the_limit_delivered_is_the_rate_times_the_time(cgroup, tmp_path):
    """A flood against 1000 a second, burst 100, counted against the bucket's
    own clock: the time the cgroup kept it from filling (its span less the time
    it sat full, when the flooder was off the CPU) times the rate, plus the
    burst. Exact up to a record whatever the scheduling; asked within 10%."""
    rate, burst = 1000, 100
    path = str(tmp_path / unique("flood"))
    open(path, "w").close()
    with Agent("--tracers", "open", "--cgroup", cgroup.path,
               "--rate-limit", "%d,%d" % (rate, burst)) as a:
        started, stop = str(tmp_path / "started"), str(tmp_path / "stop")
        f = cgroup.popen([PY, "-c", FLOOD_OPENS, path, started, stop], stdout=subprocess.PIPE)
        wait_path(started)
        deadline = time.time() + 120
        while True:     # until the bucket has been kept busy for 2 s of its own clock
            b = buckets(a.proc.pid)[cgroup.id]
            if b["last_ns"] - b["first_ns"] - b["idle_ns"] >= 2 * 10**9:
                break
            assert time.time() < deadline, b
            time.sleep(0.2)
        open(stop, "w").close()
        f.communicate(timeout=120)
        b = buckets(a.proc.pid)[cgroup.id]
        assert a.stop() == 0
    recs = a.records()
    delivered = sum(1 for r in recs if r.get("type") == "open" and r["cgroup_id"] == cgroup.id)
    limited = [l for l in rl_losses(recs, "open") if l.get("cgroup_id") == cgroup.id]
    period = 10**9 // rate
    assert b["dropped"] > 10 * b["passed"], b          # a flood, well above the limit
    # the kernel's books: what it let through is what arrived, what it refused was said
    assert b["passed"] == delivered and b["dropped"] == sum(l["count"] for l in limited), b
    assert b["tat_ns"] == b["first_ns"] + b["idle_ns"] + b["passed"] * period, b
    busy_ns = b["last_ns"] - b["first_ns"] - b["idle_ns"]
    expect = burst + rate * busy_ns / 1e9
    assert abs(delivered - expect) <= 0.1 * rate * busy_ns / 1e9, (delivered, expect, b)
    assert delivered <= expect + 1                      # GCRA's bound, to the record


# execs of /bin/true, at least n and until the stop file exists (stat, no exec)
EXEC_STORM = r"""
import json, os, sys
started, stop, least = sys.argv[1], sys.argv[2], int(sys.argv[3])
n = 0
while True:
    for _ in range(100):
        pid = os.posix_spawn("/bin/true", ["true", "storm"], {})
        os.waitpid(pid, 0)
    n += 100
    if n == 100:
        os.mkdir(started)
    if n >= least and os.path.exists(stop):
        break
print(json.dumps({"execs": n}))
"""

EXEC_UNIQUE = r"""
import os, sys
for i in range(int(sys.argv[1])):
    os.waitpid(os.posix_spawn("/bin/true", ["true", "q%03d" % i], {}), 0)
"""


def test_exec_storm_is_held_and_a_quiet_cgroup_loses_nothing(tmp_path):
    top = Cgroup()
    storm, quiet = top.child(), top.child()
    started, stop = str(tmp_path / "started"), str(tmp_path / "stop")
    try:
        # Starved as for opens. Admitted: the storm's burst of 120 + 20 a second,
        # the quiet cgroup's 100 and the few execs that start each: under 200
        # bytes each, they fit the 128 KiB ring for 20 s of storm; the storm
        # alone (4000 records) does not.
        with Agent("--tracers", "exec", "--cgroup", top.path, "--cri-socket", "none",
                   "--rate-limit", "20,120", "--ringbuf-kb", "128",
                   wrap=("taskset", "-c", "0", "nice", "-n", "19")) as a:
            t0 = time.monotonic()
            f = storm.popen(["taskset", "-c", "0", PY, "-c", EXEC_STORM, started, stop, "4000"],
                            stdout=subprocess.PIPE)
            wait_path(started)
            quiet.run(["taskset", "-c", "1", PY, "-c", EXEC_UNIQUE, "100"], check=True)
            open(stop, "w").close()
            made = json.loads(f.communicate(timeout=300)[0])["execs"]
            storm_s = time.monotonic() - t0
            want = {"q%03d" % i for i in range(100)}

            def quiet_args():
                return {r["args"][1] for r in a.records() if r.get("type") == "exec"
                        and r["cgroup_id"] == quiet.id and len(r["args"]) == 2}
            deadline = time.time() + 60
            while not want <= quiet_args() and time.time() < deadline:
                time.sleep(0.1)
            assert a.stop() == 0
        recs = a.records()
        got = {r["args"][1] for r in recs if r.get("type") == "exec"
               and r["cgroup_id"] == quiet.id and len(r["args"]) == 2}
        assert want <= got, "quiet cgroup lost %d of its 100 execs" % len(want - got)
        delivered = sum(1 for r in recs if r.get("type") == "exec" and r["args"] == ["true", "storm"])
        losses = rl_losses(recs, "exec")
        limited = sum(l["count"] for l in losses)
        shed = sum(l["count"] for l in rl_losses(recs, "exec", "shed"))
        assert 0 < delivered <= 120 + 20 * (storm_s + 1), (delivered, storm_s)
        # the storm's own start (taskset, python) came first, inside its burst
        assert delivered + limited + shed == made, (delivered, limited, shed, made)
        assert losses and {l["cgroup_id"] for l in losses} == {storm.id}, losses
        assert a.rate_limited("exec") == limited
        s = a.summary("exec")
        assert s["lost"] == 0 and s["map_full"] == 0, s
    finally:
        top.remove()


# O_DIRECT 4 KiB reads of the first 16 MiB of a block device, one request each,
# at least n and until the stop file exists (stat, no I/O), counted.
BIO_STORM = r"""
import json, mmap, os, sys
dev, started, stop, least = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
buf = mmap.mmap(-1, 4096)
fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
n = 0
while True:
    for i in range(500):
        assert os.preadv(fd, [buf], ((n + i) % 4096) * 4096) == 4096
    n += 500
    if n == 500:
        os.mkdir(started)
    if n >= least and os.path.exists(stop):
        break
print(json.dumps({"reads": n}))
"""

# 100 O_DIRECT reads at distinct offsets from 32 MiB on
BIO_UNIQUE = r"""
import mmap, os, sys
buf = mmap.mmap(-1, 4096)
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
for i in range(100):
    assert os.preadv(fd, [buf], (32 << 20) + i * 4096) == 4096
"""


def test_block_io_storm_is_held_and_a_quiet_cgroup_loses_nothing(tmp_path):
    from loopfs import loop_device
    from test_bio import dev_of
    top = Cgroup()
    storm, quiet = top.child(), top.child()
    started, stop = str(tmp_path / "started"), str(tmp_path / "stop")
    try:
        with loop_device() as dev:
            disk, _ = dev_of(dev)
            # Starved as for opens. Admitted: the storm's burst of 500 + 100 a
            # second and the quiet cgroup's 100, under 200 bytes each: they fit
            # the 256 KiB ring for 20 s of storm; the storm alone (20000
            # requests at least) is ten times the ring.
            with Agent("--tracers", "bio", "--bio-min-us", "0", "--cgroup", top.path,
                       "--cri-socket", "none", "--rate-limit", "100,500", "--ringbuf-kb", "256",
                       wrap=("taskset", "-c", "0", "nice", "-n", "19")) as a:
                t0 = time.monotonic()
                f = storm.popen(["taskset", "-c", "0", PY, "-c", BIO_STORM, dev, started, stop,
                                 "20000"], stdout=subprocess.PIPE)
                wait_path(started)
                quiet.run(["taskset", "-c", "1", PY, "-c", BIO_UNIQUE, dev], check=True)
                open(stop, "w").close()
                made = json.loads(f.communicate(timeout=300)[0])["reads"]
                storm_s = time.monotonic() - t0
                want = {((32 << 20) + i * 4096) // 512 for i in range(100)}

                def quiet_sectors():
                    return {r["sector"] for r in a.records() if r.get("type") == "bio"
                            and r["cgroup_id"] == quiet.id and r.get("disk") == disk}
                deadline = time.time() + 60
                while not want <= quiet_sectors() and time.time() < deadline:
                    time.sleep(0.1)
                assert a.stop() == 0
        recs = a.records()
        got = {r["sector"] for r in recs if r.get("type") == "bio" and r["cgroup_id"] == quiet.id
               and r.get("disk") == disk}
        assert want <= got, "quiet cgroup lost %d of its 100 reads" % len(want - got)
        # The kernel's own count of the storm's requests: its histograms
        # (aggregates, never limited), on every disk, for its start may read
        # the root disk too (python, cold pages). A request the bio tracer
        # itself lost track of is counted as map_full, never silently; one whose
        # completion the programs did not see has no histogram slot: its record
        # (unseen, never limited) is its account.
        def storm_hist(on_loop):
            return sum(h["count"] for h in recs if h.get("type") == "bio_hist"
                       and h["cgroup_id"] == storm.id and (not on_loop or h["disk"] == disk))
        unseen = sum(1 for r in recs if r.get("type") == "bio" and r.get("unseen")
                     and r["cgroup_id"] == storm.id and r.get("disk") == disk)
        s = a.summary("bio")
        assert 0 <= made - storm_hist(True) - unseen <= s["map_full"], (
            made, storm_hist(True), unseen, s)
        delivered = sum(1 for r in recs if r.get("type") == "bio" and r["cgroup_id"] == storm.id
                        and not r.get("unseen"))
        losses = rl_losses(recs, "bio")
        limited = sum(l["count"] for l in losses)
        shed = sum(l["count"] for l in rl_losses(recs, "bio", "shed"))
        assert 0 < delivered <= 500 + 100 * (storm_s + 1), (delivered, storm_s)
        assert delivered + limited + shed == storm_hist(False), (delivered, limited, shed,
                                                                 storm_hist(False))
        assert losses and {l["cgroup_id"] for l in losses} == {storm.id}, losses
        assert a.rate_limited("bio") == limited
        assert s["lost"] == 0, s
    finally:
        top.remove()


# A storm that moves through n cgroups it makes under top, one after another,
# each removed once left: k opens of one path in each, and in each but the
# last the open of the next one's cgroup.procs. Started outside the selection,
# so its own start is filtered out. Prints the cgroup ids.
CHURN = r"""
import json, os, sys
top, n, k, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ids, prev = [], None
for i in range(n):
    d = os.path.join(top, "c%04d" % i)
    os.mkdir(d)
    ids.append(os.stat(d).st_ino)
    fd = os.open(os.path.join(d, "cgroup.procs"), os.O_WRONLY)
    os.write(fd, b"0")
    os.close(fd)
    if prev:
        os.rmdir(prev)
    for _ in range(k):
        os.close(os.open(path, os.O_RDONLY))
    prev = d
print(json.dumps({"ids": ids, "last": prev}))
"""


def test_cgroups_made_and_removed_during_a_storm_keep_the_buckets_bounded(tmp_path):
    """1500 cgroups come and go under the selection while each floods: the
    buckets stay within their 1024 entries (LRU), and every refusal is still
    counted: by cgroup while its bucket lives, without one once evicted."""
    n, k = 1500, 4
    top, outside = Cgroup(), Cgroup()
    target = str(tmp_path / unique("churn"))
    open(target, "w").close()
    last = None
    try:
        with Agent("--tracers", "open", "--cgroup", top.path, "--cri-socket", "none",
                   "--rate-limit", "1,2", "--ringbuf-kb", "4096") as a:
            p = outside.run([PY, "-c", CHURN, top.path, str(n), str(k), target],
                            capture_output=True, check=True, timeout=120)
            out = json.loads(p.stdout)
            last = out["last"]
            ids = set(out["ids"])
            b = buckets(a.proc.pid)
            made = n * k + n - 1
            deadline = time.time() + 30
            while (sum(1 for r in a.records() if r.get("type") == "open"
                       and r["cgroup_id"] in ids) < 2 * n and time.time() < deadline):
                time.sleep(0.1)
            assert a.stop() == 0
        assert len(b) <= 1024, len(b)
        assert set(b) <= ids   # the newest ones: the LRU evicts the old in batches
        recs = a.records()
        delivered = sum(1 for r in recs if r.get("type") == "open" and r["cgroup_id"] in ids)
        losses = rl_losses(recs, "open")
        named = [l for l in losses if "cgroup_id" in l]
        assert {l["cgroup_id"] for l in named} <= ids
        limited = sum(l["count"] for l in losses)
        # each cgroup's burst of 2 passed, the rest was refused: every open accounted for
        assert delivered == 2 * n, delivered
        assert delivered + limited == made, (delivered, limited, made)
        assert a.rate_limited("open") == limited
        s = a.summary("open")
        assert s["lost"] == 0, s
    finally:
        if last and os.path.isdir(last):
            os.rmdir(last)
        top.remove()
        outside.remove()


def ring_lost(pid, tracer_stats="ps_stats"):
    """PS_STAT_LOST of the agent's one tracer, summed over CPUs (raw bytes of struct
    ps_stats: bpf/common.h's enum ps_stat order)."""
    import struct
    (m, dump), = agent_maps(pid, tracer_stats)
    return sum(struct.unpack("<%dQ" % (len(c["value"]) // 8),
                             bytes(int(b, 16) for b in c["value"]))[3]
               for c in dump[0]["values"])


def wait_until(what, pred, timeout=60):
    deadline = time.time() + timeout
    while not pred():
        assert time.time() < deadline, what
        time.sleep(0.05)


def flood_a_stopped_agent(tmp_path, shed, full):
    """The reader falls behind for sure: the agent SIGSTOP-ed while one cgroup floods
    opens (no rate limit) until full(pid, flooder) says the ring is where the test
    wants it; then a quiet cgroup opens 300 unique paths; then the agent goes on.
    Returns (records, agent, flooder id, quiet id, opens the flooder made, quiet paths,
    what full() and the buckets said while the agent was stopped)."""
    top = Cgroup()
    flooder, quiet = top.child(), top.child()
    target = str(tmp_path / unique("flood"))
    open(target, "w").close()
    qdir = tmp_path / unique("quiet")
    qdir.mkdir()
    started, stop = str(tmp_path / "started"), str(tmp_path / "stop")
    quiet_paths = {str(qdir / ("q%03d" % i)) for i in range(300)}
    try:
        # 1 MiB: the quiet cgroup's 360 records (its 300 and Python's own start)
        # of under 200 bytes fit in the quarter above the high-water mark.
        with Agent("--tracers", "open", "--cgroup", top.path, "--cri-socket", "none",
                   "--rate-limit", "0", "--shed", shed, "--ringbuf-kb", "1024",
                   "--listen", "127.0.0.1:0") as a:
            f = flooder.popen(["taskset", "-c", "0", PY, "-c", FLOOD_OPENS, target, started,
                               stop], stdout=subprocess.PIPE)
            try:
                wait_path(started)
                os.kill(a.proc.pid, signal.SIGSTOP)
                wait_until("the flood never filled the ring", lambda: full(a.proc.pid, flooder.id))
                quiet.run(["taskset", "-c", "1", PY, "-c", OPEN_UNIQUE, str(qdir), "300"],
                          check=True)
                stopped = buckets(a.proc.pid) if shed == "on" else {}
            finally:
                os.kill(a.proc.pid, signal.SIGCONT)
                open(stop, "w").close()
            made = json.loads(f.communicate(timeout=120)[0])["opens"]

            def quiet_got():
                return {r["path"] for r in a.records() if r.get("type") == "open"
                        and r["cgroup_id"] == quiet.id}
            # what is still in the ring arrives; the rest was lost or shed, and said
            deadline = time.time() + 30
            while not quiet_paths <= quiet_got() and time.time() < deadline:
                time.sleep(0.1)
            from test_endpoints import get, parse_text
            metrics = parse_text(get(a.listen_port(), "/metrics")[2])
            assert a.stop() == 0
        return a, a.records(), flooder.id, quiet.id, made, target, quiet_paths, stopped, metrics
    finally:
        top.remove()


def test_a_full_ring_is_shared_fairly_and_the_flooder_pays(tmp_path):
    """No rate limit, the reader stopped: the flooder alone fills the ring to its
    high-water mark and is shed from there; the quiet cgroup's 300 opens all take the
    room left above the mark; the losses name the flooder and no other, and every open
    the flooder made is delivered or counted as shed."""
    def flooder_shed(pid, flooder):
        b = buckets(pid).get(flooder)
        return b is not None and b["shed"] > 0
    a, recs, flooder, quiet, made, target, quiet_paths, stopped, metrics = \
        flood_a_stopped_agent(tmp_path, "on", flooder_shed)
    got = {r["path"] for r in recs if r.get("type") == "open" and r["cgroup_id"] == quiet}
    assert quiet_paths <= got, "quiet cgroup lost %d of its 300 opens" % len(quiet_paths - got)
    # while the agent was stopped the quiet cgroup offered its records to a high ring
    # (it has a bucket) and none was refused
    assert stopped[quiet]["fair_n"] > 0 and stopped[quiet]["shed"] == 0, stopped[quiet]
    delivered = sum(1 for r in recs if r.get("type") == "open" and r["path"] == target)
    losses = [r for r in recs if r.get("type") == "loss"]
    shed = rl_losses(recs, "open", "shed")
    assert shed and {l["cgroup_id"] for l in shed} == {flooder}, shed
    assert {l["stage"] for l in losses} == {"shed"}, losses   # nothing lost unnamed
    n_shed = sum(l["count"] for l in shed)
    assert shed[-1]["total"] == n_shed
    assert delivered + n_shed == made, (delivered, n_shed, made)
    assert a.shed("open") == n_shed
    assert metrics[("podsnoop_events_lost_total",
                    frozenset({"tracer": "open", "stage": "shed"}.items()))] == n_shed
    s = a.summary("open")
    assert s["lost"] == 0 and s["map_full"] == 0, s


def test_without_shedding_the_full_ring_costs_the_quiet_cgroup(tmp_path):
    """The same with --shed off: the flooder fills the whole ring, and the quiet
    cgroup's opens are the ones lost (kernel_ringbuf, no cgroup named)."""
    a, recs, flooder, quiet, made, target, quiet_paths, _, _ = \
        flood_a_stopped_agent(tmp_path, "off", lambda pid, _: ring_lost(pid) > 0)
    got = {r["path"] for r in recs if r.get("type") == "open" and r["cgroup_id"] == quiet}
    # the ring stayed full: at most a record shorter than the flooder's fits what is left
    assert len(quiet_paths - got) >= 299, len(quiet_paths - got)
    assert not rl_losses(recs, "open", "shed")
    assert a.summary("open")["lost"] > 0
    assert not [l for l in a.stderr if ": open: shed " in l]   # off: not even counted
