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


_HUGEPAGE = """
from numpy._core import multiarray
from astrokit._allocator import retain_freed_memory
before = multiarray._get_madvise_hugepage()
retain_freed_memory()
print(before, multiarray._get_madvise_hugepage())
"""


@pytest.mark.parametrize(("env", "expected"), [
    ({}, "False"),  # astrokit's processes: NumPy no longer advises huge pages for its large arrays
    ({"NUMPY_MADVISE_HUGEPAGE": "1"}, "True"),  # the user's choice, as NumPy reads it, is kept
    ({"ASTROKIT_RETAIN_MEMORY": "0"}, "True"),  # the whole allocator policy turned off: NumPy's default
])
def test_numpy_huge_pages(env, expected):
    base = {k: v for k, v in os.environ.items() if k not in ("NUMPY_MADVISE_HUGEPAGE", "ASTROKIT_RETAIN_MEMORY")}
    out = subprocess.run([sys.executable, "-c", _HUGEPAGE], capture_output=True, text=True, check=True,
                         env={**base, **env})
    before, after = out.stdout.split()
    if before != "True":  # NumPy advises huge pages by default on Linux >= 4.6 only
        pytest.skip("NumPy does not advise huge pages on this kernel")
    assert after == expected
