"""bio tracer against the real kernel: O_DIRECT reads and writes of known sizes
to a loop device made here and to a file on the root disk, byte totals, ops and
the cgroup they are charged to; histograms that count exactly the requests;
the cgroup filter and its negative case; bounded histogram maps; the hook
fallbacks; what cgroup writeback attribution this machine allows; and a
cross-check of request counts against Debian's libbpf-tools biolatency."""
import array
import fcntl
import json
import os
import re
import signal
import struct
import subprocess
import tempfile
import time

import pytest
from loopfs import loop_device
from podsnoop_harness import Agent, cgroup2_mount, host_mntns, unique

PY = "/usr/bin/python3"

# The I/O program run inside the test cgroup: O_DIRECT writes, then reads,
# of the given sizes at distinct offsets, from a page-aligned buffer.
DIRECT_IO = r"""
import json, mmap, os, sys
path, writes, reads = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
buf = mmap.mmap(-1, max(writes + reads + [4096]))
buf.write(b"\xa5" * len(buf))
fd = os.open(path, os.O_RDWR | os.O_DIRECT)
off = 0
for n in writes:
    assert os.pwritev(fd, [memoryview(buf)[:n]], off) == n
    off += n
off = 0
for n in reads:
    assert os.preadv(fd, [memoryview(buf)[:n]], off) == n
    off += n
os.close(fd)
print(json.dumps({"pid": os.getpid()}))
"""

WRITES = [4096, 8192, 65536, 131072, 4096]
READS = [4096, 65536, 16384]


def dev_of(path):
    """(disk name, "major:minor") of the block device a path lives on."""
    st = os.stat(path)
    return os.path.basename(os.path.realpath(path)), "%d:%d" % (os.major(st.st_rdev),
                                                                  os.minor(st.st_rdev))


def run_io(cgroup, path, writes=WRITES, reads=READS):
    p = cgroup.run([PY, "-c", DIRECT_IO, path, json.dumps(writes), json.dumps(reads)],
                   capture_output=True, check=True)
    return json.loads(p.stdout)


def bios(agent, **match):
    return [r for r in agent.records() if r.get("type") == "bio" and
            all(r.get(k) == v for k, v in match.items())]


def hists(agent, **match):
    return [r for r in agent.records() if r.get("type") == "bio_hist" and
            all(r.get(k) == v for k, v in match.items())]


def base_op(op):
    """R, W, D, F or N: the letter after an optional F (preflush)."""
    return op[1] if op[0] == "F" and len(op) > 1 else op[0]


def settle(agent, pred, timeout=15):
    """Wait until pred(agent) holds (records arrive on the drain timer)."""
    deadline = time.time() + timeout
    while not pred(agent) and time.time() < deadline:
        time.sleep(0.1)
    return pred(agent)


def test_direct_io_to_loop_device(cgroup):
    with loop_device() as dev:
        disk, devno = dev_of(dev)
        with Agent("--tracers", "bio", "--bio-min-us", "0", "--cgroup", cgroup.path) as a:
            out = run_io(cgroup, dev)
            settle(a, lambda a: sum(r["bytes"] for r in bios(a, disk=disk)) >=
                   sum(WRITES) + sum(READS))
            assert a.stop() == 0
    recs = bios(a, disk=disk)
    w = [r for r in recs if base_op(r["op"]) == "W"]
    rd = [r for r in recs if base_op(r["op"]) == "R"]
    assert sum(r["bytes"] for r in w) == sum(WRITES), recs
    assert sum(r["bytes"] for r in rd) == sum(READS), recs
    assert len(w) + len(rd) == len(recs), "unexpected ops: %s" % recs
    for r in recs:
        assert r["dev"] == devno
        assert r["cgroup_id"] == cgroup.id and r["attribution"] == "submitter"
        assert r["pid"] == out["pid"] and r["comm"] == "python3"
        assert r["mntns_id"] == host_mntns()
        assert r["status"] == 0 and r["latency_ns"] > 0 and r["hook"] == "io_start"
        assert r["sector"] % 8 == 0 and r["sector"] * 512 < 64 << 20
    assert sorted(r["sector"] * 512 for r in w)[0] == 0   # the first write went to offset 0
    s = a.summary("bio")
    assert s["lost"] == 0 and s["map_full"] == 0


def check_hist_matches(agent, cgroup_id, disk):
    """Per op: the histograms hold exactly the requests the records show, bucket by bucket."""
    recs = bios(agent, disk=disk, cgroup_id=cgroup_id)
    assert recs
    for op in ("R", "W"):
        mine = [r for r in recs if base_op(r["op"]) == op]
        hs = hists(agent, disk=disk, cgroup_id=cgroup_id, op=op)
        assert sum(h["count"] for h in hs) == len(mine), (op, hs, len(mine))
        assert sum(h["sum_ns"] for h in hs) == sum(r["latency_ns"] for r in mine)
        want = {}
        for r in mine:
            us = r["latency_ns"] // 1000
            slot = min(max(us.bit_length() - 1, 0), 26)
            want[slot] = want.get(slot, 0) + 1
        got = {}
        for h in hs:
            assert h["unit"] == "usecs"
            for b in h["buckets"]:
                slot = max(b["lo"].bit_length() - 1, 0)
                assert b["hi"] is None or b["hi"] == (b["lo"] or 1) * 2 - 1 or b["lo"] == 0
                got[slot] = got.get(slot, 0) + b["count"]
        assert got == want, (op, got, want)


def test_histograms_count_every_request(cgroup):
    with loop_device() as dev:
        disk, devno = dev_of(dev)
        with Agent("--tracers", "bio", "--bio-min-us", "0", "--interval", "1",
                   "--cgroup", cgroup.path) as a:
            run_io(cgroup, dev)
            time.sleep(1.5)
            run_io(cgroup, dev, writes=[8192] * 20, reads=[4096] * 10)
            settle(a, lambda a: len(bios(a, disk=disk)) >= 5 + 3 + 30)
            assert a.stop() == 0
    check_hist_matches(a, cgroup.id, disk)
    hs = hists(a, disk=disk, cgroup_id=cgroup.id)
    assert all(h["dev"] == devno for h in hs)
    # a one-second interval: the two bursts land in different records
    assert len({h["ts_ns"] for h in hs}) >= 2
    # whole intervals, but the last: printed at stop, it ends there (under load the
    # second burst can land in it, a moment after a flip)
    last = max(h["ts_ns"] for h in hs)
    assert all(0.5e9 < h["interval_ns"] < 30e9 for h in hs if h["ts_ns"] != last), hs
    assert all(0 < h["interval_ns"] < 30e9 for h in hs if h["ts_ns"] == last), hs


def test_slow_threshold_keeps_records_out_but_histograms_complete(cgroup):
    with loop_device() as dev:
        disk, _ = dev_of(dev)
        with Agent("--tracers", "bio", "--bio-min-us", "5000000", "--cgroup", cgroup.path) as a:
            run_io(cgroup, dev)
            time.sleep(0.5)
            assert a.stop() == 0
    # only requests completed unseen have records: their latency is unknown
    recs = bios(a, disk=disk)
    unseen = [r for r in recs if r.get("unseen")]
    assert recs == unseen
    hs = hists(a, disk=disk, cgroup_id=cgroup.id)
    total = sum(h["count"] for h in hs)
    s = a.summary("bio")
    # Every request is in the histograms or, when the kernel ran the tracepoint
    # for its completion without running our program (bench/README.md), in a
    # record of its own (unseen), found when its address was reused.
    assert total + len(unseen) == len(WRITES) + len(READS), (
        total, s, [(h["op"], h["count"]) for h in hs])
    assert s["map_full"] == 0 and s["emitted"] == len(unseen) and s["filtered"] >= total


def test_io_from_outside_the_cgroup_is_not_reported(cgroup):
    with loop_device() as dev:
        disk, _ = dev_of(dev)
        with Agent("--tracers", "bio", "--bio-min-us", "0", "--cgroup", cgroup.path) as a:
            # this test process is not in the cgroup: the same I/O, same disk
            subprocess.run([PY, "-c", DIRECT_IO, dev, json.dumps([65536] * 4), "[]"],
                           check=True, capture_output=True)
            run_io(cgroup, dev, writes=[4096], reads=[])
            settle(a, lambda a: len(bios(a, disk=disk)) >= 1)
            time.sleep(0.5)
            assert a.stop() == 0
    recs = bios(a, disk=disk)
    assert [r["bytes"] for r in recs] == [4096], recs
    assert all(h["cgroup_id"] == cgroup.id for h in hists(a))
    assert all(r["cgroup_id"] == cgroup.id for r in bios(a))


def test_histogram_map_bound_counts_what_did_not_fit(cgroup):
    with loop_device() as dev:
        disk, _ = dev_of(dev)
        # room for one (cgroup, disk, op) per interval: the reads do not fit
        with Agent("--tracers", "bio", "--bio-min-us", "0", "--bio-hist-entries", "1",
                   "--interval", "3600", "--cgroup", cgroup.path) as a:
            run_io(cgroup, dev)
            settle(a, lambda a: len(bios(a, disk=disk)) >= len(WRITES) + len(READS))
            assert a.stop() == 0
    recs = bios(a, disk=disk)
    in_hist = sum(h["count"] for h in hists(a, disk=disk))
    s = a.summary("bio")
    assert s["map_full"] > 0 and in_hist + s["map_full"] == len(recs)
    loss = [r for r in a.records() if r["type"] == "loss" and r["tracer"] == "bio"]
    assert sum(r["count"] for r in loss if r["stage"] == "kernel_map_full") == s["map_full"]


@pytest.mark.parametrize("hook", ["io_start", "getrq", "io_start_raw", "getrq_raw"])
def test_every_hook_method_attributes_the_same(cgroup, hook):
    with loop_device() as dev:
        disk, _ = dev_of(dev)
        with Agent("--tracers", "bio", "--bio-min-us", "0", "--hook", "bio=" + hook,
                   "--cgroup", cgroup.path) as a:
            out = run_io(cgroup, dev)
            settle(a, lambda a: sum(r["bytes"] for r in bios(a, disk=disk)) >=
                   sum(WRITES) + sum(READS))
            assert a.stop() == 0
    recs = bios(a, disk=disk)
    assert sum(r["bytes"] for r in recs if base_op(r["op"]) == "W") == sum(WRITES)
    assert sum(r["bytes"] for r in recs if base_op(r["op"]) == "R") == sum(READS)
    assert all(r["hook"] == hook and r["cgroup_id"] == cgroup.id and r["pid"] == out["pid"] and
               r["attribution"] == "submitter" for r in recs), recs
    s = a.summary("bio")
    assert s["lost"] == 0 and s["map_full"] == 0


# --- a file on the root file system: records matched to the file by its extents

FS_IOC_FIEMAP = 0xC020660B


def extents(path):
    """The file's physical extents as (first byte, length) on its disk, from FIEMAP."""
    n = 64
    hdr = struct.pack("=QQIIII", 0, 1 << 62, 1, 0, n, 0)  # FIEMAP_FLAG_SYNC
    buf = bytearray(hdr + b"\0" * (56 * n))
    with open(path, "rb") as f:
        fcntl.ioctl(f.fileno(), FS_IOC_FIEMAP, buf)
    mapped = struct.unpack_from("=I", buf, 20)[0]
    out = []
    for i in range(mapped):
        logical, physical, length = struct.unpack_from("=QQQ", buf, 32 + 56 * i)
        out.append((physical, length))
    # a partition's sectors count from the start of its disk in block requests
    st = os.stat(path)
    start_path = "/sys/dev/block/%d:%d/start" % (os.major(st.st_dev), os.minor(st.st_dev))
    start = int(open(start_path).read()) * 512 if os.path.exists(start_path) else 0
    return [(p + start, l) for p, l in out]


def disk_of_file(path):
    st = os.stat(path)
    sysdir = os.path.realpath("/sys/dev/block/%d:%d" % (os.major(st.st_dev), os.minor(st.st_dev)))
    if os.path.exists(os.path.join(sysdir, "partition")):
        sysdir = os.path.dirname(sysdir)
    return os.path.basename(sysdir)


def in_file(rec, exts):
    lo = rec["sector"] * 512
    return any(p <= lo < p + l for p, l in exts)


def test_direct_io_to_a_file(cgroup, tmp_path):
    path = str(tmp_path / unique("direct"))
    size = sum(WRITES)
    with open(path, "wb") as f:      # allocated and on disk before tracing starts
        f.write(b"\0" * size)
        f.flush()
        os.fsync(f.fileno())
    exts = extents(path)
    disk = disk_of_file(path)
    with Agent("--tracers", "bio", "--bio-min-us", "0", "--cgroup", cgroup.path) as a:
        run_io(cgroup, path)
        settle(a, lambda a: sum(r["bytes"] for r in bios(a, disk=disk) if in_file(r, exts)) >=
               sum(WRITES) + sum(READS))
        time.sleep(0.3)
        assert a.stop() == 0
    mine = [r for r in bios(a, disk=disk) if in_file(r, exts)]
    assert sum(r["bytes"] for r in mine if base_op(r["op"]) == "W") == sum(WRITES)
    assert sum(r["bytes"] for r in mine if base_op(r["op"]) == "R") == sum(READS)
    assert all(r["cgroup_id"] == cgroup.id and r["attribution"] == "submitter" for r in mine)
    # queue time is reported where an I/O scheduler queued the request
    sched = open("/sys/block/%s/queue/scheduler" % disk).read()
    if "[none]" not in sched:
        assert any(r["queue_ns"] is not None for r in mine)
    check_hist_matches(a, cgroup.id, disk)


def controllers_on_v2():
    with open(os.path.join(cgroup2_mount(), "cgroup.controllers")) as f:
        return set(f.read().split())


def test_buffered_write_and_sync_attribution(cgroup, tmp_path):
    """Buffered writes from the test cgroup, then sync: who is the I/O charged to?

    Writeback is done by a flusher kworker. With the io and memory controllers on
    cgroup v2 (cgroup writeback), the bio carries the dirtying cgroup's blkcg and
    the records say attribution "blkcg" with that cgroup. On this hybrid machine
    the io (blkio) and memory controllers sit on cgroup v1: the kernel gives the
    bios the root blkcg of the v1 hierarchy, so the only honest attribution is
    the submitting kworker (root cgroup), flagged blkcg_v1."""
    path = str(tmp_path / unique("buffered"))
    size = 1 << 20
    code = r"""
import os, sys
with open(sys.argv[1], "wb") as f:
    f.write(b"\x5a" * int(sys.argv[2]))
os.sync()
"""
    disk = disk_of_file(path if os.path.exists(path) else str(tmp_path))
    with Agent("--tracers", "bio", "--bio-min-us", "0") as a:
        cgroup.run([PY, "-c", code, path, str(size)], check=True)
        exts = extents(path)
        assert sum(l for _, l in exts) >= size
        settle(a, lambda a: sum(r["bytes"] for r in bios(a, disk=disk)
                                if in_file(r, exts) and base_op(r["op"]) == "W") >= size)
        time.sleep(0.3)
        assert a.stop() == 0
    mine = [r for r in bios(a, disk=disk) if in_file(r, exts) and base_op(r["op"]) == "W"]
    assert sum(r["bytes"] for r in mine) == size, mine
    summary = {}
    for r in mine:
        k = (r["attribution"], r["cgroup_id"], r["comm"].split("/")[0], r.get("blkcg_v1", False))
        summary[k] = summary.get(k, 0) + r["bytes"]
    print("\nbuffered write + sync, %d bytes: (attribution, cgroup_id, comm, blkcg_v1) -> bytes:"
          % size, summary)
    v2 = controllers_on_v2()
    if {"io", "memory"} <= v2:
        # cgroup writeback: charged to the cgroup that dirtied the pages
        assert all(r["attribution"] == "blkcg" and r["cgroup_id"] == cgroup.id for r in mine)
    else:
        # no cgroup writeback: nothing may claim the test cgroup by guesswork
        for r in mine:
            assert r["attribution"] == "submitter" and r["cgroup_id"] != cgroup.id, r
            assert r["blkcg_id"] == 0
            assert r.get("blkcg_v1") is True or "io" not in v2
            assert r["pid"] != 0


# --- the peer: Debian's libbpf-tools biolatency on the same workload

def parse_biolatency(text, disk):
    """Total count of the `disk = NAME` histogram in biolatency -D output."""
    total, cur = 0, None
    for line in text.splitlines():
        m = re.match(r"\s*disk = (\S+)", line)
        if m:
            cur = m.group(1)
            continue
        m = re.match(r"\s*\d+ -> \d+\s*: (\d+)", line)
        if m and cur == disk:
            total += int(m.group(1))
    return total


def test_request_counts_agree_with_biolatency(cgroup):
    """Both count each request from issue to completion (biolatency's default,
    without -Q); on a loop device nobody else uses they must agree exactly.
    biolatency keeps one histogram per disk; podsnoop's are per cgroup and
    disk, and it also prints a record per request: all three totals agree."""
    with loop_device() as dev:
        disk, _ = dev_of(dev)
        out = tempfile.TemporaryFile(mode="w+")
        peer = subprocess.Popen(["stdbuf", "-oL", "biolatency", "-D"], stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 30
            while time.time() < deadline:
                out.seek(0)
                if "Tracing block device I/O" in out.read():
                    break
                assert peer.poll() is None, "biolatency exited"
                time.sleep(0.1)
            with Agent("--tracers", "bio", "--bio-min-us", "0", "--interval", "3600") as a:
                run_io(cgroup, dev, writes=[4096] * 100 + [65536] * 20, reads=[8192] * 80)
                settle(a, lambda a: len(bios(a, disk=disk)) >= 200)
                time.sleep(0.5)
                assert a.stop() == 0
        finally:
            peer.send_signal(signal.SIGINT)
            peer.wait(timeout=30)
        out.seek(0)
        peer_text = out.read()
    ours_records = len(bios(a, disk=disk))
    ours_hist = sum(h["count"] for h in hists(a, disk=disk))
    theirs = parse_biolatency(peer_text, disk)
    print("\nrequests on %s: podsnoop records %d, podsnoop histograms %d, biolatency %d"
          % (disk, ours_records, ours_hist, theirs))
    assert ours_records >= 200
    assert ours_hist == ours_records
    assert theirs == ours_hist, peer_text


def test_text_output(cgroup):
    with loop_device() as dev:
        disk, _ = dev_of(dev)
        with Agent("--tracers", "bio", "--bio-min-us", "0", "--cgroup", cgroup.path,
                   "--output", "text", "--interval", "3600") as a:
            run_io(cgroup, dev)
            deadline = time.time() + 10
            while time.time() < deadline and sum(disk.encode() in l for l in a.lines) < 8:
                time.sleep(0.05)
            assert a.stop() == 0
    text = b"".join(a.lines).decode()
    lines = text.splitlines()
    assert lines[0].split() == ["TIME", "COMM", "PID", "DISK", "T", "SECTOR", "BYTES", "QUE(ms)",
                                "LAT(ms)", "OWNER"]
    req = [l.split() for l in lines if len(l.split()) == 11 and l.split()[3] == disk]
    assert len(req) == len(WRITES) + len(READS), text
    assert sorted(int(f[6]) for f in req) == sorted(WRITES + READS)
    assert all(f[1] == "python3" and f[9] == "cgroup:%d" % cgroup.id and f[10] == "(submitter)"
               for f in req)
    # the loop device has no I/O scheduler here: nothing was queued
    assert {f[7] for f in req} == {"-"} or "[none]" not in open(
        "/sys/block/%s/queue/scheduler" % disk).read()
    # biolatency's table, per cgroup, disk and op
    heads = [l for l in lines if (" disk %s " % disk) in l and " op " in l]
    assert {h.split(" op ")[1][0] for h in heads} == {"R", "W"}, text
    assert "     usecs               : count    distribution" in lines
    # the rows of this disk's tables only: the cgroup's python3 may read from another
    # disk too (its own files, on a cold page cache), and those have tables of their own
    rows, ours = [], False
    for l in lines:
        if " op " in l and " disk " in l:
            ours = (" disk %s " % disk) in l
        elif ours and re.match(r"\s+\d+ -> \d+\s+: \d+\s+\|[* ]{40}\|$", l):
            rows.append(l)
    assert rows and sum(int(l.split(":")[1].split()[0]) for l in rows) == len(req), text


# Reads at queue depth 1, forever, paced so that the records never outrun the agent.
READ_LOOP = r"""
import mmap, os, sys, time
buf = mmap.mmap(-1, 4096)
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECT)
while True:
    for off in range(0, 1 << 20, 4096):
        os.preadv(fd, [buf], off)
        time.sleep(0.0005)
"""


def agent_map_id(pid, name):
    """The id of the BPF map called name that the process pid holds."""
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            info = open("/proc/%d/fdinfo/%s" % (pid, fd)).read()
        except OSError:
            continue
        m = re.search(r"^map_id:\s*(\d+)", info, re.M)
        if not m:
            continue
        show = json.loads(subprocess.run(["bpftool", "map", "show", "id", m.group(1), "-j"],
                                         capture_output=True, text=True, check=True).stdout)
        if show.get("name") == name:
            return int(m.group(1))
    raise AssertionError("pid %d holds no map %s" % (pid, name))


def test_request_whose_completion_was_missed_is_counted(cgroup):
    """An entry found in flight when a request starts belongs to an earlier
    request at the same address whose completion the tracer never saw (the
    block layer reuses a request only once it finished): it is recorded then,
    as itself with `unseen`, neither overwritten silently nor counted lost. A missed completion is
    made by putting back entries seen in flight while a reader runs at queue
    depth 1: whichever had completed by then is an entry with no request. The
    reader goes on until one is counted: blk-mq hands out a CPU's tags in turn
    (its allocation hint moves on with every request), so each address comes
    round within a queue depth of requests."""
    with loop_device() as dev:
        disk, _ = dev_of(dev)
        with Agent("--tracers", "bio", "--bio-min-us", "0", "--cgroup", cgroup.path) as a:
            mid = agent_map_id(a.proc.pid, "ps_bio_inflight")
            reader = cgroup.popen([PY, "-c", READ_LOOP, dev])
            planted = set()  # (key, value) put back; each makes at most one lost request

            def counted(a):
                return any(r.get("unseen") for r in bios(a, disk=disk))
            try:
                deadline = time.time() + 120
                while not counted(a) and time.time() < deadline:
                    dump = json.loads(subprocess.run(
                        ["bpftool", "map", "dump", "id", str(mid), "-j"], capture_output=True,
                        text=True, check=True).stdout)
                    for e in dump:  # an entry deleted during the dump has no value
                        if not isinstance(e.get("value"), list):
                            continue
                        kv = (tuple(e["key"]), tuple(e["value"]))
                        if kv in planted:
                            continue
                        planted.add(kv)
                        subprocess.run(["bpftool", "map", "update", "id", str(mid), "key", "hex"]
                                       + [k[2:] for k in kv[0]] + ["value", "hex"]
                                       + [v[2:] for v in kv[1]], check=True)
                    time.sleep(0.05)
                assert counted(a), "no planted entry was found by a request (%d planted)" % (
                    len(planted))
            finally:
                reader.kill()
                reader.wait()
            # reads after the planted entries are recorded whole, as themselves
            pid = run_io(cgroup, dev, writes=[], reads=[4096] * 1024)["pid"]
            settle(a, lambda a: len(bios(a, disk=disk, pid=pid)) >= 1024)
            assert a.stop() == 0
    s = a.summary("bio")
    unseen = [r for r in bios(a, disk=disk) if r.get("unseen")]
    assert 1 <= len(unseen) <= len(planted), (s, len(planted))
    assert s["lost"] == 0 and s["map_full"] == 0, s
    # each is the read that was in flight at that address: its bytes, its cgroup
    assert all(r["bytes"] == 4096 and r["cgroup_id"] == cgroup.id and base_op(r["op"]) == "R"
               and r["latency_ns"] == 0 for r in unseen), unseen
    # the reads after the planted entries are recorded whole, as themselves
    mine = [r for r in bios(a, disk=disk, pid=pid) if not r.get("unseen")]
    assert len(mine) == 1024 and all(r["bytes"] == 4096 and r["cgroup_id"] == cgroup.id and
                                     base_op(r["op"]) == "R" for r in mine)


def test_request_still_in_flight_at_stop_is_recorded_unseen(cgroup):
    """What is left in the in-flight map when the agent stops (a request in
    flight then, or one whose completion no program saw and whose address no
    request took since) is recorded once, as itself with `unseen`. An entry
    copied from a real request to a key no request has (an address never
    reused) stands for one."""
    with loop_device() as dev:
        disk, _ = dev_of(dev)
        with Agent("--tracers", "bio", "--bio-min-us", "0", "--cgroup", cgroup.path) as a:
            mid = agent_map_id(a.proc.pid, "ps_bio_inflight")
            reader = cgroup.popen([PY, "-c", READ_LOOP, dev])
            value = None
            try:
                deadline = time.time() + 60
                while value is None and time.time() < deadline:
                    dump = json.loads(subprocess.run(
                        ["bpftool", "map", "dump", "id", str(mid), "-j"], capture_output=True,
                        text=True, check=True).stdout)
                    value = next((e["value"] for e in dump if isinstance(e.get("value"), list)),
                                 None)
            finally:
                reader.kill()
                reader.wait()
            assert value is not None, "no request seen in flight"
            subprocess.run(["bpftool", "map", "update", "id", str(mid), "key", "hex"]
                           + ["01"] + ["00"] * 7 + ["value", "hex"] + [v[2:] for v in value],
                           check=True)
            time.sleep(0.2)
            before = len([r for r in bios(a, disk=disk) if r.get("unseen")])
            assert a.stop() == 0
    unseen = [r for r in bios(a, disk=disk) if r.get("unseen")]
    s = a.summary("bio")
    assert len(unseen) == before + 1, (before, unseen)
    r = unseen[-1]
    assert (r["bytes"], r["cgroup_id"], base_op(r["op"]), r["latency_ns"]) == (
        4096, cgroup.id, "R", 0), r
    assert s["map_full"] == 0 and s["lost"] == 0, s
