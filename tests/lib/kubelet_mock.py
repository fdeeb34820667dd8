"""A stand-in for the kubelet's read API (kubelet cannot run here): HTTPS with
a certificate from a CA made for the test, bearer-token checks like the
kubelet's authenticator, and GET /pods answering a PodList in the format the
kubelet writes (kind/apiVersion/metadata/items; metadata, spec, status per pod;
containerStatuses with "containerd://<id>"), describing real pods of the CRI
testbed or anything a test sets.

    with KubeletMock(tmpdir, token="s3cret") as k:
        k.set_pods(kubelet_pods([pod], labels={"web": {"team": "blue"}}))
        agent("--kubelet", k.url, "--kubelet-token", k.token_file, "--kubelet-ca", k.ca_file)
"""
import http.server
import json
import os
import ssl
import subprocess
import threading

NODE = "podsnoop-test-node"


def make_ca_and_cert(d, cn="127.0.0.1"):
    """A CA and a server certificate for 127.0.0.1/localhost signed by it (openssl)."""
    def ossl(*args):
        subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    ca_key, ca_crt = os.path.join(d, "ca.key"), os.path.join(d, "ca.crt")
    key, csr, crt = (os.path.join(d, n) for n in ("server.key", "server.csr", "server.crt"))
    ext = os.path.join(d, "san.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", ca_key, "-out", ca_crt, "-days", "2", "-subj", "/CN=podsnoop-test-ca")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
    ossl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
         "-out", crt, "-days", "2", "-extfile", ext)
    return ca_crt, crt, key


def pod_item(name, namespace, uid, containers, labels=None, phase="Running"):
    """One PodList item as the kubelet writes it; containers: [(name, runtime://id)]."""
    ts = "2026-11-24T10:00:00Z"
    return {
        "metadata": {
            "name": name, "namespace": namespace, "uid": uid,
            "resourceVersion": "4711", "creationTimestamp": ts,
            "labels": dict(labels or {}),
            "annotations": {"kubernetes.io/config.seen": "2026-11-24T10:00:00.123456789Z",
                            "kubernetes.io/config.source": "api"},
        },
        "spec": {
            "containers": [{"name": c, "image": "localhost/podsnoop-busybox:test",
                            "resources": {}, "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File",
                            "imagePullPolicy": "IfNotPresent"} for c, _ in containers],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
            "serviceAccount": "default", "nodeName": NODE, "hostNetwork": True,
            "securityContext": {}, "schedulerName": "default-scheduler",
            "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {
            "phase": phase,
            "conditions": [{"type": t, "status": "True", "lastProbeTime": None,
                            "lastTransitionTime": ts}
                           for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
            "hostIP": "10.0.0.5", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}],
            "startTime": ts,
            "containerStatuses": [{
                "name": c, "state": {"running": {"startedAt": ts}}, "lastState": {},
                "ready": True, "restartCount": 0,
                "image": "localhost/podsnoop-busybox:test",
                "imageID": "sha256:" + "ab" * 32, "containerID": cid, "started": True,
            } for c, cid in containers],
            "qosClass": "BestEffort",
        },
    }


def kubelet_pods(pods, labels=None, extra=()):
    """A PodList body for testbed Pods (their own labels plus labels[pod.name]) and extra items."""
    items = []
    for p in pods:
        lab = {"app": p.name}
        lab.update((labels or {}).get(p.name, {}))
        items.append(pod_item(p.name, p.namespace, p.uid,
                              [(p.container_name, "containerd://" + p.container_id)], lab))
    items.extend(extra)
    return json.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": {},
                       "items": items}).encode()


class KubeletMock:
    def __init__(self, tmpdir, token="podsnoop-test-token", ca_dir=None):
        self.dir = str(tmpdir)
        self.token = token
        self.token_file = os.path.join(self.dir, "token")
        with open(self.token_file, "w") as f:
            f.write(token + "\n")
        self.ca_file, crt, key = make_ca_and_cert(ca_dir or self.dir)
        self.body = b'{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[]}'
        self.requests = []
        mock = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                mock.requests.append((self.path, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != "Bearer " + mock.token:
                    return self.reply(401, b'{"kind":"Status","apiVersion":"v1","status":'
                                           b'"Failure","message":"Unauthorized","code":401}')
                if self.path != "/pods":
                    return self.reply(404, b"404 page not found\n")
                self.reply(200, mock.body)

            def reply(self, code, body):
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.url = "https://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def set_body(self, body):
        self.body = body

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
