"""The kubelet as a metadata source, against a local HTTPS stand-in
(tests/lib/kubelet_mock.py: a CA made by the test, bearer tokens, PodList
JSON as the kubelet writes it) describing real pods of a private containerd.
"""
import os
import re
import subprocess
import uuid

import pytest
from podsnoop_harness import Agent, make_program, unique

import cri_testbed as tb
from kubelet_mock import KubeletMock, kubelet_pods, pod_item


@pytest.fixture(scope="module")
def ctd():
    c = tb.Containerd()
    try:
        c.pods = {
            "web": tb.Pod.start(c.cri, "web", "team-a", labels={"app": "web"}),
            "db": tb.Pod.start(c.cri, "db", "team-b", labels={"app": "db"}),
        }
        yield c
    finally:
        c.cleanup()


@pytest.fixture
def kubelet(tmp_path):
    with KubeletMock(tmp_path) as k:
        yield k


def kubelet_args(k, *more):
    return ["--kubelet", k.url, "--kubelet-token", k.token_file, "--kubelet-ca", k.ca_file] + \
        list(more)


def exec_in(pod, marker):
    rc, out, _ = pod.exec(["echo", marker])
    assert rc == 0 and out.strip() == marker


def k8s_of(pod):
    return {"namespace": pod.namespace, "pod": pod.name, "pod_uid": pod.uid,
            "container": "main", "container_id": pod.container_id, "runtime": "containerd"}


def test_kubelet_alone_attributes(ctd, kubelet):
    web = ctd.pods["web"]
    kubelet.set_body(kubelet_pods(ctd.pods.values()))
    mark = unique("kl")
    with Agent("--tracers", "exec", "--cri-socket", "none", *kubelet_args(kubelet)) as a:
        exec_in(web, mark)
        rec = a.wait_for(lambda r: mark in r.get("args", ()))
        assert a.stop() == 0
    assert rec["k8s"] == k8s_of(web)
    assert all(auth == "Bearer " + kubelet.token for _, auth in kubelet.requests)
    assert ("/pods", "Bearer " + kubelet.token) in kubelet.requests
    assert re.search(r"kubelet: 2 pods from https://127\.0\.0\.1:\d+/pods", "".join(a.stderr))


def test_kubelet_labels_drive_the_selection(ctd, kubelet):
    """A label only the kubelet knows (added to the pod after it started)."""
    web, db = ctd.pods["web"], ctd.pods["db"]
    kubelet.set_body(kubelet_pods(ctd.pods.values(), labels={"web": {"team": "blue"}}))
    mw, md = unique("web"), unique("db")
    with Agent("--tracers", "exec", "--cri-socket=unix://" + ctd.socket,
               "--selector", "team=blue", *kubelet_args(kubelet)) as a:
        exec_in(db, md)
        exec_in(web, mw)
        rec = a.wait_for(lambda r: mw in r.get("args", ()))
        assert a.stop() == 0
    assert rec["k8s"] == k8s_of(web)
    assert not [r for r in a.records() if md in r.get("args", ())], "db was not selected"


def test_kubelet_new_container_found_without_cri(ctd, kubelet):
    """A container that starts later is looked up in the kubelet's list on demand."""
    mark = unique("later")
    kubelet.set_body(kubelet_pods(ctd.pods.values()))
    with Agent("--tracers", "exec", "--cri-socket", "none", "--attrib-wait-ms", "5000",
               *kubelet_args(kubelet)) as a:
        pod = tb.Pod.start(ctd.cri, "later", "team-c")
        try:
            kubelet.set_body(kubelet_pods(list(ctd.pods.values()) + [pod]))
            exec_in(pod, mark)
            rec = a.wait_for(lambda r: mark in r.get("args", ()), timeout=15)
            assert a.stop() == 0
        finally:
            pod.remove()
    assert rec["k8s"] == k8s_of(pod)


def test_kubelet_rejects_token(ctd, tmp_path):
    web = ctd.pods["web"]
    mark = unique("tok")
    with KubeletMock(tmp_path, token="the-right-one") as k:
        k.set_body(kubelet_pods(ctd.pods.values()))
        wrong = os.path.join(str(tmp_path), "wrong-token")
        with open(wrong, "w") as f:
            f.write("not-the-right-one")
        with Agent("--tracers", "exec", "--cri-socket", "none", "--kubelet", k.url,
                   "--kubelet-token", wrong, "--kubelet-ca", k.ca_file) as a:
            exec_in(web, mark)
            rec = a.wait_for(lambda r: mark in r.get("args", ()))
            assert a.stop() == 0
    err = "".join(a.stderr)
    assert re.search(r"warning: kubelet https://127\.0\.0\.1:\d+/pods: HTTP 401 \(token not "
                     r"accepted", err), err
    # records still flow, with what the cgroup path says
    assert rec["k8s"]["pod"] == "" and rec["k8s"]["container_id"] == web.container_id


def test_kubelet_certificate_from_another_ca(ctd, tmp_path):
    web = ctd.pods["web"]
    mark = unique("ca")
    other = tmp_path / "other-ca"
    other.mkdir()
    with KubeletMock(tmp_path) as k, KubeletMock(other) as k2:
        k.set_body(kubelet_pods(ctd.pods.values()))
        # k's server, k2's CA: the certificate must not verify
        with Agent("--tracers", "exec", "--cri-socket", "none", "--kubelet", k.url,
                   "--kubelet-token", k.token_file, "--kubelet-ca", k2.ca_file) as a:
            exec_in(web, mark)
            rec = a.wait_for(lambda r: mark in r.get("args", ()))
            assert a.stop() == 0
        assert k.requests == [], "the request went out despite the certificate"
    err = "".join(a.stderr)
    assert re.search(r"warning: kubelet .*(certificate|SSL)", err), err
    assert rec["k8s"]["pod"] == ""


@pytest.mark.parametrize("body", [b'{"kind":"PodList","apiVersion":"v1","items":[{"metadata":',
                                  b"<html>502 Bad Gateway</html>",
                                  b'{"kind":"Status","status":"Failure"}'],
                         ids=["truncated", "html", "not-a-podlist"])
def test_kubelet_malformed_answer(ctd, kubelet, body):
    web = ctd.pods["web"]
    kubelet.set_body(body)
    mark = unique("bad")
    with Agent("--tracers", "exec", "--cri-socket", "none", *kubelet_args(kubelet)) as a:
        exec_in(web, mark)
        rec = a.wait_for(lambda r: mark in r.get("args", ()))
        assert a.stop() == 0
    err = "".join(a.stderr)
    assert re.search(r"warning: kubelet https://\S+: (not JSON|not a PodList)", err), err
    assert rec["k8s"]["pod"] == ""


def test_kubelet_huge_podlist(ctd, kubelet):
    """Thousands of pods (a crowded node's worth and more): parsed, and the real ones found."""
    web = ctd.pods["web"]
    filler = [pod_item("filler-%05d" % i, "ns-%03d" % (i % 300), str(uuid.uuid4()),
                       [("c%d" % j, "containerd://" + uuid.uuid4().hex + uuid.uuid4().hex)
                        for j in range(3)],
                       {"app": "filler", "index": str(i), "pod-template-hash": "7d4b9c6f5d"})
              for i in range(6000)]
    body = kubelet_pods(ctd.pods.values(), extra=filler)
    assert len(body) > 16 << 20
    kubelet.set_body(body)
    mark = unique("huge")
    with Agent("--tracers", "exec", "--cri-socket", "none", *kubelet_args(kubelet),
               ready_timeout=60) as a:
        exec_in(web, mark)
        rec = a.wait_for(lambda r: mark in r.get("args", ()))
        assert a.stop() == 0
    assert rec["k8s"] == k8s_of(web)
    err = "".join(a.stderr)
    assert "kubelet: 6002 pods" in err, err
    m = re.search(r"kubelet /pods: \d+ calls, 0 failed, .* last (\d+) bytes", err)
    assert m and int(m.group(1)) == len(body), err
