"""helm/podsnoop rendered by build/helm-render (helm's template engine rebuilt
from Debian's Go packages: no helm binary exists here), then checked:
yamllint, structure (mounts/volumes, probes/--listen, privileges), values
schema, and the rendered args run through the real agent's flag parser."""
import gzip
import json
import os
import re
import ssl
import subprocess
import urllib.request

import pytest
from clickhouse_harness import ClickHouse
from chart_render import (CAPS, CHART, PENDING_FLAGS, agent_container, check_args_with_agent,
                          docs, one, render, split_pending)
from podsnoop_harness import AGENT, REPO, run_agent_once
from ship_harness import COLLECTOR, compile_schema, free_port, make_ca

FIXTURE = os.path.join(REPO, "tests", "data", "helm-fixture")
YAMLLINT_CONF = os.path.join(REPO, "helm", "yamllint.yaml")


def objects(*args):
    r = render(*args)
    lint(r.stdout)
    return [o for _, o in docs(r.stdout)]


def lint(text):
    p = subprocess.run(["yamllint", "-f", "parsable", "-c", YAMLLINT_CONF, "-"], input=text,
                       capture_output=True, text=True)
    assert p.returncode == 0, "yamllint:\n" + p.stdout + p.stderr


def test_pending_flags_are_really_pending():
    help_text = subprocess.run([AGENT, "--help"], capture_output=True, text=True).stdout
    landed = [f for f in PENDING_FLAGS if re.search(r"(^|\s)%s\b" % re.escape(f), help_text)]
    assert not landed, ("these flags exist in the agent now: remove them from PENDING_FLAGS "
                        "so the chart's use of them is checked: %s" % landed)


def test_defaults_render_lint_and_least_privilege():
    objs = objects()
    # no RBAC, no Service by default; a NetworkPolicy lets only the node in
    assert sorted(o["kind"] for o in objs) == ["DaemonSet", "NetworkPolicy"]
    ds = one(objs, "DaemonSet")
    np = one(objs, "NetworkPolicy")["spec"]
    assert np == {"podSelector": ds["spec"]["selector"], "policyTypes": ["Ingress"],
                  "ingress": []}
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": 1}}
    pod, c = agent_container(objs)
    assert pod["hostPID"] is True
    assert pod["hostNetwork"] is False
    assert pod["automountServiceAccountToken"] is False and "serviceAccountName" not in pod
    assert pod["priorityClassName"] == "system-node-critical"
    assert {"operator": "Exists"} in pod["tolerations"]
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["privileged"] is False and sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert set(sc["capabilities"]["add"]) == CAPS
    env = {e["name"]: e for e in c["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert env["HOST_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.hostIP"
    assert c["resources"]["limits"]["memory"] and c["resources"]["requests"]["cpu"]
    ann = ds["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true" and ann["prometheus.io/port"] == "9464"


def test_every_mount_has_a_volume_and_host_mounts_are_read_only():
    for extra in ([], ["--set", "collector.url=https://c.example:8443/v1",
                       "--set", "collector.tokenSecret.name=tok"]):
        pod, c = agent_container(objects(*extra))
        vols = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        assert set(mounts) <= set(vols), "mounts without a volume: %s" % (set(mounts) - set(vols))
        assert set(vols) <= set(mounts), "volumes never mounted: %s" % (set(vols) - set(mounts))
        paths = {m["mountPath"]: m for m in c["volumeMounts"]}
        for ro in ("/sys/kernel/btf", "/sys/fs/cgroup", "/sys/kernel/tracing",
                   "/run/containerd"):
            assert paths[ro].get("readOnly") is True, ro
            assert vols[paths[ro]["name"]]["hostPath"]["path"] == ro
        # the socket's directory: a restarted runtime's new socket shows there
        assert vols["cri-socket"]["hostPath"]["type"] == "Directory"
        args = c["args"]
        assert args[args.index("--cri-socket") + 1] == "/run/containerd/containerd.sock"
        if extra:
            spool = paths["/var/lib/podsnoop/spool"]
            assert not spool.get("readOnly")
            assert vols["spool"]["hostPath"] == {"path": "/var/lib/podsnoop/spool",
                                                 "type": "DirectoryOrCreate"}
            assert vols["collector-token"]["secret"]["secretName"] == "tok"
            assert paths["/etc/podsnoop/collector"]["readOnly"] is True
        else:
            assert "spool" not in vols      # no collector: no writable host path at all
            assert all(m.get("readOnly") for m in c["volumeMounts"])


@pytest.mark.parametrize("port", [9464, 18080])
def test_probe_ports_match_listen(port):
    pod, c = agent_container(objects("--set", "metrics.port=%d" % port))
    args = c["args"]
    listen = args[args.index("--listen") + 1]
    assert listen == ":%d" % port
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = c[probe]["httpGet"]
        assert get["path"] == path
        target = ports[get["port"]] if isinstance(get["port"], str) else get["port"]
        assert target == port
    out, _ = check_args_with_agent(args)
    assert "listen: :%d\n" % port in out


def test_args_are_flags_the_agent_accepts():
    values = {"tracers": ["exec"], "hooks": {"exec": "sched_btf"}, "cgroups": ["/kubepods"],
              "output": "ndjson", "verbose": 2, "extraArgs": ["--drain-ms", "20"],
              "filters": {"namespaces": ["team-a", "team-b"], "labelSelector": "app=web,tier=fe"},
              "metadata": {"kubelet": {"enabled": True}},
              "collector": {"url": "https://collector:8443", "tokenSecret": {"name": "t"}},
              "thresholds": {"bioMinUs": 1000, "fsMinUs": 10000, "interval": 10},
              "rateLimit": "5000,20000"}
    path = os.path.join(REPO, "build", "test-chart-values.json")
    with open(path, "w") as f:
        json.dump(values, f)
    _, c = agent_container(objects("-f", path))
    args = c["args"]
    out, pending = check_args_with_agent(args)
    assert "tracers: exec=sched_btf\n" in out
    assert "cgroup: /kubepods\n" in out and "exclude-host: yes\n" in out
    assert "drain-ms: 20\n" in out
    assert "bio-min-us: 1000\n" in out and "interval: 10\n" in out
    assert "rate-limit: 5000,20000\n" in out
    assert set(pending) == set(PENDING_FLAGS)           # every pending flag is exercised
    assert args[args.index("--kubelet") + 1] == "https://$(HOST_IP):10250"
    assert args.count("--namespace") == 2
    assert args[args.index("--spool-max-bytes") + 1] == "268435456"
    assert "-vv" in args


def test_rate_limit_value_default_number_and_off():
    _, c = agent_container(objects())
    assert "--rate-limit" not in c["args"]          # null: the agent's own default
    for value, shown in (("0", "off"), ("300", "300,1500")):
        _, c = agent_container(objects("--set", "rateLimit=" + value))
        out, _ = check_args_with_agent(c["args"])
        assert "rate-limit: %s\n" % shown in out, (value, out)


def test_tls_and_kubelet_values_map_to_agent_flags():
    """collector.caSecret, collector.clientCertSecret and
    metadata.kubelet.insecureSkipVerify: each becomes a flag the agent's own
    parser takes, pointing at a file the pod mounts read-only from the Secret."""
    pod, c = agent_container(objects(
        "--set", "collector.url=https://collector:8443",
        "--set", "collector.caSecret.name=coll-ca", "--set", "collector.caSecret.key=root.pem",
        "--set", "collector.clientCertSecret.name=coll-tls",
        "--set", "metadata.kubelet.enabled=true",
        "--set", "metadata.kubelet.insecureSkipVerify=true"))
    args = c["args"]
    out, _ = check_args_with_agent(args)
    assert "collector-ca: /etc/podsnoop/collector-ca/ca.crt\n" in out
    assert "collector-cert: /etc/podsnoop/collector-client/tls.crt\n" in out
    assert "collector-key: /etc/podsnoop/collector-client/tls.key\n" in out
    assert "kubelet-insecure: yes\n" in out
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    for flag in ("--collector-ca", "--collector-cert", "--collector-key"):
        path = args[args.index(flag) + 1]
        m = mounts[os.path.dirname(path)]
        assert m["readOnly"] is True
        items = {i["path"]: i["key"] for i in vols[m["name"]]["secret"]["items"]}
        assert os.path.basename(path) in items, (flag, items)
    assert vols["collector-ca"]["secret"] == {"secretName": "coll-ca", "defaultMode": 0o444,
                                              "items": [{"key": "root.pem", "path": "ca.crt"}]}
    assert vols["collector-client"]["secret"]["secretName"] == "coll-tls"
    assert vols["collector-client"]["secret"]["defaultMode"] == 0o400
    assert [i["key"] for i in vols["collector-client"]["secret"]["items"]] == ["tls.crt",
                                                                               "tls.key"]
    # the negative: none of them unless asked for
    pod, c = agent_container(objects("--set", "collector.url=https://collector:8443",
                                     "--set", "collector.tokenSecret.name=tok",
                                     "--set", "metadata.kubelet.enabled=true"))
    out, _ = check_args_with_agent(c["args"])
    for flag in ("--collector-ca", "--collector-cert", "--collector-key", "--kubelet-insecure"):
        assert flag not in c["args"]
    assert "collector-ca: system\n" in out and "kubelet-insecure: no\n" in out
    assert {"collector-ca", "collector-client"}.isdisjoint(v["name"] for v in pod["volumes"])
    # and no TLS files without a collector at all
    _, c = agent_container(objects("--set", "collector.caSecret.name=coll-ca"))
    assert "--collector-ca" not in c["args"]
    assert not [m for m in c["volumeMounts"] if m["name"] == "collector-ca"]


def test_agent_rejects_a_bad_rendered_flag():
    """The check above can fail: a flag the agent does not know is refused."""
    _, c = agent_container(objects("--set", "extraArgs={--no-such-flag}"))
    kept, _ = split_pending(c["args"])
    p = subprocess.run([AGENT, "--check-config"] + kept, capture_output=True, text=True)
    assert p.returncode == 2 and "unknown option '--no-such-flag'" in p.stderr


@pytest.mark.parametrize("kube,resource", [("1.30.2", "nodes/proxy"), ("1.33.0", "nodes/pods")])
def test_kubelet_rbac_only_when_enabled(kube, resource):
    objs = objects("--kube-version", kube, "--set", "metadata.kubelet.enabled=true")
    assert sorted(o["kind"] for o in objs) == ["ClusterRole", "ClusterRoleBinding",
                                              "DaemonSet", "NetworkPolicy", "ServiceAccount"]
    role = one(objs, "ClusterRole")
    assert role["rules"] == [{"apiGroups": [""], "resources": [resource], "verbs": ["get"]}]
    binding = one(objs, "ClusterRoleBinding")
    sa = one(objs, "ServiceAccount")
    assert binding["subjects"][0]["name"] == sa["metadata"]["name"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    pod, _ = agent_container(objs)
    assert pod["serviceAccountName"] == sa["metadata"]["name"]
    assert pod["automountServiceAccountToken"] is True
    forced = objects("--kube-version", kube, "--set", "metadata.kubelet.enabled=true",
                     "--set", "metadata.kubelet.authzResource=nodes/proxy")
    assert one(forced, "ClusterRole")["rules"][0]["resources"] == ["nodes/proxy"]


def test_service_monitor_needs_the_api_and_matches_the_port():
    p = render("--set", "metrics.serviceMonitor.enabled=true", check=False)
    assert p.returncode == 1 and "no monitoring.coreos.com/v1 API" in p.stderr
    objs = objects("--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.port=9555",
                   "--api-versions", "monitoring.coreos.com/v1")
    svc, sm = one(objs, "Service"), one(objs, "ServiceMonitor")
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["ports"][0] == {"name": "metrics", "port": 9555, "targetPort": "metrics"}
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    ds = one(objs, "DaemonSet")
    assert sm["spec"]["selector"]["matchLabels"] == ds["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["selector"] == ds["spec"]["selector"]["matchLabels"]
    # helm's install order: Service before DaemonSet, unknown kinds last
    assert [o["kind"] for o in objs] == ["NetworkPolicy", "Service", "DaemonSet", "ServiceMonitor"]


def test_legacy_kernel_and_seccomp_values():
    _, c = agent_container(objects("--set", "securityContext.legacyKernel=true"))
    assert set(c["securityContext"]["capabilities"]["add"]) == CAPS | {"SYS_ADMIN", "SYS_RESOURCE"}
    pod, _ = agent_container(objects("--set", "securityContext.seccompProfile.type=Localhost",
                                     "--set", "securityContext.seccompProfile.localhostProfile="
                                              "podsnoop.json"))
    assert pod["securityContext"]["seccompProfile"] == {"type": "Localhost",
                                                        "localhostProfile": "podsnoop.json"}


@pytest.mark.parametrize("bad,msg", [
    (["--set", "metrics.port=70000"], "metrics.port"),
    (["--set", "output=xml"], "output"),
    (["--set", "tracers={Exec!}"], "tracers.0"),
    (["--set", "nosuchkey=1"], "Additional property nosuchkey"),
    (["--set", "filters.labelSelector=app"], "filters.labelSelector"),
    (["--set", "securityContext.seccompProfile.type=Localhost"], "localhostProfile"),
    (["--set", "securityContext.extraCapabilities={CAP_NET_ADMIN}"], "extraCapabilities"),
    (["--set", "collector.url=ftp://x"], "collector.url"),
    (["--set", "otlp.endpoint=localhost:4318"], "otlp.endpoint"),
    (["--set", "collector.caSecret.key="], "collector.caSecret.key"),
    (["--set", "collector.clientCertSecret.certKey="], "collector.clientCertSecret.certKey"),
    (["--set", "metadata.kubelet.insecureSkipVerify=maybe"], "insecureSkipVerify"),
])
def test_schema_rejects_bad_values(bad, msg):
    p = render(*bad, check=False)
    assert p.returncode == 1
    assert "values don't meet the specifications of the schema(s)" in p.stderr
    assert msg in p.stderr, p.stderr


@pytest.mark.parametrize("values", [
    ["--set", "collector.url=http://collector:9400", "--set", "collector.tokenSecret.name=t"],
    ["--set", "collector.url=https://collector:8443"],
], ids=["http", "no-auth"])
def test_chart_never_ships_to_an_open_collector(values):
    """Issue 15 item 8: a collector without TLS or a token takes batches from anyone.
    The chart refuses collector.url unless it is https:// and the agent
    authenticates (a token or a client certificate), and says so; allowInsecure
    is the explicit way out."""
    p = render(*values, check=False)
    assert p.returncode == 1
    assert "collector.url: the chart ships only over https://" in p.stderr, p.stderr
    _, c = agent_container(objects(*values, "--set", "collector.allowInsecure=true"))
    assert c["args"][c["args"].index("--collector") + 1] == values[1].split("=", 1)[1]
    for ok in (["--set", "collector.tokenSecret.name=t"],
               ["--set", "collector.clientCertSecret.name=c"]):
        _, c = agent_container(objects("--set", "collector.url=https://collector:8443", *ok))
        assert "--collector" in c["args"]


SCRAPER = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}},
           {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]


def values_file(tmp_path, values):
    path = tmp_path / "values.json"
    path.write_text(json.dumps(values))
    return str(path)


def test_network_policy_lets_only_the_scraper_in(tmp_path):
    """Any pod could reach the endpoints and hold their connections (issue
    15 item 6): the chart's NetworkPolicy admits the peers of
    networkPolicy.metricsFrom to metrics.port and nothing else; the node,
    whose kubelet probes the pods, is always allowed by NetworkPolicy."""
    f = values_file(tmp_path, {"networkPolicy": {"metricsFrom": SCRAPER},
                               "metrics": {"port": 9555}})
    objs = objects("-f", f)
    ds, np = one(objs, "DaemonSet"), one(objs, "NetworkPolicy")
    assert np["metadata"]["namespace"] == "default"
    assert np["spec"]["podSelector"] == ds["spec"]["selector"]
    assert np["spec"]["policyTypes"] == ["Ingress"]
    assert np["spec"]["ingress"] == [{"from": SCRAPER,
                                      "ports": [{"port": 9555, "protocol": "TCP"}]}]
    _, c = agent_container(objs)
    assert {p["containerPort"] for p in c["ports"]} == {9555}
    assert c["args"][c["args"].index("--listen") + 1] == ":9555"
    notes = render("-f", f, "--show-notes").stdout
    assert "lets no one but the node" not in notes
    # the defaults say what they close; hostNetwork, what the policy cannot
    notes = render("--show-notes").stdout
    assert "NetworkPolicy podsnoop lets no one but the node reach port 9464" in notes
    assert "networkPolicy.metricsFrom" in notes and "With hostNetwork" not in notes
    notes = render("--show-notes", "--set", "hostNetwork=true").stdout
    assert "With hostNetwork the NetworkPolicy does not apply" in notes
    # and none when turned off
    objs = objects("--set", "networkPolicy.enabled=false")
    assert "NetworkPolicy" not in [o["kind"] for o in objs]
    assert "NetworkPolicy" not in render("--show-notes", "--set",
                                         "networkPolicy.enabled=false").stdout


@pytest.mark.parametrize("peer,msg", [
    ({}, "at least 1 properties"),
    ({"pods": {}}, "Additional property pods"),
    ({"ipBlock": {"except": ["10.0.0.0/8"]}}, "cidr is required"),
    ({"podSelector": {"matchExpressions": [{"key": "app", "operator": "Is"}]}}, "operator"),
])
def test_schema_rejects_bad_network_policy_peers(tmp_path, peer, msg):
    p = render("-f", values_file(tmp_path, {"networkPolicy": {"metricsFrom": [peer]}}),
               check=False)
    assert p.returncode == 1 and msg in p.stderr, p.stderr


def test_values_yaml_lints():
    with open(os.path.join(CHART, "values.yaml")) as f:
        lint(f.read())


# ---- the renderer's own helm semantics, on a fixture chart

def test_renderer_helm_functions():
    r = render("--release", "rel", "--namespace", "ns1", "--kube-version", "1.29.3",
               "--set", "nested.drop=null", "--set", "name=over", chart=FIXTURE)
    objs = docs(r.stdout)
    # helm's install order: ServiceAccount before ConfigMap; comment-only document dropped
    assert [(s, o["kind"]) for s, o in objs] == [("fixture/templates/sa.yaml", "ServiceAccount"),
                                                 ("fixture/templates/cm.yaml", "ConfigMap")]
    data = objs[1][1]["data"]
    assert objs[1][1]["metadata"] == {"name": "rel-cm", "namespace": "ns1"}
    assert data["include"] == "hello over"
    assert data["tpl"] == "over-rel"                      # tpl sees .Values and .Release
    assert data["chart"] == "fixture-1.2.3-9.9"
    assert data["template"] == "fixture/templates/cm.yaml"
    assert data["missing"] == ""                          # missingkey=zero, no "<no value>"
    assert data["kube"] == "v1.29.3"
    assert data["nested"] == "keep: 1\n"                  # null in --set deleted the key
    assert data["list"] == '["a","b"]'


def test_renderer_required_fail_and_recursion():
    p = render("--set", "mode=fail", chart=FIXTURE, check=False)
    assert p.returncode == 1
    assert re.search(r"execution error at \(fixture/templates/cm.yaml:\d+:\d+\): "
                     r"needed must be set", p.stderr), p.stderr
    ok = render("--set", "mode=fail", "--set", "needed=yes", chart=FIXTURE)
    assert "needed: yes" in ok.stdout
    p = render("--set", "mode=recurse", chart=FIXTURE, check=False)
    assert p.returncode == 1 and "nested reference name: fixture.loop" in p.stderr
    p = render("--set", "mode=bogus", chart=FIXTURE, check=False)
    assert p.returncode == 1 and "mode" in p.stderr


def test_renderer_values_files_coalesce(tmp_path):
    f1, f2 = tmp_path / "a.yaml", tmp_path / "b.yaml"
    f1.write_text("nested:\n  keep: 5\n  new: x\n")
    f2.write_text("nested:\n  new: null\nname: fromfile\n")
    r = render("-f", str(f1), "-f", str(f2), "--set-string", "list={1,true}", "--show-values",
               "--set-string", "tag=007", "--set", "nested.zero=007", "--set", "nested.t=True",
               chart=FIXTURE)
    v = json.loads(r.stdout)
    assert v["nested"] == {"keep": 5, "drop": 2, "zero": "007", "t": True}
    assert v["name"] == "fromfile"
    assert v["tag"] == "007"
    assert v["list"] == ["1", "true"]                     # helm's strvals: a list of strings


# ---- the collector Deployment (collectorDeployment.*) ----

COLL = ["--set", "collectorDeployment.enabled=true",
        "--set", "collectorDeployment.tokenSecret.name=ingest-token",
        "--set", "collectorDeployment.tlsSecret.name=ingest-tls"]


def collector_pod(objs):
    dep = one(objs, "Deployment")
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    return dep, pod, c


def secret_files(pod, c, data):
    """{mountPath/file: content} as the kubelet lays the Secrets out: data maps a
    Secret name to its keys."""
    vols = {v["name"]: v for v in pod["volumes"]}
    out = {}
    for m in c["volumeMounts"]:
        s = vols[m["name"]]["secret"]
        assert m["readOnly"] is True
        for item in s["items"]:
            out[m["mountPath"] + "/" + item["path"]] = data[s["secretName"]][item["key"]]
    return out


def test_collector_deployment_with_created_secret():
    """A Deployment, a ClusterIP Service in front of its pods and a Secret the chart
    makes from clickhouse.url and .password; the URL reaches the args through an env
    var from the Secret, the password as a file; pods no agent selector takes."""
    objs = objects(*COLL, "--set", "collectorDeployment.clickhouse.url=http://ch.db:8123",
                   "--set", "collectorDeployment.clickhouse.password=pa55",
                   "--set", "collectorDeployment.replicas=3")
    assert sorted(o["kind"] for o in objs) == ["DaemonSet", "Deployment", "NetworkPolicy",
                                               "Secret", "Service"]
    dep, pod, c = collector_pod(objs)
    secret = one(objs, "Secret")
    assert secret["metadata"]["name"] == "podsnoop-collector-clickhouse"
    assert secret["stringData"] == {"url": "http://ch.db:8123", "password": "pa55"}
    assert dep["spec"]["replicas"] == 3
    args = c["args"]
    assert c["command"] == ["/usr/bin/podsnoop-collector"]
    assert args[args.index("--clickhouse") + 1] == "$(CLICKHOUSE_URL)"
    (env,) = c["env"]
    assert env == {"name": "CLICKHOUSE_URL", "valueFrom": {"secretKeyRef": {
        "name": "podsnoop-collector-clickhouse", "key": "url"}}}
    files = secret_files(pod, c, {"podsnoop-collector-clickhouse": secret["stringData"],
                                  "ingest-token": {"token": "T"},
                                  "ingest-tls": {"tls.crt": "C", "tls.key": "K"}})
    for flag, want in (("--clickhouse-password-file", "pa55"), ("--token-file", "T"),
                       ("--tls-cert", "C"), ("--tls-key", "K")):
        assert files[args[args.index(flag) + 1]] == want, flag
    assert args[args.index("--listen") + 1] == "0.0.0.0:9400"
    assert args[args.index("--clickhouse-database") + 1] == "podsnoop"
    assert args[args.index("--clickhouse-user") + 1] == "podsnoop"
    assert "--clickhouse-ca" not in args and "--out" not in args
    # the Service reaches these pods, and only these
    svc = one(objs, "Service")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["type"] == "ClusterIP" and svc["spec"]["selector"] == labels
    assert dep["spec"]["selector"]["matchLabels"] == labels
    assert svc["spec"]["ports"] == [{"name": "ingest", "port": 9400, "targetPort": "ingest",
                                     "protocol": "TCP"}]
    assert c["ports"] == [{"name": "ingest", "containerPort": 9400, "protocol": "TCP"}]
    agent_sel = one(objs, "DaemonSet")["spec"]["selector"]["matchLabels"]
    np_sel = one(objs, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"]
    for sel in (agent_sel, np_sel):
        assert not set(sel.items()) <= set(labels.items()), (sel, labels)
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "ingest", "scheme": "HTTPS"}
    # no privileges, no API token
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["allowPrivilegeEscalation"] is False and c["resources"]["limits"]["memory"]
    notes = render(*COLL, "--set", "collectorDeployment.clickhouse.url=http://ch.db:8123",
                   "--show-notes").stdout
    assert "https://podsnoop-collector.default.svc:9400" in notes


def test_collector_deployment_existing_secret_and_ca():
    """clickhouse.existingSecret: no Secret rendered, the URL and password read from
    the named one under the keys given; caSecret becomes --clickhouse-ca."""
    objs = objects(*COLL, "--set", "collectorDeployment.clickhouse.existingSecret=ch-cred",
                   "--set", "collectorDeployment.clickhouse.urlKey=endpoint",
                   "--set", "collectorDeployment.clickhouse.passwordKey=secret",
                   "--set", "collectorDeployment.clickhouse.caSecret.name=ch-ca",
                   "--set", "collectorDeployment.clickhouse.user=",
                   "--set", "collectorDeployment.port=9500")
    assert "Secret" not in [o["kind"] for o in objs]
    _, pod, c = collector_pod(objs)
    args = c["args"]
    assert c["env"][0]["valueFrom"]["secretKeyRef"] == {"name": "ch-cred", "key": "endpoint"}
    files = secret_files(pod, c, {"ch-cred": {"secret": "pw"}, "ch-ca": {"ca.crt": "CA"},
                                  "ingest-token": {"token": "T"},
                                  "ingest-tls": {"tls.crt": "C", "tls.key": "K"}})
    assert files[args[args.index("--clickhouse-password-file") + 1]] == "pw"
    assert files[args[args.index("--clickhouse-ca") + 1]] == "CA"
    assert "--clickhouse-user" not in args                 # ClickHouse's default user
    assert args[args.index("--listen") + 1] == "0.0.0.0:9500"
    assert one(objs, "Service")["spec"]["ports"][0]["port"] == 9500


@pytest.mark.parametrize("values, msg", [
    (["--set", "collectorDeployment.enabled=true",
      "--set", "collectorDeployment.clickhouse.url=http://ch:8123"], "set tokenSecret and tlsSecret"),
    (COLL, "set url (and password), or existingSecret"),
    (COLL + ["--set", "collectorDeployment.clickhouse.url=ftp://ch"], "url"),
    (COLL + ["--set", "collectorDeployment.clickhouse.url=http://ch:8123",
             "--set", "collectorDeployment.clickhouse.database=a-b"], "database"),
    (COLL + ["--set", "collectorDeployment.clickhouse.url=http://ch:8123",
             "--set", "collectorDeployment.bogus=1"], "bogus"),
])
def test_collector_deployment_refuses(values, msg):
    p = render(*values, check=False)
    assert p.returncode != 0 and msg in p.stderr, p.stderr


def test_collector_deployment_insecure_and_off():
    """allowInsecure: no token or TLS flags, plain HTTP probes; enabled=false (the
    default, see test_defaults_render_lint_and_least_privilege): nothing of it."""
    objs = objects("--set", "collectorDeployment.enabled=true",
                   "--set", "collectorDeployment.allowInsecure=true",
                   "--set", "collectorDeployment.clickhouse.url=http://ch:8123")
    _, pod, c = collector_pod(objs)
    assert not {"--token-file", "--tls-cert", "--tls-key"} & set(c["args"])
    assert c["readinessProbe"]["httpGet"]["scheme"] == "HTTP"
    assert [m["name"] for m in c["volumeMounts"]] == ["clickhouse"]
    objs = objects("--set", "collectorDeployment.clickhouse.url=http://ch:8123")
    assert not [o for o in objs if o["kind"] in ("Deployment", "Service", "Secret")]


def test_collector_deployment_args_run_the_real_collector(tmp_path):
    """The rendered command, env and Secret files, laid out as the kubelet would (in
    a directory), start the real collector against a real ClickHouse: it answers the
    probe over HTTPS and writes an agent's batch with the token into ClickHouse."""
    ca = make_ca(str(tmp_path))
    port = free_port()
    with ClickHouse(tmp_path) as ch:
        objs = objects(*COLL, "--set", "collectorDeployment.clickhouse.url=" + ch.url,
                       "--set", "collectorDeployment.clickhouse.password=" + ch.PASSWORD,
                       "--set", "collectorDeployment.port=%d" % port)
        _, pod, c = collector_pod(objs)
        secret = one(objs, "Secret")
        data = {secret["metadata"]["name"]: secret["stringData"],
                "ingest-token": {"token": "tok-123\n"},
                "ingest-tls": {"tls.crt": open(ca["server_cert"]).read(),
                               "tls.key": open(ca["server_key"]).read()}}
        root = str(tmp_path / "pod")
        for path, content in secret_files(pod, c, data).items():
            os.makedirs(os.path.dirname(root + path), exist_ok=True)
            with open(root + path, "w") as f:
                f.write(content)
        env = {e["name"]: data[e["valueFrom"]["secretKeyRef"]["name"]][
            e["valueFrom"]["secretKeyRef"]["key"]] for e in c["env"]}
        argv = [a.replace("$(CLICKHOUSE_URL)", env["CLICKHOUSE_URL"]) for a in c["args"]]
        argv = [root + a if a.startswith("/etc/podsnoop/") else a for a in argv]
        p = subprocess.Popen([COLLECTOR] + argv, stderr=subprocess.PIPE, text=True)
        try:
            for line in p.stderr:
                if line.rstrip().endswith("info: ready"):
                    break
            ctx = ssl.create_default_context(cafile=ca["ca"])
            probe = c["readinessProbe"]["httpGet"]
            url = "%s://127.0.0.1:%d%s" % (probe["scheme"].lower(), port, probe["path"])
            with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
                assert r.read().strip() == b"ok"
            pb2 = compile_schema(str(tmp_path))
            b = pb2.Batch(seq=1, sent_ns=1700000000000000000)
            b.agent.node, b.agent.agent_id = "n1", "c" * 32
            b.records.add().exec.ts_ns = 1700000000000000001
            req = urllib.request.Request(
                "https://127.0.0.1:%d/v1/batches" % port, method="POST",
                data=gzip.compress(b.SerializeToString()),
                headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip",
                         "Authorization": "Bearer tok-123"})
            with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
                assert r.status == 200
            assert ch.query("SELECT node FROM podsnoop.exec FINAL").strip() == "n1"
        finally:
            p.terminate()
            p.wait(timeout=20)


def test_otlp_values_endpoint_headers_from_a_secret_and_ca():
    """otlp.endpoint becomes --otlp-endpoint (the agent's parser takes it), the
    headers come from the Secret as OTEL_EXPORTER_OTLP_HEADERS (no credential in
    the args), the CA is mounted read-only for --otlp-ca, and batches get the spool."""
    pod, c = agent_container(objects(
        "--set", "otlp.endpoint=https://otel.example:4318",
        "--set", "otlp.headersSecret.name=otlp-hdrs",
        "--set", "otlp.caSecret.name=otlp-ca", "--set", "otlp.caSecret.key=root.pem",
        "--set", "otlp.serviceName=snoop", "--set", "otlp.resourceAttributes=k8s.cluster.name=c1"))
    args = c["args"]
    out, _ = check_args_with_agent(args)
    assert "otlp-logs-endpoint: https://otel.example:4318/v1/logs\n" in out
    assert "otlp-ca: /etc/podsnoop/otlp-ca/ca.crt\n" in out
    assert "spool-dir: /var/lib/podsnoop/spool\n" in out
    env = {e["name"]: e for e in c["env"]}
    assert env["OTEL_EXPORTER_OTLP_HEADERS"]["valueFrom"] == {
        "secretKeyRef": {"name": "otlp-hdrs", "key": "headers"}}
    assert env["OTEL_SERVICE_NAME"]["value"] == "snoop"
    assert env["OTEL_RESOURCE_ATTRIBUTES"]["value"] == "k8s.cluster.name=c1"
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert vols["otlp-ca"]["secret"] == {"secretName": "otlp-ca", "defaultMode": 0o444,
                                         "items": [{"key": "root.pem", "path": "ca.crt"}]}
    assert mounts["otlp-ca"] == {"name": "otlp-ca", "mountPath": "/etc/podsnoop/otlp-ca",
                                 "readOnly": True}
    assert "spool" in vols
    # the negative: nothing of it without an endpoint
    pod, c = agent_container(objects("--set", "otlp.headersSecret.name=otlp-hdrs",
                                     "--set", "otlp.caSecret.name=otlp-ca"))
    assert not [a for a in c["args"] if a.startswith("--otlp")]
    assert not [e for e in c["env"] if e["name"].startswith("OTEL_")]
    assert {"otlp-ca", "spool"}.isdisjoint(v["name"] for v in pod["volumes"])


def test_otlp_values_turn_a_signal_off():
    """otlp.metrics=false (or logs=false) becomes OTEL_METRICS_EXPORTER=none, which the
    agent takes as metrics off; both on by default, nothing without an endpoint."""
    _, c = agent_container(objects("--set", "otlp.endpoint=http://otel:4318"))
    assert not [e for e in c["env"] if e["name"].endswith("_EXPORTER")]
    out, _ = check_args_with_agent(c["args"])
    assert "otlp-metrics-endpoint: http://otel:4318/v1/metrics\n" in out
    for off, var in (("metrics", "OTEL_METRICS_EXPORTER"), ("logs", "OTEL_LOGS_EXPORTER")):
        _, c = agent_container(objects("--set", "otlp.endpoint=http://otel:4318",
                                       "--set", "otlp.%s=false" % off))
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env[var] == "none"
        rc, out, err = run_agent_once("--check-config", *split_pending(c["args"])[0],
                                      env={var: env[var]})
        assert rc == 0, err
        assert "otlp-%s-endpoint: off\n" % off in out
    _, c = agent_container(objects("--set", "otlp.metrics=false"))
    assert not [e for e in c["env"] if e["name"].startswith("OTEL_")]


def test_otlp_values_client_certificate_from_a_tls_secret():
    """otlp.clientCertSecret mounts the certificate and key read-only (0400) and
    passes them as --otlp-cert and --otlp-key, which the agent's parser takes;
    nothing of it without an endpoint."""
    pod, c = agent_container(objects(
        "--set", "otlp.endpoint=https://otel.example:4318",
        "--set", "otlp.clientCertSecret.name=otlp-mtls",
        "--set", "otlp.clientCertSecret.keyKey=client.key"))
    out, _ = check_args_with_agent(c["args"])
    assert "otlp-cert: /etc/podsnoop/otlp-client/tls.crt\n" in out
    assert "otlp-key: /etc/podsnoop/otlp-client/tls.key\n" in out
    vols = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert vols["otlp-client"]["secret"] == {
        "secretName": "otlp-mtls", "defaultMode": 0o400,
        "items": [{"key": "tls.crt", "path": "tls.crt"}, {"key": "client.key", "path": "tls.key"}]}
    assert mounts["otlp-client"] == {"name": "otlp-client",
                                     "mountPath": "/etc/podsnoop/otlp-client", "readOnly": True}
    pod, c = agent_container(objects("--set", "otlp.clientCertSecret.name=otlp-mtls"))
    assert not [a for a in c["args"] if a.startswith("--otlp")]
    assert "otlp-client" not in {v["name"] for v in pod["volumes"]}
