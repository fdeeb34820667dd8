"""A CRI runtime that answers what a test sets (python3-grpcio on a unix
socket), for what a real runtime never sends: a hostile or broken runtime's
name, version and lists. Real pods come from cri_testbed.py; this is only
for answers containerd cannot be made to give.

    with CriStub(tmpdir, runtime_name="evil\\nname") as stub:
        agent("--cri-socket", stub.socket)
        stub.calls        # method names in the order they were called
"""
import os
from concurrent import futures

import cri_testbed

_SERVICE = "runtime.v1.RuntimeService"


class CriStub:
    def __init__(self, tmpdir, runtime_name="containerd", runtime_version="1.6.20"):
        import grpc
        self.pb = pb = cri_testbed.pb()
        self.socket = os.path.join(str(tmpdir), "cri.sock")
        self.calls = []
        answers = {
            "Version": (pb.VersionRequest, lambda req: pb.VersionResponse(
                version="0.1.0", runtime_name=runtime_name, runtime_version=runtime_version,
                runtime_api_version="v1")),
            "ListPodSandbox": (pb.ListPodSandboxRequest, lambda req: pb.ListPodSandboxResponse()),
            "ListContainers": (pb.ListContainersRequest, lambda req: pb.ListContainersResponse()),
        }
        stub = self

        def handler(method, req_cls, answer):
            def call(req, ctx):
                stub.calls.append(method)
                return answer(req)
            return grpc.unary_unary_rpc_method_handler(
                call, request_deserializer=req_cls.FromString,
                response_serializer=lambda m: m.SerializeToString())

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self.server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
            _SERVICE, {m: handler(m, r, a) for m, (r, a) in answers.items()})])
        self.server.add_insecure_port("unix:" + self.socket)
        self.server.start()

    def close(self):
        self.server.stop(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
