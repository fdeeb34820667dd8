"""In-kernel cgroup selection (bpf/common.bpf.h): the walk up a task's cgroup
ancestors, at every depth, with several selected levels, and the early
rejection of tasks shallower than every selected cgroup. Checked through the
open tracer: a task opens a file only it opens, and the record must (or must
not) appear."""
import os
import subprocess

from podsnoop_harness import Agent, Cgroup, unique


def opener(cg, tmp_path):
    """A file only this task opens; returns its path after cat opened it in cg."""
    path = os.path.join(str(tmp_path), unique("sel"))
    with open(path, "w") as f:
        f.write("x")
    cg.run(["cat", path], stdout=subprocess.DEVNULL, check=True)
    return path


def opened(agent, path):
    return [r for r in agent.records() if r.get("type") == "open" and r.get("path") == path]


def chain(top, depth):
    """top/c1/c2/.../c<depth>: the deepest Cgroup (all removed with top)."""
    cg = top
    for i in range(depth):
        cg = cg.child("d%d" % i)
    return cg


def test_descendants_at_every_depth_are_selected(cgroup, tmp_path):
    # 5 levels below: walked; 40 below: deeper than the walk's 32 levels (helper fallback)
    shallow, deep = chain(cgroup, 5), chain(cgroup.child("deep"), 40)
    with Cgroup() as sibling, Agent("--tracers", "open", "--cgroup", cgroup.path) as a:
        inside = [opener(cg, tmp_path) for cg in (cgroup, shallow, deep)]
        outside = opener(chain(sibling, 40), tmp_path)
        for p in inside:
            a.wait_for(lambda r, p=p: r.get("path") == p, what="open of " + p)
        a.stop()
        assert opened(a, outside) == [], "a task in a sibling's subtree was selected"
    got = {p: opened(a, p)[0]["cgroup_id"] for p in inside}
    assert got == {inside[0]: cgroup.id, inside[1]: shallow.id, inside[2]: deep.id}


def test_several_selected_levels(tmp_path):
    with Cgroup() as a_top, Cgroup() as b_top, Cgroup() as c_top:
        b_sel = b_top.child()          # selected at level 2; its parent is not
        b_deep = chain(b_sel, 3)
        with Agent("--tracers", "open", "--cgroup", a_top.path, "--cgroup", b_sel.path) as a:
            inside = [opener(cg, tmp_path) for cg in (chain(a_top, 2), b_sel, b_deep)]
            parent = opener(b_top, tmp_path)      # an ancestor of a selected cgroup
            other = opener(chain(c_top, 3), tmp_path)
            for p in inside:
                a.wait_for(lambda r, p=p: r.get("path") == p, what="open of " + p)
            a.stop()
            assert opened(a, parent) == [], "the parent of a selected cgroup was selected"
            assert opened(a, other) == [], "an unselected subtree was selected"


def test_task_shallower_than_every_selection_is_dropped(cgroup, tmp_path):
    deep_sel = chain(cgroup, 3)        # selected at level 4; the loop below runs at level 1
    with Agent("--tracers", "open", "--cgroup", deep_sel.path) as a:
        shallow = opener(cgroup, tmp_path)
        selected = opener(deep_sel, tmp_path)
        a.wait_for(lambda r: r.get("path") == selected)
        a.stop()
        assert opened(a, shallow) == []
    s = a.summary("open")
    assert s["filtered"] > 0 and s["lost"] == 0


def test_more_cgroups_than_compared_inline(tmp_path):
    # up to 8 selected ids are compared in the configuration, more go to the hash
    tops = [Cgroup() for _ in range(10)]
    try:
        with Cgroup() as other, Agent("--tracers", "open",
                                      *[x for t in tops for x in ("--cgroup", t.path)]) as a:
            inside = [opener(t, tmp_path) for t in (tops[0], tops[9])]
            outside = opener(other, tmp_path)
            for p in inside:
                a.wait_for(lambda r, p=p: r.get("path") == p, what="open of " + p)
            a.stop()
            assert opened(a, outside) == []
    finally:
        for t in tops:
            t.remove()
