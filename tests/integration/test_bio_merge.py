"""Every block request accounted exactly once while the elevator merges them:
ext4 on a loop device with mq-deadline, buffered writes of a file tree and
sync, then four parallel O_DIRECT readers. No bio loss of any stage, and the
bytes in the bio records for the device equal the kernel's own accounting
(/sys/block/<dev>/stat, sectors read and written x 512), per direction. A
tracefs instance counts the merges on that device in the same run: the test
proves merging was exercised, or fails."""
import contextlib
import json
import os
import shutil
import subprocess
import time

from loopfs import loop_device
from podsnoop_harness import Agent, unique

PY = "/usr/bin/python3"
TRACEFS = "/sys/kernel/tracing"
MERGE_EVENTS = ("block_rq_merge", "block_bio_backmerge", "block_bio_frontmerge")

# Buffered writes of a tree of files (sizes that leave gaps and neighbours on
# the disk), one large file, then sync.
WRITE_TREE = r"""
import os, sys
root = sys.argv[1]
for d in range(8):
    os.makedirs("%s/d%d" % (root, d))
    for f in range(40):
        with open("%s/d%d/f%d" % (root, d, f), "wb") as fh:
            fh.write(bytes([f & 0xff]) * (4096 * (1 + (f * 7 + d) % 16)))
with open(root + "/big", "wb") as fh:
    for i in range(64):
        fh.write(bytes([i]) * (256 << 10))
os.sync()
"""

# One of N readers: O_DIRECT 4 KiB reads of the big file, reader i taking the
# blocks i, i+N, ...: the readers' requests are neighbours on the disk, which
# the elevator merges while they wait in its queue.
READER = r"""
import mmap, os, sys
path, i, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
buf = mmap.mmap(-1, 4096)
fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
size = os.fstat(fd).st_size
for rnd in range(4):
    for off in range(i * 4096, size, n * 4096):
        assert os.preadv(fd, [buf], off) == 4096
os.close(fd)
"""


def disk_stat(disk):
    """(sectors read, sectors written) of a disk, from /sys/block/<disk>/stat."""
    f = open("/sys/block/%s/stat" % disk).read().split()
    return int(f[2]), int(f[6])


@contextlib.contextmanager
def loop_ext4(size_mb=256):
    """ext4 on a loop device with mq-deadline; no lazy init left to run behind the test."""
    with loop_device(size_mb, prefix="psbiom-") as dev:
        disk = os.path.basename(dev)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                        dev], check=True)
        subprocess.run(["blockdev", "--flushbufs", dev], check=True)
        with open("/sys/block/%s/queue/scheduler" % disk, "w") as f:
            f.write("mq-deadline")
        assert "[mq-deadline]" in open("/sys/block/%s/queue/scheduler" % disk).read()
        yield dev


@contextlib.contextmanager
def merge_counter(devno):
    """A tracefs instance tracing the merge events of one device (dev_t as the kernel has it)."""
    inst = os.path.join(TRACEFS, "instances", unique("psmerge"))
    os.mkdir(inst)
    try:
        with open(os.path.join(inst, "buffer_size_kb"), "w") as f:
            f.write("16384")
        for ev in MERGE_EVENTS:
            base = os.path.join(inst, "events", "block", ev)
            with open(os.path.join(base, "filter"), "w") as f:
                f.write("dev == %d" % devno)
            with open(os.path.join(base, "enable"), "w") as f:
                f.write("1")

        def count():
            with open(os.path.join(inst, "tracing_on"), "w") as f:
                f.write("0")
            for cpu in os.listdir(os.path.join(inst, "per_cpu")):
                stats = open(os.path.join(inst, "per_cpu", cpu, "stats")).read()
                assert "overrun: 0\n" in stats, stats
            got = dict.fromkeys(MERGE_EVENTS, 0)
            with open(os.path.join(inst, "trace")) as f:
                for line in f:
                    for ev in MERGE_EVENTS:
                        if (" %s: " % ev) in line:
                            got[ev] += 1
            return got
        yield count
    finally:
        for ev in MERGE_EVENTS:
            with open(os.path.join(inst, "events", "block", ev, "enable"), "w") as f:
                f.write("0")
        os.rmdir(inst)


def base_op(op):
    return op[1] if op[0] == "F" and len(op) > 1 else op[0]


def record_bytes(agent, disk):
    """Bytes of the bio records for disk, as (read, written)."""
    rd = wr = 0
    for r in agent.records():
        if r.get("type") != "bio" or r.get("disk") != disk:
            continue
        op = base_op(r["op"])
        if op == "R":
            rd += r["bytes"]
        elif op == "W":
            wr += r["bytes"]
    return rd, wr


def test_merged_requests_accounted_exactly_once(tmp_path):
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    with loop_ext4() as dev:
        disk = os.path.basename(dev)
        st = os.stat(dev)
        devno = (os.major(st.st_rdev) << 20) | os.minor(st.st_rdev)
        with Agent("--tracers", "bio", "--bio-min-us", "0", "--interval", "3600") as a, \
                merge_counter(devno) as merges:
            before = disk_stat(disk)
            subprocess.run(["mount", "-t", "ext4", dev, mnt], check=True)
            try:
                subprocess.run([PY, "-c", WRITE_TREE, mnt + "/tree"], check=True)
                readers = [subprocess.Popen([PY, "-c", READER, mnt + "/tree/big", str(i), "4"])
                           for i in range(4)]
                assert [p.wait(timeout=300) for p in readers] == [0] * 4
            finally:
                # after the unmount nothing more goes to the device
                subprocess.run(["umount", mnt], check=True)
            after = disk_stat(disk)
            want = ((after[0] - before[0]) * 512, (after[1] - before[1]) * 512)
            deadline = time.time() + 60
            while record_bytes(a, disk) != want and time.time() < deadline:
                time.sleep(0.2)
            got = merges()
            assert a.stop() == 0
    s = a.summary("bio")
    loss = [r for r in a.records() if r.get("type") == "loss" and r.get("tracer") == "bio"]
    unseen = [r for r in a.records() if r.get("type") == "bio" and r.get("unseen")]
    print("\nunseen %d" % len(unseen))
    print("\n%s: kernel bytes read/written %s, merges %s, bio summary %s"
          % (disk, want, got, s))
    assert want[0] > 4 * (16 << 20) and want[1] > 16 << 20, want
    assert got["block_rq_merge"] + got["block_bio_backmerge"] > 0, got
    assert loss == [] and s["lost"] == 0 and s["map_full"] == 0, (s, loss)
    assert record_bytes(a, disk) == want
    merged = [r for r in a.records() if r.get("type") == "bio" and r.get("disk") == disk
              and r.get("merged")]
    assert len(merged) == got["block_rq_merge"], (len(merged), got)
