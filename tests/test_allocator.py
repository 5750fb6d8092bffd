"""astrokit._allocator: a freed full-frame array's memory is reused by the next one, not faulted in afresh."""

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="mallopt thresholds are glibc's")

_CODE = """
import resource, sys
import numpy as np
from astrokit._allocator import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == "retain" else False
a = np.ones((4000, 4000), np.float32)  # 64 MB, above glibc's default mmap threshold (32 MB at most)
del a
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
b = np.ones((4000, 4000), np.float32)
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _reuse_faults(mode, env=None):
    out = subprocess.run([sys.executable, "-c", _CODE, mode], capture_output=True, text=True, check=True, env=env)
    applied, faults = out.stdout.split()
    return applied == "True", int(faults)


def test_freed_frames_are_reused_without_page_faults():
    applied, retained = _reuse_faults("retain")
    assert applied
    _, default = _reuse_faults("default")
    # glibc's default maps the second array afresh: every page (4 kB, or 2 MB with transparent huge pages)
    # faults in again; retained, the heap's pages are still there
    assert default >= 30
    assert retained <= 5


def test_turned_off_by_the_environment():
    applied, _ = _reuse_faults("retain", env={**os.environ, "ASTROKIT_RETAIN_MEMORY": "0"})
    assert not applied
