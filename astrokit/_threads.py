"""How many threads one computation may use, and splitting an image's rows over them.

A Dask worker of the pipeline runs with ``OMP_NUM_THREADS=1`` (`astrokit.pipeline.WORKER_ENV`), so that N
single-threaded workers share N cores; a computation in the user's own process uses every core.
``ASTROKIT_FFT_WORKERS`` overrides both (its name is kept from when only ZOGY's FFTs were threaded).
"""

import os
from concurrent.futures import ThreadPoolExecutor

__all__ = ["map_row_blocks", "thread_count"]


def thread_count():
    """Return the threads a computation may use: ``ASTROKIT_FFT_WORKERS``, else ``OMP_NUM_THREADS``, else every core.

    Returns
    -------
    int
        At least 1.
    """
    for key in ("ASTROKIT_FFT_WORKERS", "OMP_NUM_THREADS"):
        try:
            value = int(os.environ.get(key) or 0)
        except ValueError:
            continue
        if value > 0:
            return value
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def map_row_blocks(func, n_rows, *, threads=None, min_rows=64):
    """Call ``func(y0, y1)`` on contiguous blocks of ``n_rows`` rows, one block per thread.

    For NumPy/SciPy routines that release the GIL (``scipy.ndimage``'s
    interpolation, for one): each block writes its own rows of a shared
    output, so when ``func`` computes every row the same way whatever its
    block, the result is the same, bit for bit, as one call on all rows.

    Parameters
    ----------
    func : callable
        ``func(y0, y1)``, computing rows ``y0`` to ``y1 - 1``; its return value is ignored.
    n_rows : int
        Rows of the output.
    threads : int, optional
        Threads; default `thread_count`.
    min_rows : int
        Fewest rows in a block (small images run in one call).
    """
    threads = thread_count() if threads is None else max(1, int(threads))
    n_blocks = max(1, min(threads, n_rows // max(1, int(min_rows))))
    edges = [round(i * n_rows / n_blocks) for i in range(n_blocks + 1)]
    if n_blocks == 1:
        func(0, n_rows)
        return
    with ThreadPoolExecutor(n_blocks) as pool:
        for future in [pool.submit(func, y0, y1) for y0, y1 in zip(edges[:-1], edges[1:])]:
            future.result()  # re-raises a block's exception here
