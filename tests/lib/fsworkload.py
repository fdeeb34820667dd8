"""File-system and page-cache workloads for the fs and cache tests.

Run as a child process (any python3): it does its imports and setup first,
then, when given --cgroup PROCS_FILE, moves itself into that cgroup just
before the measured part, so interpreter start-up never shows up in the
cgroup's counters. It prints one JSON object with what it did and measured.

  fsync-writes PATH N BS   N x (write BS bytes, fsync), O_CREAT|O_TRUNC
  slow-write PATH MS READS one page written from a buffer whose page fault
                           userfaultfd holds for MS milliseconds (a write
                           slowed deterministically, inside the filesystem's
                           write_iter), then READS fast preads of that page,
                           each timed here
  read PATH                read the whole file in 64 KiB chunks
  write-pages PATH N       write N pages, one write() per page, no fsync
"""
import ctypes
import json
import mmap
import os
import struct
import sys
import threading
import time

PAGE = os.sysconf("SC_PAGESIZE")


def join_cgroup(procs):
    if procs:
        with open(procs, "w") as f:
            f.write("0")


def fsync_writes(path, n, bs, procs):
    buf = b"x" * bs
    join_cgroup(procs)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for _ in range(n):
        os.write(fd, buf)
        os.fsync(fd)
    st = os.fstat(fd)
    os.close(fd)
    return {"ino": st.st_ino, "dev": [os.major(st.st_dev), os.minor(st.st_dev)]}


# userfaultfd (x86_64 numbers; the ioctl codes are _IOWR(0xAA, nr, size))
SYS_USERFAULTFD = {"x86_64": 323, "aarch64": 282}
UFFD_API = 0xAA
UFFDIO_API = 0xC018AA3F
UFFDIO_REGISTER = 0xC020AA00
UFFDIO_COPY = 0xC028AA03
UFFDIO_REGISTER_MODE_MISSING = 1


def slow_write(path, delay_ms, reads, procs):
    libc = ctypes.CDLL(None, use_errno=True)
    nr = SYS_USERFAULTFD[os.uname().machine]
    uffd = libc.syscall(nr, os.O_CLOEXEC)
    if uffd < 0:
        raise OSError(ctypes.get_errno(), "userfaultfd")
    api = ctypes.create_string_buffer(struct.pack("QQQ", UFFD_API, 0, 0))
    if libc.ioctl(uffd, ctypes.c_ulong(UFFDIO_API), api) != 0:
        raise OSError(ctypes.get_errno(), "UFFDIO_API")
    region = mmap.mmap(-1, PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(region))
    reg = ctypes.create_string_buffer(
        struct.pack("QQQQ", addr, PAGE, UFFDIO_REGISTER_MODE_MISSING, 0))
    if libc.ioctl(uffd, ctypes.c_ulong(UFFDIO_REGISTER), reg) != 0:
        raise OSError(ctypes.get_errno(), "UFFDIO_REGISTER")
    src = ctypes.create_string_buffer(b"s" * PAGE, PAGE)

    def resolve():
        msg = os.read(uffd, 32)               # the write's page fault
        fault = struct.unpack_from("Q", msg, 16)[0] & ~(PAGE - 1)
        time.sleep(delay_ms / 1000.0)
        copy = ctypes.create_string_buffer(
            struct.pack("QQQQq", fault, ctypes.addressof(src), PAGE, 0, 0))
        if libc.ioctl(uffd, ctypes.c_ulong(UFFDIO_COPY), copy) != 0:
            raise OSError(ctypes.get_errno(), "UFFDIO_COPY")

    t = threading.Thread(target=resolve)
    t.start()
    view = memoryview(region)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    join_cgroup(procs)
    t0 = time.monotonic()
    n = os.write(fd, view[:PAGE])             # the kernel copies from the held page
    slow_ms = (time.monotonic() - t0) * 1000
    t.join()
    read_ms = []
    for _ in range(reads):
        t0 = time.monotonic()
        os.pread(fd, PAGE, 0)
        read_ms.append((time.monotonic() - t0) * 1000)
    os.close(fd)
    return {"written": n, "slow_ms": slow_ms, "read_ms": read_ms}


def resident_pages(fd, size):
    """Pages of the file in the page cache now (mincore on a mapping that is
    never touched, so asking changes nothing)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    if addr in (None, ctypes.c_void_p(-1).value):
        raise OSError(ctypes.get_errno(), "mmap")
    try:
        vec = ctypes.create_string_buffer((size + PAGE - 1) // PAGE)
        if libc.mincore(addr, size, vec) != 0:
            raise OSError(ctypes.get_errno(), "mincore")
        return sum(b & 1 for b in vec.raw)
    finally:
        libc.munmap(addr, size)


def read_file(path, procs):
    buf = bytearray(65536)
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    join_cgroup(procs)
    resident = resident_pages(fd, size)   # what may hit; the rest must miss
    total = 0
    while True:
        n = os.readv(fd, [buf])
        if n <= 0:
            break
        total += n
    os.close(fd)
    return {"bytes": total, "resident_before": resident}


def write_pages(path, n, procs):
    page = b"w" * PAGE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    join_cgroup(procs)
    for _ in range(n):
        os.write(fd, page)
    os.close(fd)
    return {"pages": n}


# ---- for the tests (they import this module) ----

def run(*args, cgroup=None):
    """Run this script as a child (joining cgroup, a harness Cgroup, just before the
    measured part); return the JSON it printed."""
    import subprocess
    argv = [sys.executable, os.path.abspath(__file__)]
    if cgroup is not None:
        argv += ["--cgroup", cgroup.path]
    out = subprocess.run(argv + [str(a) for a in args], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    return json.loads(out)


def probe_tracers(*args):
    """`podsnoop probe -o ndjson` as {tracer: its probe record}."""
    from podsnoop_harness import run_agent_once
    rc, out, err = run_agent_once("probe", "-o", "ndjson", *args)
    assert rc == 0, err
    return {r["tracer"]: r for r in map(json.loads, out.splitlines()) if r["type"] == "probe"}


def main(argv):
    procs = None
    if len(argv) > 2 and argv[1] == "--cgroup":
        procs = os.path.join(argv[2], "cgroup.procs")
        argv = argv[:1] + argv[3:]
    cmd, args = argv[1], argv[2:]
    if cmd == "fsync-writes":
        out = fsync_writes(args[0], int(args[1]), int(args[2]), procs)
    elif cmd == "slow-write":
        out = slow_write(args[0], int(args[1]), int(args[2]), procs)
    elif cmd == "read":
        out = read_file(args[0], procs)
    elif cmd == "write-pages":
        out = write_pages(args[0], int(args[1]), procs)
    else:
        raise SystemExit("unknown command %s" % cmd)
    out["pid"] = os.getpid()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv)
