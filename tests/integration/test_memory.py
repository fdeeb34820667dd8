"""What the agent holds in the kernel: the ring buffers' sizes, per tracer by
default and from --ringbuf-kb, read from the agent's own map fds."""
import os

from podsnoop_harness import Agent

RINGBUF = 27  # BPF_MAP_TYPE_RINGBUF
# the tracers' defaults (agent/tracers/*.c), in KiB; cgwatch's ring is fixed
DEFAULT_KB = {"exec": 4096, "open": 4096, "bio": 1024, "fs": 1024}
CGWATCH_KB = 256
RL_NOTES_KB = 16  # --rate-limit's notes ring, one for every tracer


def ring_kb(pid):
    """Sizes in KiB of the ring buffers process pid holds, sorted (a map shared by
    several objects once)."""
    out = {}
    fd_dir = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(fd_dir):
        try:
            with open(os.path.join(fd_dir, fd)) as f:
                info = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        except OSError:
            continue
        if int(info.get("map_type", "-1").strip()) == RINGBUF:
            out[info["map_id"].strip()] = int(info["max_entries"].strip()) // 1024
    return sorted(out.values())


def test_each_tracer_has_its_default_ring_size():
    with Agent("--tracers", "exec,open,bio,fs", "--cri-socket", "none") as a:
        got = ring_kb(a.proc.pid)
    assert got == sorted(list(DEFAULT_KB.values()) + [CGWATCH_KB, RL_NOTES_KB])


def test_ringbuf_kb_sets_every_tracer_ring():
    with Agent("--tracers", "exec,open,bio,fs", "--cri-socket", "none",
               "--ringbuf-kb", "512") as a:
        got = ring_kb(a.proc.pid)
    assert got == sorted([512] * len(DEFAULT_KB) + [CGWATCH_KB, RL_NOTES_KB])


def test_ringbuf_kb_applies_to_the_chosen_tracer_only():
    with Agent("--tracers", "open", "--cri-socket", "none", "--ringbuf-kb", "64") as a:
        got = ring_kb(a.proc.pid)
    assert got == sorted([64, CGWATCH_KB, RL_NOTES_KB])


def maps_by_name(pid):
    """{name: {max_entries, memlock, map_flags}} of the maps process pid holds."""
    import json
    import subprocess
    ids = {}
    fd_dir = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(fd_dir):
        try:
            with open(os.path.join(fd_dir, fd)) as f:
                info = dict((k.strip(), v.strip()) for k, v in
                            (l.split(":", 1) for l in f.read().splitlines() if ":" in l))
        except OSError:
            continue
        if "map_id" in info:
            ids[int(info["map_id"])] = info
    out = {}
    for m in json.loads(subprocess.run(["bpftool", "map", "show", "-j"], capture_output=True,
                                       text=True, check=True).stdout):
        if m["id"] in ids:
            i = ids[m["id"]]
            out[m.get("name", "")] = {"max_entries": int(i["max_entries"]),
                                      "memlock": int(i["memlock"]),
                                      "map_flags": int(i["map_flags"], 16)}
    return out


# a preallocated hash of 16384 ids is charged over 1 MiB whatever it holds
PREALLOC_IDS_BYTES = 1 << 20


def test_id_sets_and_cache_rows_are_allocated_as_they_fill(tmp_path):
    from podsnoop_harness import Cgroup
    tops = [Cgroup() for _ in range(10)]   # more than the 8 compared inline: in the hash
    try:
        with Agent("--tracers", "open,bio,cache", "--cri-socket", "none",
                   *[x for t in tops for x in ("--cgroup", t.path)]) as a:
            maps = maps_by_name(a.proc.pid)
    finally:
        for t in tops:
            t.remove()
    for name in ("ps_cgroup_ids", "ps_mntns_ids", "ps_cache_cg"):
        m = maps[name]
        assert m["map_flags"] & 1, name + " is preallocated"  # BPF_F_NO_PREALLOC
        assert m["max_entries"] >= 4096, name
        assert m["memlock"] < PREALLOC_IDS_BYTES // 2, (name, m)
    # the bio maps stay preallocated: inserts at completion run in interrupt context
    for name in ("ps_bio_inflight", "ps_bio_hist0"):
        assert not maps[name]["map_flags"] & 1, name
        assert maps[name]["memlock"] > PREALLOC_IDS_BYTES, name
