import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))

import pytest  # noqa: E402
from podsnoop_harness import Cgroup  # noqa: E402


@pytest.fixture
def cgroup():
    cg = Cgroup()
    yield cg
    cg.remove()


@pytest.fixture
def progdir(tmp_path):
    return str(tmp_path)


@pytest.fixture(params=["syscalls", "raw_syscalls"])
def syshook(request):
    """The two syscall hook methods of exec, open and fs on this kernel (the
    syscall tracepoints, the raw sys_enter/sys_exit dispatcher): a test that
    takes this runs once with each, forced with --hook."""
    return request.param
