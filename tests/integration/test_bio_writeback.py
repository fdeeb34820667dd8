"""Cgroup writeback attribution where the kernel can do it: this machine keeps the io
and memory controllers on cgroup v1 (hybrid), so buffered writeback cannot be charged
to a cgroup here (test_bio.py checks that podsnoop then does not pretend). Debian's
6.1 and 6.12 kernels boot under qemu with cgroup2 alone (tests/kernel-matrix): there
bio/guest.sh enables io and memory, dirties 1 MiB from pod/ctr, syncs from another
cgroup, and podsnoop (selecting pod) must charge the kworker's writeback to pod/ctr
with attribution "blkcg" and let nothing else through."""
import os
import subprocess

from podsnoop_harness import AGENT, BUILD, REPO

HERE = os.path.join(REPO, "tests", "integration", "bio_writeback")


def test_writeback_charged_to_the_dirtying_cgroup_under_qemu():
    env = dict(os.environ, KM_BUILD_DIR=os.path.join(BUILD, "bio-writeback"))
    p = subprocess.run([os.path.join(REPO, "tests", "kernel-matrix", "run"),
                        "--binary", os.path.join(HERE, "guest.sh"),
                        "--file", AGENT + ":/km/bin/podsnoop",
                        "--expect-dir", HERE, "--kernels", "6.1 6.12"],
                       env=env, capture_output=True, text=True, timeout=600)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "2 passed, 0 failed" in out, out
    assert out.count("writeback_blkcg          ok") == 2, out
