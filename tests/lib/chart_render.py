"""Render helm/podsnoop with build/helm-render (helm's engine, rebuilt offline)
and pick the rendered objects apart. Shared by test_chart.py and the CRI
deployment test."""
import re
import subprocess

import yaml  # PyYAML: Debian's python3-yaml, a dependency of yamllint

from podsnoop_harness import AGENT, REPO

RENDER = REPO + "/build/helm-render"
CHART = REPO + "/helm/podsnoop"

# Flags the chart passes for features being built in other branches (issue):
# the agent on this branch does not have them yet. test_chart.py checks each
# is absent from --help: once one lands that check fails, and the flag must
# leave this table so the chart's use of it is verified by the agent itself.
PENDING_FLAGS = {}

# What the chart claims the agent needs, and nothing else (docs/deployment.md: "Privileges").
CAPS = {"BPF", "PERFMON", "SYS_PTRACE"}


def render(*args, chart=CHART, check=True):
    p = subprocess.run([RENDER] + [str(a) for a in args] + [chart], capture_output=True,
                       text=True)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def docs(text):
    """A rendered stream -> [(source template, object)]."""
    out = []
    for chunk in text.split("\n---\n"):
        chunk = chunk.strip()
        if chunk.startswith("---"):
            chunk = chunk[3:].lstrip("\n")
        if not chunk:
            continue
        src = re.match(r"# Source: (\S+)", chunk).group(1)
        out.append((src, yaml.safe_load(chunk)))
    return out


def one(objs, kind):
    found = [o for o in objs if o["kind"] == kind]
    assert len(found) == 1, "%d %s" % (len(found), kind)
    return found[0]


def agent_container(objs):
    """(pod spec, the agent container) of the rendered DaemonSet."""
    pod = one(objs, "DaemonSet")["spec"]["template"]["spec"]
    (c,) = [c for c in pod["containers"] if c["name"] == "agent"]
    return pod, c


def split_pending(args):
    """(args the agent on this branch knows, pending flags that were used)."""
    kept, pending, i = [], [], 0
    while i < len(args):
        if args[i] in PENDING_FLAGS:
            pending.append(args[i])
            i += 2
        else:
            kept.append(args[i])
            i += 1
    return kept, pending


def check_args_with_agent(args):
    """Run the real agent's flag parser (--check-config) on rendered args."""
    kept, pending = split_pending(args)
    p = subprocess.run([AGENT, "--check-config"] + kept, capture_output=True, text=True)
    assert p.returncode == 0, "agent refused the chart's args %s:\n%s" % (kept, p.stderr)
    return p.stdout, pending
