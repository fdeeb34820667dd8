#!/usr/bin/python3
"""--rate-limit and --shed cost: BPF ns per open+close of build/bench/openloop
(200000, 3 rounds), all the agent's programs, bpf_stats on: limit off / default /
refusing, with the loop outside the selection, and with --shed on and off, the
reader running (the ring low: shedding never engages) or SIGSTOP-ed on a 1 MiB ring
(the ring high: nearly every record shed, or lost with --shed off).
Run as root: bench/ratelimit_bench.py"""
import os, signal, sys, time, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Cgroup, BpfStats, bpf_prog_stats, podsnoop, tool
OPENLOOP = tool("openloop")
N = 200000
loop, other = Cgroup(), Cgroup()
path = tempfile.mkstemp()[1]
res = {}
CONFIGS = (("limit off", loop, ("--rate-limit", "0"), False),
           ("limit off, --shed off", loop, ("--rate-limit", "0", "--shed", "off"), False),
           ("default limit", loop, ("--rate-limit", "20000,100000"), False),
           ("limit 1000/s (refusing)", loop, ("--rate-limit", "1000,1000"), False),
           ("filtered, default limit", other, ("--rate-limit", "20000,100000"), False),
           ("filtered, limit off", other, ("--rate-limit", "0"), False),
           ("reader stopped, shed", loop, ("--rate-limit", "0"), True),
           ("reader stopped, --shed off", loop, ("--rate-limit", "0", "--shed", "off"), True))
try:
    for rnd in range(3):
        for name, sel, flags, stopped in CONFIGS:
            with BpfStats():
                a = podsnoop("-t", "open", "--cgroup", sel.path, *flags,
                             "--ringbuf-kb", "1024" if stopped else "16384")
                time.sleep(0.5)
                before = sum(p["run_time_ns"] for p in bpf_prog_stats(a.pid))
                if stopped:
                    os.kill(a.pid, signal.SIGSTOP)
                try:
                    loop.run([OPENLOOP, str(N), path], capture_output=True, check=True)
                    st = bpf_prog_stats(a.pid)
                finally:
                    if stopped:
                        os.kill(a.pid, signal.SIGCONT)
                a.stop()
            ns = sum(p["run_time_ns"] for p in st) - before
            res.setdefault(name, []).append(ns / N)
    for k, v in res.items():
        print("%-28s %s ns per open+close (BPF, all programs)" % (k, " ".join("%.0f" % x for x in v)))
finally:
    os.unlink(path)
