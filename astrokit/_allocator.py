"""Keep freed full-frame arrays in the process for reuse, instead of handing them back to the kernel.

glibc's ``malloc`` serves every block above its mmap threshold (at most 32 MB, the size of a 2,900 x 2,900
float32 image) with a fresh ``mmap`` and unmaps it on ``free``. A 4k frame's arrays (64 MB as float32,
128 MB as complex64 spectra) therefore come back from the kernel as new pages each time, and NumPy asks
for transparent huge pages on them (``madvise``), which may stall on memory compaction. `subtract`
allocates and frees several dozen such arrays per pair. Measured on the DES 4k pair on this project's
2-core VM (benchmarks/bench_zogy.py, each setting in a fresh process of one run), its median went from
10.8 s to 9.8 s and the ZOGY step from 3.3 s to 1.4 s, with the peak resident size 1.87 GB instead of
1.73 GB; in other runs of the day, from 11.5 s to 6.9-8.8 s. A night through the pipeline on 2 workers
(benchmarks/bench_night.py) went from 1.48x to 1.72x the speed of 1 worker.

`retain_freed_memory` raises the mmap threshold to 1 GiB and the trim threshold to 2 GiB with
``mallopt(3)`` (the same as ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` in the
environment, which glibc reads only at start-up): large arrays come from the heap and freed ones stay
there for the next allocation. The process then keeps up to its peak memory until it exits. astrokit
calls it in the processes that run its own computations: the ``astrokit`` command, and every stage unit
(`astrokit.pipeline.run_units`), in the stage's process or on the Dask worker that computes it, where
``distributed``'s default (``MALLOC_TRIM_THRESHOLD_=65536``) would return freed memory at once.
``ASTROKIT_RETAIN_MEMORY=0`` turns it off. On a C library other than glibc it does nothing.

It also stops NumPy from asking for transparent huge pages (``madvise(MADV_HUGEPAGE)``, which NumPy does
for every array of 4 MB or more on Linux, see NumPy's "Global state" page), unless ``NUMPY_MADVISE_HUGEPAGE``
is set in the environment, which NumPy then follows. Each new huge page is a 2 MB block zeroed at the first
touch, and on this project's VM (kernel THP set to ``madvise``, no compaction stalls counted in
``/proc/vmstat``) those faults dominated the arrays that are not reused. Measured at stop 43, each setting
in a fresh process: the link stage's streak search on the 20 S_corr images of a 4k night (the images kept,
as the stage keeps them for the stack) took 4.6-8.5 s with huge pages and 1.8 s without, and ``subtract``
on the DES 4k pair (benchmarks/bench_zogy.py, median of 3) 9.8 s (min 7.2) with and 7.6 s (min 7.3) without.
"""

import ctypes
import functools
import os
import platform

__all__ = ["retain_freed_memory"]

_M_TRIM_THRESHOLD = -1  # <malloc.h>
_M_MMAP_THRESHOLD = -3
#: Blocks up to this size (bytes) come from the heap, not from their own mmap.
MMAP_THRESHOLD = 1 << 30
#: Free memory at the top of the heap kept for reuse (bytes; mallopt takes an int).
TRIM_THRESHOLD = (1 << 31) - 1


@functools.cache
def retain_freed_memory():
    """Make glibc keep freed large blocks for reuse in this process (once per process; later calls return at once).

    Returns
    -------
    bool
        True when the thresholds are set; False when turned off by ``ASTROKIT_RETAIN_MEMORY=0``, on a C
        library other than glibc, or if ``mallopt`` refuses them.

    Notes
    -----
    The process keeps up to its peak memory after the arrays are freed, and NumPy no longer advises huge
    pages for its large arrays (unless ``NUMPY_MADVISE_HUGEPAGE`` is set). See the module's docstring for
    the measurements that motivate both, and ``mallopt(3)`` for the thresholds.
    """
    if os.environ.get("ASTROKIT_RETAIN_MEMORY", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    _numpy_small_pages()
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1


def _numpy_small_pages():
    """Stop NumPy's ``madvise(MADV_HUGEPAGE)`` on large arrays, unless ``NUMPY_MADVISE_HUGEPAGE`` says otherwise."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return
    try:
        from numpy._core import multiarray
    except ImportError:  # NumPy 1
        from numpy.core import multiarray
    setter = getattr(multiarray, "_set_madvise_hugepage", None)  # NumPy's runtime form of the variable
    if setter is not None:
        setter(False)
