"""proto/opentelemetry, podsnoop's opentelemetry-proto subset, against the
OpenTelemetry project's own definitions from npm (installed into build/otlp-node
by make test-build): field names, numbers and wire types, enum values, and the
presence of the fields upstream declares proto3 `optional` (tests/otlp/check_proto.js)."""
import os
import subprocess

from podsnoop_harness import BUILD, REPO

NODE_MODULES = os.path.join(BUILD, "otlp-node", "node_modules")
PROTO = os.path.join(REPO, "proto")


def check(proto_dir):
    return subprocess.run(["node", os.path.join(REPO, "tests", "otlp", "check_proto.js"),
                           proto_dir, NODE_MODULES], capture_output=True, text=True, timeout=60)


def test_subset_matches_the_official_definitions():
    p = check(PROTO)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines()[-1].startswith("ok 33 messages"), p.stdout


def test_a_wrong_number_or_type_is_caught(tmp_path):
    """The check itself: a copy with one number and one type changed fails on both."""
    subprocess.run(["cp", "-r", PROTO, str(tmp_path / "p")], check=True)
    logs = tmp_path / "p" / "opentelemetry" / "proto" / "logs" / "v1" / "logs.proto"
    text = logs.read_text()
    assert "string event_name = 12;" in text and "fixed64 time_unix_nano = 1;" in text
    logs.write_text(text.replace("string event_name = 12;", "string event_name = 13;")
                    .replace("fixed64 time_unix_nano = 1;", "uint64 time_unix_nano = 1;"))
    p = check(str(tmp_path / "p"))
    assert p.returncode == 1
    assert "LogRecord: eventName" in p.stdout and "LogRecord: timeUnixNano" in p.stdout, p.stdout


def test_debian_protoc_and_protoc_c_compile_it(tmp_path):
    files = [os.path.relpath(os.path.join(d, f), PROTO)
             for d, _, fs in os.walk(os.path.join(PROTO, "opentelemetry")) for f in fs
             if f.endswith(".proto")]
    assert len(files) == 6
    for tool, out in (("protoc", "--python_out="), ("protoc-c", "--c_out=")):
        p = subprocess.run([tool, "-I" + PROTO, out + str(tmp_path)] + files,
                           capture_output=True, text=True)
        assert p.returncode == 0, tool + ": " + p.stderr
