#!/usr/bin/python3
"""Shipping benchmark: exec records at a controlled rate from a test cgroup,
through the agent (--collector), to the reference collector on loopback.

For each rate it reports: records generated and delivered, records lost (by
the kernel ring buffer and by shipping, as the agent reports them), agent
CPU (share of one core over the load window) and RSS (max sampled VmRSS and
VmHWM), and bytes per record: gzipped protobuf as sent, protobuf before
gzip, the collector's NDJSON (which is the agent's --output ndjson), and
that NDJSON gzipped at level 1.

Load: build/bench/loadgen (failed execve of a missing path, no fork), so
every record is an exec record with retval -2 and argv [psload, TAG, N].
These records are much alike (only N changes): gzip does better on them
than on a real node's execs. Run as root, from the repository:

  make && /usr/bin/python3 bench/ship_bench.py [--rates 10000,100000] [--duration 60]
      [--varied] [--procs N]

A rate of 0 runs the load generator as fast as it goes.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
from podsnoop_harness import BUILD, Agent, Cgroup, unique  # noqa: E402
from ship_harness import Collector  # noqa: E402

LOADGEN = os.path.join(BUILD, "bench", "loadgen")
HZ = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ   # utime + stime


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for l in f:
            if l.startswith(key + ":"):
                return int(l.split()[1])
    return 0


def ndjson_sizes(path, tag, sample_bytes=64 << 20):
    """Records of this run in the collector's output: count, bytes, gzip -1 bytes of a sample."""
    n = size = 0
    sample = bytearray()
    needle = ('"psload","%s-' % tag).encode()
    with open(path, "rb") as f:
        for line in f:
            if needle in line:
                n += 1
                size += len(line)
                if len(sample) < sample_bytes:
                    sample += line
    gz = len(zlib.compress(bytes(sample), 1)) / max(1, len(sample)) * size if sample else 0
    return n, size, gz


def run(rate, duration, workdir, agent_args, varied, procs, nice):
    tag = unique("bench")
    res = {"rate": rate, "duration_s": duration}
    with Cgroup() as cg, Collector(workdir, name="bench-%d" % rate) as col:
        agent = Agent("--tracers", "exec", "--cgroup", cg.path, "--collector", col.url,
                      *agent_args)
        try:
            pid = agent.proc.pid
            time.sleep(1)
            rss_max = [0, 0, 0]
            done = threading.Event()

            def sample():
                while not done.wait(0.5):
                    rss_max[0] = max(rss_max[0], status_kb(pid, "VmRSS"))
                    rss_max[1] = max(rss_max[1], status_kb(pid, "RssAnon"))
                    rss_max[2] = max(rss_max[2], status_kb(pid, "RssFile"))
            sampler = threading.Thread(target=sample, daemon=True)
            c0, t0 = cpu_s(pid), time.time()
            cc0 = cpu_s(col.proc.pid)
            sampler.start()
            gens = [cg.popen(["nice", "-n", str(nice), LOADGEN, str(rate // procs), str(duration),
                              "%s-%d" % (tag, i)] +
                             (["varied"] if varied else []), stdout=subprocess.PIPE)
                    for i in range(procs)]
            outs = [g.communicate()[0].decode() for g in gens]
            t1 = time.time()
            sent = [re.search(r"sent (\d+) in ([\d.]+) s", o) for o in outs]
            res["generated"] = sum(int(m.group(1)) for m in sent)
            res["achieved_rate"] = res["generated"] / max(float(m.group(2)) for m in sent)
            # wait for the tail to arrive (the agent closes batches within --batch-ms)
            deadline = time.time() + 60
            while time.time() < deadline:
                n = sum(int(re.search(r"batch \d+: (\d+) records", l).group(1))
                        for l in list(col.stderr) if re.search(r"batch \d+: \d+ records", l))
                if n >= res["generated"]:
                    break
                time.sleep(0.5)
            res["delivery_tail_s"] = time.time() - t1
            # all the CPU spent on this load, the tail included, over the load's duration
            c1, cc1 = cpu_s(pid), cpu_s(col.proc.pid)
            done.set()
            sampler.join()
            res["agent_cpu_pct"] = 100.0 * (c1 - c0) / (t1 - t0)
            res["agent_cpu_us_per_rec"] = 1e6 * (c1 - c0) / max(1, res["generated"])
            res["collector_cpu_pct"] = 100.0 * (cc1 - cc0) / (t1 - t0)
            res["agent_rss_max_kb"], res["agent_anon_max_kb"], res["agent_file_max_kb"] = rss_max
            res["agent_vmhwm_kb"] = status_kb(pid, "VmHWM")
            agent.stop()
        finally:
            if agent.proc.poll() is None:
                agent.stop(signal.SIGKILL)
        col.stop()
        s = agent.summary("exec")
        res["kernel_lost"] = s["lost"] + s["map_full"]
        res["agent_log_losses"] = [l.strip() for l in agent.stderr
                                   if "lost" in l or "dropped" in l]
        summ = [l for l in col.stderr if "accepted" in l][-1]
        m = re.search(r"\((\d+) records, (\d+) bytes, (\d+) decompressed\).*?(\d+) records "
                      r"reported lost", summ)
        records, gz, raw, lost = map(int, m.groups())
        n_json, json_bytes, json_gz = ndjson_sizes(col.out, tag)
        res["delivered"] = n_json
        res["reported_lost"] = lost
        res["wire_gzip_B_per_rec"] = gz / max(1, records)
        res["protobuf_B_per_rec"] = raw / max(1, records)
        res["ndjson_B_per_rec"] = json_bytes / max(1, n_json)
        res["ndjson_gzip1_B_per_rec"] = json_gz / max(1, n_json)
        res["zero_loss"] = (res["delivered"] == res["generated"] and lost == 0 and
                            res["kernel_lost"] == 0)
        os.unlink(col.out)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rates", default="10000,100000")
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--agent-args", default="", help="extra agent flags, space-separated")
    ap.add_argument("--procs", type=int, default=1,
                    help="load generator processes, sharing the rate (default 1)")
    ap.add_argument("--nice", type=int, default=10,
                    help="niceness of the load generators (default 10): the collector, "
                    "which has its own machine in production, shares this one")
    ap.add_argument("--varied", action="store_true",
                    help="loadgen adds a random id and varied arguments to each exec")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    for b in (LOADGEN, os.path.join(BUILD, "podsnoop"), os.path.join(BUILD, "podsnoop-collector")):
        if not os.access(b, os.X_OK):
            sys.exit("%s missing: run make first" % b)
    with tempfile.TemporaryDirectory(prefix="ps-bench-") as d:
        print("kernel %s, %d CPUs; loadgen: failed execve, argv [psload, TAG, N%s]" %
              (os.uname().release, os.cpu_count(), ", ID, ..." if args.varied else ""))
        for rate in [int(r) for r in args.rates.split(",")]:
            r = run(rate, args.duration, d, args.agent_args.split(), args.varied, args.procs,
                  args.nice)
            print("\n== target %d records/s for %g s (%d load generator%s at nice %d)" % (
                rate, args.duration, args.procs, "s" if args.procs > 1 else "", args.nice))
            print("  generated %d (%.0f/s achieved), delivered %d, lost: kernel %d, "
                  "reported by shipping %d -> %s" % (
                      r["generated"], r["achieved_rate"], r["delivered"], r["kernel_lost"],
                      r["reported_lost"], "ZERO LOSS" if r["zero_loss"] else "LOSS"))
            print("  delivered %.0f records/s end to end (last batch %.1f s after the load)" % (
                r["delivered"] / (args.duration + r["delivery_tail_s"]), r["delivery_tail_s"]))
            print("  agent CPU %.1f%% of one core (%.2f us/record), RSS max %.1f MiB "
                  "(VmHWM %.1f MiB; max anonymous %.1f MiB, max file-backed %.1f MiB, of which "
                  "the exec ring buffer, mapped twice, is 16 MiB); collector CPU %.1f%%" % (
                      r["agent_cpu_pct"], r["agent_cpu_us_per_rec"], r["agent_rss_max_kb"] / 1024,
                      r["agent_vmhwm_kb"] / 1024, r["agent_anon_max_kb"] / 1024,
                      r["agent_file_max_kb"] / 1024, r["collector_cpu_pct"]))
            print("  bytes/record: protobuf+gzip on the wire %.1f, protobuf %.1f, "
                  "NDJSON %.1f, NDJSON gzip -1 %.1f" % (
                      r["wire_gzip_B_per_rec"], r["protobuf_B_per_rec"],
                      r["ndjson_B_per_rec"], r["ndjson_gzip1_B_per_rec"]))
            for l in r["agent_log_losses"]:
                print("  agent: " + l)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
