"""The open and bio flags on the command line: documented, checked, one-line errors."""
import pytest
from podsnoop_harness import run_agent_once


def test_help_documents_open_and_bio_flags():
    rc, out, _ = run_agent_once("--help")
    assert rc == 0
    for flag in ["--open-failed", "--interval", "--bio-min-us", "--bio-hist-entries", "open",
                 "bio", "biolatency"]:
        assert flag in out, flag


@pytest.mark.parametrize("args,needle", [
    (["--interval", "0"], "--interval"),
    (["--interval", "x"], "--interval"),
    (["--bio-min-us", "-3"], "--bio-min-us"),
    (["--bio-hist-entries", "0"], "--bio-hist-entries"),
    (["--hook", "bio=syscalls"], "no method 'syscalls'"),
    (["--hook", "open=io_start"], "no method 'io_start'"),
])
def test_bad_values_exit_2_with_one_line(args, needle):
    rc, out, err = run_agent_once(*args)
    assert rc == 2, (args, rc, err)
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and needle in lines[0] and "error" in lines[0], err
    assert out == ""
