"""The shape of the repository (docs/architecture.md): which folder may include which,
file sizes, the docs' front door, the licenses the SPDX lines name. Cheap checks on the
sources and the built binaries, so a change that breaks the layout fails here."""
import glob
import os
import re
import subprocess

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def sources(*patterns):
    out = []
    for p in patterns:
        out += glob.glob(os.path.join(REPO, p), recursive=True)
    return sorted(out)


def includes(path):
    with open(path, errors="replace") as f:
        return INCLUDE.findall(f.read())


C_USER = ("agent/**/*.[ch]", "lib/*.[ch]", "cgroup/*.[ch]", "collector/*.[ch]",
          "tests/unit/*.[ch]")


def test_includes_name_their_path_from_the_root():
    bad = [(os.path.relpath(f, REPO), i) for f in sources(*C_USER) for i in includes(f)
           if i.startswith("../")]
    assert not bad, bad
    # and every project header named that way exists
    missing = [(os.path.relpath(f, REPO), i) for f in sources(*C_USER) for i in includes(f)
               if "/" in i and i.split("/")[0] in ("agent", "lib", "cgroup", "collector", "bpf")
               and not os.path.exists(os.path.join(REPO, i))]
    assert not missing, missing


@pytest.mark.parametrize("folder", ["lib", "cgroup", "collector", "bpf"])
def test_dependencies_point_one_way(folder):
    """lib/, cgroup/, the collector and the BPF side never reach into agent/."""
    pats = [folder + "/*.[ch]"] if folder != "bpf" else ["bpf/*.[ch]"]
    bad = [(os.path.relpath(f, REPO), i) for f in sources(*pats) for i in includes(f)
           if i.startswith("agent/")]
    assert not bad, bad


def test_collector_links_nothing_of_the_agent():
    """No libbpf/libelf in the collector (libcurl: its ClickHouse client, issue 17)."""
    binary = os.path.join(REPO, "build", "podsnoop-collector")
    needed = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True,
                            check=True).stdout
    libs = re.findall(r"\(NEEDED\).*\[(.+)\]", needed)
    assert libs and not [l for l in libs if re.match(r"lib(bpf|elf)\.", l)], libs
    def defined(path):
        nm = subprocess.run(["nm", "--defined-only", "-g", path], capture_output=True,
                            text=True, check=True).stdout
        return {l.split()[-1] for l in nm.splitlines() if len(l.split()) == 3}
    agent = defined(os.path.join(REPO, "build", "libpodsnoop.a"))
    assert len(agent) > 100  # the agent's own functions: tracer_start, meta_start, ...
    both = defined(binary) & agent
    assert not both, sorted(both)[:10]


def test_no_source_file_over_900_lines():
    big = []
    for f in sources("agent/**/*.[ch]", "lib/*.[ch]", "cgroup/*.[ch]", "collector/*.[ch]",
                     "bpf/*.[ch]", "bench/*.c", "tests/unit/*.[ch]", "tests/helpers/*.c"):
        with open(f, errors="replace") as fh:
            n = sum(1 for _ in fh)
        if n > 900:
            big.append((os.path.relpath(f, REPO), n))
    assert not big, big


def test_readme_is_a_front_door_to_docs():
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read()
    assert readme.count("\n") <= 350
    links = re.findall(r"\]\((docs/[a-z-]+\.md)\)", readme)
    assert len(set(links)) >= 10, links
    for link in links:
        assert os.path.exists(os.path.join(REPO, link)), link
    for doc in glob.glob(os.path.join(REPO, "docs", "*.md")):
        assert "docs/" + os.path.basename(doc) in links, doc  # every doc reachable


def test_performance_doc_keeps_internal_targets_out():
    """The benchmark's verdicts on our own targets are bench/README.md's business."""
    with open(os.path.join(REPO, "docs", "performance.md")) as f:
        perf = f.read()
    assert "<!-- bench:begin" in perf and "<!-- bench:end -->" in perf
    verdicts = re.findall(r".*(?:MISSED|[:,] met\b|target <|target \d).*", perf)
    assert not verdicts, verdicts
    with open(os.path.join(REPO, "bench", "README.md")) as f:
        assert "<!-- bench:targets:begin" in f.read()


def test_every_spdx_license_has_its_text():
    ids = set()
    for f in sources("agent/**/*.[ch]", "lib/*.[ch]", "cgroup/*.[ch]", "collector/*.[ch]",
                     "bpf/*.[ch]", "bench/*.c", "tests/**/*.[ch]"):
        with open(f, errors="replace") as fh:
            m = re.search(r"SPDX-License-Identifier: \(?([^)*\n]+)", fh.readline())
        assert m, os.path.relpath(f, REPO)
        ids |= {i.strip() for i in m.group(1).split(" OR ")}
    assert ids
    for i in ids:
        assert os.path.exists(os.path.join(REPO, "LICENSES", i)), i
    assert os.path.exists(os.path.join(REPO, "LICENSE"))
