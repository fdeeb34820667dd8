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
