#!/usr/bin/python3
"""Attribution delay and metadata costs against real pods (private containerd).

For each of N new pods: the time from StartContainer returning to the agent
printing the container's first exec (its entrypoint) with its pod identity;
then the agent's own figures: CRI call latencies, cache memory, waits.
Runs twice: with the default wait for metadata, and with --attrib-wait-ms 0
(records never wait: how many first events would go out without a pod).

    sudo /usr/bin/python3 bench/attrib_delay.py [--pods 20]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
import cri_testbed as tb  # noqa: E402

AGENT = os.path.join(REPO, "build", "podsnoop")


class Agent:
    def __init__(self, *args):
        self.p = subprocess.Popen([AGENT, "--tracers", "exec"] + list(args),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.recs, self.err = [], []
        self.ready = threading.Event()
        threading.Thread(target=self._out, daemon=True).start()
        threading.Thread(target=self._errf, daemon=True).start()
        if not self.ready.wait(30):
            raise RuntimeError("agent not ready:\n" + "".join(self.err))

    def _out(self):
        for line in self.p.stdout:
            self.recs.append((time.time(), json.loads(line)))

    def _errf(self):
        for line in self.p.stderr:
            s = line.decode(errors="replace")
            self.err.append(s)
            if s.rstrip().endswith("info: ready"):
                self.ready.set()

    def find(self, pred, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            for t, r in list(self.recs):
                if pred(r):
                    return t, r
            time.sleep(0.002)
        return None, None

    def stop(self):
        self.p.terminate()
        self.p.wait(30)
        time.sleep(0.2)
        return "".join(self.err)


def run(ctd, n, extra):
    a = Agent("--cri-socket=unix://" + ctd.socket, *extra)
    delays, attributed, cgroups = [], 0, []
    pods = []
    try:
        for i in range(n):
            marker = "bench-%d-%d" % (os.getpid(), time.monotonic_ns())
            uid = str(tb.uuid.uuid4())
            sid, scfg = ctd.cri.run_pod("b%d" % i, "bench", uid)
            cmd = ["sh", "-c", "echo %s; exec sleep 3600" % marker]
            cid = ctd.cri.create_container(sid, scfg, "main", command=cmd)
            ctd.cri.start_container(cid)
            t0 = time.time()
            pods.append(sid)
            t, r = a.find(lambda r: r.get("args") == cmd)
            if r is None:
                print("  pod %d: no record" % i)
                continue
            if r.get("k8s", {}).get("pod") == "b%d" % i:
                attributed += 1
            delays.append((t - t0) * 1000)
        err = a.stop()
    finally:
        if a.p.poll() is None:
            a.p.kill()
        for sid in pods:
            try:
                ctd.cri.stop_pod(sid)
                ctd.cri.remove_pod(sid)
            except Exception:  # noqa: BLE001
                pass
    return delays, attributed, err


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=20)
    args = ap.parse_args()
    with tb.Containerd() as ctd:
        for label, extra in (("default (waits up to 500 ms)", []),
                             ("--attrib-wait-ms 0", ["--attrib-wait-ms", "0"])):
            delays, attributed, err = run(ctd, args.pods, extra)
            print("== %s: %d new pods" % (label, args.pods))
            if delays:
                q = statistics.quantiles(delays, n=10) if len(delays) > 1 else delays
                print("  first exec printed after StartContainer returned: median %.1f ms, "
                      "p90 %.1f ms, min %.1f, max %.1f (negative: before it returned)" %
                      (statistics.median(delays), q[-1], min(delays), max(delays)))
            print("  first exec attributed to its pod: %d of %d" % (attributed, len(delays)))
            for line in err.splitlines():
                if "attribution:" in line:
                    print("  " + line.split("info: ", 1)[-1])


if __name__ == "__main__":
    main()
