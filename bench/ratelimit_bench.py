#!/usr/bin/python3
"""--rate-limit cost: BPF ns per open+close of build/bench/openloop (200000,
3 rounds), all the agent's programs, bpf_stats on, limit off / default / refusing,
and with the loop outside the selection. Run as root: bench/ratelimit_bench.py"""
import os, sys, time, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Cgroup, BpfStats, bpf_prog_stats, podsnoop, tool
OPENLOOP = tool("openloop")
N = 200000
loop, other = Cgroup(), Cgroup()
path = tempfile.mkstemp()[1]
res = {}
try:
    for rnd in range(3):
        for name, sel, rl in (("limit off", loop, "0"), ("default limit", loop, "20000,100000"),
                              ("limit 1000/s (refusing)", loop, "1000,1000"),
                              ("filtered, default limit", other, "20000,100000"),
                              ("filtered, limit off", other, "0")):
            with BpfStats():
                a = podsnoop("-t", "open", "--cgroup", sel.path, "--rate-limit", rl,
                             "--ringbuf-kb", "16384")
                time.sleep(0.5)
                before = sum(p["run_time_ns"] for p in bpf_prog_stats(a.pid))
                loop.run([OPENLOOP, str(N), path], capture_output=True, check=True)
                st = bpf_prog_stats(a.pid)
                a.stop()
            ns = sum(p["run_time_ns"] for p in st) - before
            res.setdefault(name, []).append(ns / N)
    for k, v in res.items():
        print("%-28s %s ns per open+close (BPF, all programs)" % (k, " ".join("%.0f" % x for x in v)))
finally:
    os.unlink(path)
