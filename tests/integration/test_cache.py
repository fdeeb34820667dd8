"""cache tracer (cachestat per pod) against the real kernel, for every method
this kernel offers: a file read twice after its pages were dropped
(posix_fadvise DONTNEED) misses about every page the first time and hits
them the second; written pages are counted as dirtied; other cgroups never
show up. Each pass runs in its own child cgroup, so intervals do not matter:
the records of a cgroup are summed after the agent's final flush."""
import os

import pytest
from fsworkload import probe_tracers, run as workload
from podsnoop_harness import Agent, Cgroup, unique

PAGE = os.sysconf("SC_PAGESIZE")
FILE_PAGES = 1024          # a 4 MiB file with 4 KiB pages


def probe_cache():
    return probe_tracers()["cache"]


def available_methods():
    return [m["name"] for m in probe_cache()["methods"] if m["available"]]


METHODS = ["fentry", "kprobe", "tp_btf", "tracepoint"]


def make_file(path, pages):
    with open(path, "wb") as f:
        f.write(os.urandom(pages * PAGE))
        f.flush()
        os.fsync(f.fileno())


def drop_pages(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def totals(agent, cgroup_id):
    """Sum of a cgroup's cache records (all intervals); None when it has none."""
    recs = [r for r in agent.records() if r.get("type") == "cache" and
            r["cgroup_id"] == cgroup_id]
    if not recs:
        return None
    t = {k: sum(r[k] for r in recs) for k in ("misses", "dirtied", "pages_added",
                                              "buffers_dirtied")}
    known = all(r["accesses"] is not None for r in recs)
    t["accesses"] = sum(r["accesses"] for r in recs) if known else None
    t["hits"] = sum(r["hits"] for r in recs) if known else None
    t["estimated"] = {r["estimated"] for r in recs}
    t["hook"] = {r["hook"] for r in recs}
    t["records"] = recs
    return t


def ratio(t):
    return t["hits"] / (t["hits"] + t["misses"])


@pytest.mark.parametrize("method", METHODS)
def test_read_twice_after_dontneed(cgroup, tmp_path, method):
    if method not in available_methods():
        pytest.skip("cache method %s is not available on this kernel" % method)
    path = str(tmp_path / unique("data"))
    make_file(path, FILE_PAGES)
    drop_pages(path)
    first, second = cgroup.child(), cgroup.child()
    with Agent("--tracers", "cache", "--hook", "cache=" + method, "--interval", 1,
               "--cgroup", cgroup.path) as a:
        r1 = workload("read", path, cgroup=first)
        r2 = workload("read", path, cgroup=second)
        assert a.stop() == 0           # the final flush reports the last interval
        t1, t2 = totals(a, first.id), totals(a, second.id)
    assert r1["bytes"] == r2["bytes"] == FILE_PAGES * PAGE
    assert t1 and t2, "no cache records for the reading cgroups"
    assert t1["hook"] == t2["hook"] == {method}
    # mincore just before each pass: the pages that were not cached must miss
    # (normally all of them, then none; a test elsewhere dropping caches shifts this)
    cold1 = FILE_PAGES - r1["resident_before"]
    cold2 = FILE_PAGES - r2["resident_before"]
    assert cold1 >= FILE_PAGES * 0.9, "DONTNEED left %d pages cached" % (FILE_PAGES - cold1)
    # first pass: every page came from disk (plus a little ext4 metadata)
    assert cold1 * 0.98 <= t1["misses"] <= cold1 + 32, (cold1, t1)
    assert t1["dirtied"] == 0
    if t1["accesses"] is None:
        # a tracepoint method on a kernel before mm_filemap_get_pages (6.11)
        assert all(r["hit_ratio"] is None and r["estimated"] is False
                   for r in t1["records"] + t2["records"])
        assert t2["misses"] <= cold2 + FILE_PAGES * 0.02, t2
        return
    # second pass: all in the page cache
    assert cold2 * 0.98 <= t2["misses"] <= cold2 + FILE_PAGES * 0.02, (cold2, t2)
    assert t2["hits"] > 0 and ratio(t2) >= 0.98 - cold2 / FILE_PAGES, (cold2, t2)
    assert ratio(t1) <= 0.1 + (FILE_PAGES - cold1) / FILE_PAGES, (cold1, t1)
    estimated = method in ("tp_btf", "tracepoint")
    assert t1["estimated"] == t2["estimated"] == {estimated}
    if estimated:
        # the estimate counts pages each read asked for: the file, twice
        err1 = t1["accesses"] / FILE_PAGES - 1
        err2 = t2["accesses"] / FILE_PAGES - 1
        print("cache %s: pass 1 accesses %d misses %d; pass 2 accesses %d hits %d misses %d; "
              "estimate error %+.1f%% / %+.1f%%" % (method, t1["accesses"], t1["misses"],
                                                   t2["accesses"], t2["hits"], t2["misses"],
                                                   100 * err1, 100 * err2))
        assert abs(err1) <= 0.05 and abs(err2) <= 0.05, (t1, t2)


@pytest.mark.parametrize("method", METHODS)
def test_written_pages_are_dirtied(cgroup, tmp_path, method):
    if method not in available_methods():
        pytest.skip("cache method %s is not available on this kernel" % method)
    writer = cgroup.child()
    path = str(tmp_path / unique("written"))
    with Agent("--tracers", "cache", "--hook", "cache=" + method, "--interval", 1,
               "--cgroup", cgroup.path) as a:
        workload("write-pages", path, 256, cgroup=writer)
        assert a.stop() == 0
        t = totals(a, writer.id)
    assert t, "no cache record for the writing cgroup"
    assert 256 <= t["dirtied"] <= 256 + 8, t
    assert 256 <= t["pages_added"] <= 256 + 8, t
    # new pages are added and dirtied by the write: not read misses
    assert t["misses"] <= 8, t


def test_only_selected_cgroups(cgroup, tmp_path):
    path = str(tmp_path / unique("shared"))
    make_file(path, 64)
    inside = cgroup.child()
    with Cgroup() as sibling, Agent("--tracers", "cache", "--interval", 1,
                                    "--cgroup", cgroup.path) as a:
        drop_pages(path)
        workload("read", path, cgroup=sibling)    # not selected
        workload("write-pages", str(tmp_path / unique("w")), 16, cgroup=sibling)
        workload("read", path, cgroup=inside)
        assert a.stop() == 0
        recs = [r for r in a.records() if r.get("type") == "cache"]
        assert totals(a, inside.id) is not None
        assert totals(a, sibling.id) is None, "an unselected cgroup was reported"
        assert {r["cgroup_id"] for r in recs} <= {cgroup.id, inside.id}
        s = a.summary("cache")
    assert s["filtered"] > 0 and s["emitted"] > 0


def test_record_fields(cgroup, tmp_path):
    path = str(tmp_path / unique("f"))
    make_file(path, 16)
    reader = cgroup.child()
    with Agent("--tracers", "cache", "--interval", 1, "--cgroup", cgroup.path) as a:
        workload("read", path, cgroup=reader)
        a.stop()
    rec = totals(a, reader.id)["records"][0]
    assert rec["hook"] == probe_cache()["chosen"]
    assert rec["mntns_id"] == os.stat("/proc/self/ns/mnt").st_ino
    assert rec["interval_ns"] > 0
    assert rec["host_cached_kb"] > 0
    for k in ("accesses", "hits", "misses", "dirtied", "hit_ratio", "estimated", "pages_added",
              "buffers_dirtied", "host_buffers_kb", "cgroup_id", "ts_ns"):
        assert k in rec


def test_text_output_is_cachestat_style(cgroup, tmp_path):
    path = str(tmp_path / unique("t"))
    make_file(path, 64)
    drop_pages(path)
    reader = cgroup.child()
    with Agent("--tracers", "cache", "--interval", 1, "--output", "text",
               "--cgroup", cgroup.path) as a:
        workload("read", path, cgroup=reader)
        a.stop()
    lines = [l.decode().rstrip("\n") for l in a.lines]
    header = [l for l in lines if not l.startswith("#")][0].split()
    assert header == ["TIME", "HITS", "MISSES", "DIRTIES", "HITRATIO", "BUFFERS_MB",
                      "CACHED_MB", "POD"]
    rows = [l.split() for l in lines if l.endswith("cgroup:%d" % reader.id)]
    assert rows, lines
    misses = sum(int(r[2]) for r in rows)
    assert 60 <= misses <= 64 + 16
    if probe_cache()["chosen"] in ("tp_btf", "tracepoint"):
        assert lines[0].startswith("# HITS and HITRATIO marked ~ are estimates")
        assert rows[0][1].startswith("~")


def test_probe_lists_cache_methods_and_choice():
    c = probe_cache()
    assert [m["name"] for m in c["methods"]] == METHODS
    avail = [m["name"] for m in c["methods"] if m["available"]]
    assert c["chosen"] == avail[0]
