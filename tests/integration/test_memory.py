"""What the agent holds in the kernel: the ring buffers' sizes, per tracer by
default and from --ringbuf-kb, read from the agent's own map fds."""
import os

from podsnoop_harness import Agent

RINGBUF = 27  # BPF_MAP_TYPE_RINGBUF
# the tracers' defaults (agent/tracers/*.c), in KiB; cgwatch's ring is fixed
DEFAULT_KB = {"exec": 4096, "open": 4096, "bio": 1024, "fs": 1024}
CGWATCH_KB = 256


def ring_kb(pid):
    """Sizes in KiB of the ring buffers process pid holds, sorted."""
    out = []
    fd_dir = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(fd_dir):
        try:
            with open(os.path.join(fd_dir, fd)) as f:
                info = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        except OSError:
            continue
        if int(info.get("map_type", "-1").strip()) == RINGBUF:
            out.append(int(info["max_entries"].strip()) // 1024)
    return sorted(out)


def test_each_tracer_has_its_default_ring_size():
    with Agent("--tracers", "exec,open,bio,fs", "--cri-socket", "none") as a:
        got = ring_kb(a.proc.pid)
    assert got == sorted(list(DEFAULT_KB.values()) + [CGWATCH_KB])


def test_ringbuf_kb_sets_every_tracer_ring():
    with Agent("--tracers", "exec,open,bio,fs", "--cri-socket", "none",
               "--ringbuf-kb", "512") as a:
        got = ring_kb(a.proc.pid)
    assert got == sorted([512] * len(DEFAULT_KB) + [CGWATCH_KB])


def test_ringbuf_kb_applies_to_the_chosen_tracer_only():
    with Agent("--tracers", "open", "--cri-socket", "none", "--ringbuf-kb", "64") as a:
        got = ring_kb(a.proc.pid)
    assert got == sorted([64, CGWATCH_KB])
