"""The reference collector against hostile and unlucky input (issue 15): bodies
made to cost it memory, many connections, clients that trickle bytes, a full
disk under --out, spoofed batches, record types it does not know. Each test
talks HTTP to the real build/podsnoop-collector on loopback and reads what it
wrote; memory is the collector's own high-water mark (VmHWM)."""
import gzip
import http.client
import os
import resource
import socket
import subprocess
import threading
import time

import pytest
from ship_harness import Collector, compile_schema

AGENT_ID = "0123456789abcdef0123456789abcdef"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def pb2(tmp_path_factory):
    return compile_schema(str(tmp_path_factory.mktemp("pb2")))


def vm_hwm(c):
    """The collector's peak resident memory so far, in bytes (/proc: VmHWM)."""
    with open("/proc/%d/status" % c.proc.pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def post(c, body, gzipped=True, headers=None, timeout=60, source="127.0.0.1"):
    """POST body to the collector; returns (status, message, headers)."""
    h = {"Content-Type": "application/x-protobuf"}
    if gzipped:
        h["Content-Encoding"] = "gzip"
    h.update(headers or {})
    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=timeout,
                                      source_address=(source, 0))
    try:
        conn.request("POST", "/v1/batches", body=body, headers=h)
        r = conn.getresponse()
        return r.status, r.read().decode().strip(), dict(r.getheaders())
    finally:
        conn.close()


def batch(pb2, seq, n=1, agent_id=AGENT_ID, arg=b"x", extra=b""):
    """A Batch the agent could send: n exec records, then the raw bytes extra."""
    b = pb2.Batch(seq=seq, sent_ns=1700000000000000000 + seq)
    b.agent.node, b.agent.agent_id, b.agent.version = "node-1", agent_id, "test"
    for i in range(n):
        r = b.records.add()
        r.exec.ts_ns = 1700000000000000000 + i
        r.exec.task.pid, r.exec.task.comm = 100 + i, b"true"
        r.exec.filename = b"/bin/true"
        r.exec.args.extend([b"true", b"%d" % seq, b"%d" % i, arg])
    return b.SerializeToString() + extra


def bomb(pb2, tail, n, seq=1):
    """A valid Batch header (agent, seq), then tail repeated n times; raw bytes."""
    b = pb2.Batch(seq=seq)
    b.agent.agent_id = AGENT_ID
    return b.SerializeToString() + tail * n


def test_gzip_bomb_of_empty_records(pb2, tmp_path):
    """Issue 15 item 2: 2^24 empty Records (2a 00) in a body of some 32 KB took the
    collector to 1.4 GiB. Now refused with 413 from gzip's trailer, and, when the
    trailer lies, after at most --max-raw-bytes (16 MiB) of gunzip; a 261 KB body of
    2^27 of them the same. The collector stays small and keeps serving."""
    with Collector(str(tmp_path)) as c:
        base = vm_hwm(c)
        for n in (1 << 24, 1 << 27):
            body = gzip.compress(bomb(pb2, b"\x2a\x00", n), 9)
            assert len(body) < 300 * 1024
            status, msg, _ = post(c, body)
            assert status == 413, msg
            liar = body[:-4] + b"\0\0\0\0"  # the trailer says 0 bytes
            status, msg, _ = post(c, liar)
            assert status == 413 and "decompressed" in msg, msg
        # under the raw bound: the records are counted before protobuf-c runs
        status, msg, _ = post(c, gzip.compress(bomb(pb2, b"\x2a\x00", 4 * MIB), 9))
        assert status == 413 and "--max-records" in msg, msg
        peak = vm_hwm(c)
        assert peak - base < 64 * MIB, "collector grew by %d MiB" % ((peak - base) // MIB)
        status, msg, _ = post(c, gzip.compress(batch(pb2, 1)))
        assert (status, msg) == (200, "ok")
        c.stop()
    assert c.proc.returncode == 0


def test_unknown_fields_bomb(pb2, tmp_path):
    """Unknown fields repeated (field 15, varint 0: 2 bytes each, 24 bytes and a
    copy each in protobuf-c) were answered 200 after 365 MiB: now counted on the
    wire and refused before protobuf-c runs; inside records, where they are not
    counted, decoding may take at most 32 times the batch's size. A few, as a
    newer agent's Batch may carry, are taken."""
    with Collector(str(tmp_path)) as c:
        base = vm_hwm(c)
        body = gzip.compress(batch(pb2, 1) + b"\x78\x00" * (4 * MIB), 9)
        status, msg, _ = post(c, body)
        assert status == 413 and "does not know" in msg, msg
        body = gzip.compress(batch(pb2, 1) + b"\x2a\x02\x78\x00" * 99000, 9)
        status, msg, _ = post(c, body)
        assert status == 413 and "to decode" in msg, msg
        grew = vm_hwm(c) - base
        assert grew < 64 * MIB, "collector grew by %d MiB" % (grew // MIB)
        status, msg, _ = post(c, gzip.compress(batch(pb2, 2) + b"\x78\x00" * 4))
        assert (status, msg) == (200, "ok")
        assert [b["seq"] for b in c.batches()] == [2]


def test_content_length_over_the_limit_refused_at_the_headers(tmp_path):
    """Issue 15 item 12: a Content-Length past --max-body-bytes is answered 413 at
    once, without waiting for (or reading) a byte of the body."""
    with Collector(str(tmp_path)) as c:
        s = socket.create_connection(("127.0.0.1", c.port), timeout=10)
        s.sendall(b"POST /v1/batches HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/x-protobuf\r\nContent-Encoding: gzip\r\n"
                  b"Content-Length: %d\r\n\r\n" % (1 << 30))
        t0 = time.monotonic()
        got = s.recv(4096)  # (no body sent: the old collector waited for it)
        s.close()
        assert got.startswith(b"HTTP/1.1 413"), got
        assert b"--max-body-bytes" in got
        assert time.monotonic() - t0 < 10


def _send_body(port, n, results, i, hold):
    """POST an n-byte body but its last byte, wait for hold, send it, read the answer
    (which may have come before the body: then the sending fails)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    try:
        s.sendall(b"POST /v1/batches HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/x-protobuf\r\nContent-Length: %d\r\n\r\n" % n)
        s.sendall(_send_body.junk[:n - 1])
        hold.wait(120)
        s.sendall(b"\0")
    except OSError:
        pass
    try:
        results[i] = s.recv(4096)
    except OSError as e:
        results[i] = e
    s.close()


def test_buffered_bytes_bounded_over_connections(tmp_path):
    """Issue 15 item 3: 48 connections each holding a body just under the limit
    (15 MiB) had the collector buffer them all. Now all of them together take at
    most --max-buffered-bytes (default 256 MiB): the others are answered 503 with
    Retry-After, and the collector's memory stays under the pool."""
    n, size = 48, 15 * MIB
    _send_body.junk = b"\x01" * size  # not a batch: each buffered one is answered 400
    with Collector(str(tmp_path), "--max-connections-per-ip", 64) as c:
        base = vm_hwm(c)
        results, hold = [None] * n, threading.Event()
        threads = [threading.Thread(target=_send_body, args=(c.port, size, results, i, hold))
                   for i in range(n)]
        for t in threads:
            t.start()
        time.sleep(5)  # all bodies but their last byte are on their way
        hold.set()
        for t in threads:
            t.join(180)
        grew = vm_hwm(c) - base
        statuses = [r.split(b" ", 2)[1] if isinstance(r, bytes) else repr(r) for r in results]
        assert set(statuses) <= {b"400", b"503"}, statuses
        assert statuses.count(b"503") >= n - 256 // 15, statuses
        assert all(b"Retry-After:" in r for r in results if isinstance(r, bytes) and
                   r.split(b" ", 2)[1] == b"503")
        assert grew < 300 * MIB, "collector grew by %d MiB" % (grew // MIB)


def test_connection_cap_keeps_room_for_other_clients(pb2, tmp_path):
    """Issue 15 item 5: about 1,016 connections trickling header bytes locked every
    agent out. Now one address gets at most --max-connections-per-ip (16): 1100 of
    them from 127.0.0.2 leave a client on 127.0.0.1 its way in, at once."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    socks = []
    with Collector(str(tmp_path)) as c:
        try:
            for _ in range(1100):
                s = socket.socket()
                s.bind(("127.0.0.2", 0))
                s.settimeout(5)
                s.connect(("127.0.0.1", c.port))
                s.sendall(b"POST /v1/batches HTTP/1.1\r\n")
                socks.append(s)
            time.sleep(1)
            for s in socks:  # one more header byte each: still trickling
                try:
                    s.sendall(b"X")
                except OSError:
                    pass
            status, msg, _ = post(c, gzip.compress(batch(pb2, 1)), timeout=10)
            assert (status, msg) == (200, "ok")
        finally:
            for s in socks:
                s.close()


def test_trickled_headers_cut_at_the_deadline(tmp_path):
    """Issue 15 item 5: a client sending a header byte every half second held its
    connection (and thread) for as long as it liked: each byte reset the idle
    timeout. Now the headers must be in within --header-timeout (default 10 s) of
    the connection's start: the collector closes it while it still trickles."""
    with Collector(str(tmp_path)) as c:
        s = socket.create_connection(("127.0.0.1", c.port), timeout=5)
        s.sendall(b"POST /v1/batches HTTP/1.1\r\n")
        t0, closed = time.monotonic(), None
        while time.monotonic() - t0 < 40:
            try:
                s.sendall(b"X")
                s.settimeout(0.5)
                if s.recv(1) == b"":
                    closed = time.monotonic() - t0
                    break
            except socket.timeout:
                continue
            except OSError:
                closed = time.monotonic() - t0
                break
        s.close()
        assert closed is not None, "still open after 40 s of trickling"
        assert closed >= 8, "closed after %.1f s, before the deadline" % closed
        # a client that does not trickle is not hurt
        s = socket.create_connection(("127.0.0.1", c.port), timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 200")
        s.close()


def test_token_checked_before_the_body(tmp_path):
    """Without the token a client is answered 401 at the headers: the collector
    reads and keeps none of its body (it used to read it all, then answer)."""
    tok = tmp_path / "token"
    tok.write_text("s3cret\n")
    with Collector(str(tmp_path), "--token-file", str(tok)) as c:
        s = socket.create_connection(("127.0.0.1", c.port), timeout=10)
        s.sendall(b"POST /v1/batches HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/x-protobuf\r\nContent-Length: 10000000\r\n\r\n")
        got = s.recv(4096)
        s.close()
        assert got.startswith(b"HTTP/1.1 401"), got


def _fill(c, pb2, seqs):
    """POST each seq (a batch of 10 execs with 2 KB arguments); returns {seq: status}."""
    out = {}
    for seq in seqs:
        status, msg, hdr = post(c, gzip.compress(batch(pb2, seq, n=10, arg=b"a" * 2000)))
        assert (status, msg) in ((200, "ok"), (503, msg)), (seq, status, msg)
        if status == 503:
            assert "No space left on device" in msg and "Retry-After" in hdr, msg
        out[seq] = status
    return out


def _whole(c):
    """--out holds only whole lines, and each batch has every line it announced."""
    with open(c.out, "rb") as f:
        data = f.read()
    assert not data or data.endswith(b"\n"), "a partial last line: %r" % data[-80:]
    got = {}
    for b in c.batches():
        assert len(b["recs"]) == b["records"], "batch %d cut short" % b["seq"]
        got[b["seq"]] = len(b["recs"])
    return got


@pytest.mark.parametrize("fsync", [False, True], ids=["buffered", "fsync"])
def test_full_disk_answers_503_and_keeps_nothing_half(pb2, tmp_path, fsync):
    """Issue 15 item 4: with --out on a full 1 MiB tmpfs, 59 batches were answered
    200 and 23 written, the last line cut mid-string, nothing logged, and the
    batches marked seen (their retries dropped as duplicates). Now: a batch is
    answered 200 only when all of it is in the file; otherwise 503 (Retry-After),
    the file cut back to its last whole batch, an error logged, and the batch not
    marked: once there is room, the agents' retries are written."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        extra = ["--fsync"] if fsync else []
        with Collector(str(mnt), *extra) as c:
            first = _fill(c, pb2, range(1, 81))
            ok = [s for s, st in first.items() if st == 200]
            refused = [s for s, st in first.items() if st == 503]
            assert ok and refused, first
            assert sorted(_whole(c)) == ok
            assert any("No space left on device" in l and "answered 503" in l
                       for l in c.stderr), "".join(c.stderr)
            subprocess.run(["mount", "-o", "remount,size=16m", str(mnt)], check=True)
            again = _fill(c, pb2, refused)
            assert set(again.values()) == {200}, again
            assert sorted(_whole(c)) == list(range(1, 81))
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_restart_cuts_an_unfinished_batch(pb2, tmp_path):
    """A collector killed while writing leaves a batch line with only some of its
    records, or a partial line: at start it cuts them off and does not count that
    batch as seen, so the agent's retry is written whole (it was dropped as a
    duplicate)."""
    with Collector(str(tmp_path)) as c:
        assert post(c, gzip.compress(batch(pb2, 1, n=3)))[:2] == (200, "ok")
        assert post(c, gzip.compress(batch(pb2, 2, n=3)))[:2] == (200, "ok")
        c.stop()
        with open(c.out, "rb") as f:
            lines = f.read().split(b"\n")
        whole = b"\n".join(lines[:4]) + b"\n"  # batch 1 and its 3 records
        with open(c.out, "wb") as f:  # batch 2 with one record and half of another
            f.write(whole + b"\n".join(lines[4:6]) + b"\n" + lines[6][:20])
        c.start()
        assert any("cut off" in l for l in c.stderr), "".join(c.stderr)
        with open(c.out, "rb") as f:
            assert f.read() == whole
        assert post(c, gzip.compress(batch(pb2, 1, n=3)))[:2] == (200, "duplicate")
        assert post(c, gzip.compress(batch(pb2, 2, n=3)))[:2] == (200, "ok")
        assert _whole(c) == {1: 3, 2: 3}


def test_unknown_record_type_skipped_and_counted(pb2, tmp_path):
    """Issue 15 item 7: a batch holding a record type this collector does not know
    (a newer agent's: Record field 50) was refused whole. Now the records it knows
    are written, the others skipped and counted on the batch line and in the log."""
    unknown = b"\x2a\x06\x92\x03\x03abc"  # Record { 50: "abc" }
    with Collector(str(tmp_path)) as c:
        status, msg, _ = post(c, gzip.compress(batch(pb2, 1, n=2, extra=unknown)))
        assert (status, msg) == (200, "ok")
        b = c.batches()
        assert len(b) == 1 and b[0]["records"] == 3 and b[0]["skipped"] == 1
        assert [r["args"][2] for r in b[0]["recs"]] == ["0", "1"]
        c.stop()
        assert any("1 records of kinds this collector does not know" in l for l in c.stderr)
        assert any("1 records of unknown kinds skipped" in l for l in c.stderr)
        # a record with nothing in it is still malformed: refused
        c.start()
        status, msg, _ = post(c, gzip.compress(batch(pb2, 2) + b"\x2a\x00"))
        assert status == 400 and "malformed" in msg, msg


def test_dedup_not_poisoned_by_spoofed_batches(pb2, tmp_path):
    """Issue 15 item 8: 65,537 spoofed empty batches for a victim's agent_id with huge
    seqs made every later real batch of that agent come back "200 duplicate". Now a
    batch marks only its own seq: the victim's batches are written."""
    with Collector(str(tmp_path)) as c:
        assert post(c, gzip.compress(batch(pb2, 1)))[:2] == (200, "ok")
        conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
        fake = pb2.Batch()
        fake.agent.agent_id = AGENT_ID
        for i in range(65537):
            fake.seq = (1 << 62) + 2 * i
            conn.request("POST", "/v1/batches", body=fake.SerializeToString(),
                         headers={"Content-Type": "application/x-protobuf"})
            r = conn.getresponse()
            r.read()
            assert r.status == 200
        conn.close()
        for seq in range(2, 12):
            assert post(c, gzip.compress(batch(pb2, seq)))[:2] == (200, "ok"), seq
        assert post(c, gzip.compress(batch(pb2, 11)))[:2] == (200, "duplicate")
        assert [b["seq"] for b in c.batches() if b["records"]] == list(range(1, 12))


def test_warns_when_open(tmp_path):
    """Without a token and TLS the collector says at start that anyone can send."""
    with Collector(str(tmp_path)) as c:
        assert any("no --token-file and no --tls-cert" in l for l in c.stderr)


@pytest.mark.parametrize("content", [b"", b"\n", b" \t\r\n"], ids=["empty", "newline", "blank"])
def test_empty_token_file_refused(tmp_path, content):
    """Issue 15 item 10: an empty --token-file was taken, and then "Authorization:
    Bearer " passed. Now the collector refuses to start, naming the file."""
    from ship_harness import COLLECTOR
    tok = tmp_path / "token"
    tok.write_bytes(content)
    p = subprocess.run([COLLECTOR, "--listen", "127.0.0.1:0", "--token-file", str(tok)],
                       capture_output=True, timeout=20)
    assert p.returncode == 1
    assert ("--token-file %s: is empty" % tok) in p.stderr.decode()
