"""One large frame on several processes: sep extraction by strips with overlap, per-source measurements by chunks.

sep holds the GIL in all its calls (extraction, apertures, Kron radii,
windowed centroids), so threads do not use a second core; worker processes
do. The image and its maps are put once in shared memory
(`multiprocessing.shared_memory`), and a pool of worker processes (started
once per process, ``forkserver``) reads them without copies.

Extraction by strips: the frame is cut into horizontal strips that overlap
by ``overlap`` rows. Each strip keeps the objects whose centroid lies in the
rows it owns (a partition of the frame). An object whose pixels all lie at
least 2 rows inside its strip is found exactly as sep finds it on the whole
frame: the same pixels above threshold, the same matched filter (3x3 or 5x5
kernels read at most 2 rows away), the same deblending of its connected
component. Only components reaching into a strip's cut rows can differ; they
are counted (`extract_tiled` returns the count) and keep the owning strip's
measurement.
"""

import atexit
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import shared_memory

import numpy as np

__all__ = ["SharedArrays", "extract_tiled", "map_sources", "process_pool"]

#: Rows by which neighbouring strips overlap (pixels); components taller than this may be cut.
OVERLAP = 128

_POOL = {}


def process_pool(workers):
    """Return a pool of ``workers`` worker processes, started on first use and kept for the process' lifetime.

    Parameters
    ----------
    workers : int
        Number of processes, >= 1.

    Returns
    -------
    concurrent.futures.ProcessPoolExecutor
        A pool started with ``fork`` when every other thread of this process
        is a daemon (tqdm's monitor), else ``forkserver`` (a process with
        working threads must not fork; the calling script then needs the
        ``if __name__ == "__main__":`` guard).
    """
    pool = _POOL.get(int(workers))
    if pool is None:
        for old in _POOL.values():  # one pool at a time: a new size replaces it
            old.shutdown(wait=False, cancel_futures=True)
        _POOL.clear()
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()  # the workers then share this process' tracker of shared blocks
        methods = multiprocessing.get_all_start_methods()
        # fork: nothing re-imported (scripts need no __main__ guard); only while the other threads are daemons
        # (tqdm's monitor): a process with working threads forks with forkserver
        others = [t for t in threading.enumerate() if t is not threading.current_thread()]
        method = "fork" if "fork" in methods and all(t.daemon for t in others) else \
            "forkserver" if "forkserver" in methods else "spawn"
        pool = ProcessPoolExecutor(int(workers), mp_context=multiprocessing.get_context(method),
                                   initializer=_warm)
        _POOL[int(workers)] = pool
    return pool


def _warm():
    import os

    import sep  # noqa: F401 - imported once per worker, not per task

    os.environ["ASTROKIT_FFT_WORKERS"] = "1"  # the pool's processes already use every core: no threads in them


@atexit.register
def _close_pools():
    for pool in _POOL.values():
        pool.shutdown(wait=False, cancel_futures=True)
    _POOL.clear()


class SharedArrays:
    """Named NumPy arrays copied into shared memory for the workers of `process_pool`; a context manager.

    Parameters
    ----------
    **arrays : ndarray or None
        The arrays (None values are skipped).

    Attributes
    ----------
    spec : dict
        ``name -> (shared-memory name, shape, dtype string)``, picklable; a
        worker gets the arrays back with ``_attach(spec)``.
    """

    def __init__(self, **arrays):
        self._blocks = []
        self.spec = {}
        try:
            self.put(**arrays)
        except BaseException:
            self.close()
            raise

    def new(self, name, shape, dtype):
        """Allocate a shared array ``name`` (zeros) and return it, to be filled in place.

        Parameters
        ----------
        name : str
            Its name in `spec`.
        shape : tuple of int
        dtype : numpy dtype

        Returns
        -------
        ndarray
            A view of the shared block, valid until `close`.
        """
        dtype = np.dtype(dtype)
        size = int(np.prod(shape)) * dtype.itemsize
        block = shared_memory.SharedMemory(create=True, size=max(size, 1))
        self._blocks.append(block)
        self.spec[name] = (block.name, tuple(shape), dtype.str)
        return np.ndarray(shape, dtype, buffer=block.buf)

    def put(self, **arrays):
        """Copy arrays into new shared blocks (None values are skipped).

        Parameters
        ----------
        **arrays : ndarray or None
        """
        for name, arr in arrays.items():
            if arr is not None:
                arr = np.ascontiguousarray(arr)
                self.new(name, arr.shape, arr.dtype)[...] = arr

    def close(self):
        """Release and remove the shared blocks."""
        for block in self._blocks:
            block.close()
            block.unlink()
        self._blocks = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_ATTACHED = {}


def _attach(spec):
    """Arrays of a `SharedArrays` spec, in a worker (blocks kept open while the spec is the current one)."""
    names = {v[0] for v in spec.values()}
    for stale in [k for k in _ATTACHED if k not in names]:
        _ATTACHED.pop(stale).close()
    out = {}
    for name, (shm, shape, dtype) in spec.items():
        if shm not in _ATTACHED:
            # the workers share their parent's resource tracker: the block stays registered once, its creator's
            _ATTACHED[shm] = shared_memory.SharedMemory(name=shm)
        out[name] = np.ndarray(shape, np.dtype(dtype), buffer=_ATTACHED[shm].buf)
    return out


_Y_FIELDS = ("y", "ymin", "ymax", "ycpeak", "ypeak")


def _extract_strip(spec, rows, own, threshold, err, kwargs):
    """Return the sep objects a strip owns, in frame coordinates, and how many reach its cut rows."""
    import sep

    arrays = _attach(spec)
    r0, r1 = rows
    sub = arrays["sub"][r0:r1]
    if err is None:
        err = arrays["rms"][r0:r1]
    mask = arrays["mask"][r0:r1] if "mask" in arrays else None
    ny = arrays["sub"].shape[0]
    sep.set_extract_pixstack(max(3_000_000, sub.size // 2))
    sep.set_sub_object_limit(4096)
    objects = sep.extract(sub, threshold, err=err, mask=mask, **kwargs)
    for field in _Y_FIELDS:
        objects[field] += r0
    keep = (objects["y"] >= own[0]) & (objects["y"] < own[1])
    objects = objects[keep]
    cut = np.zeros(len(objects), bool)
    if r0 > 0:
        cut |= objects["ymin"] < r0 + 2
    if r1 < ny:
        cut |= objects["ymax"] > r1 - 3
    return objects, int(cut.sum())


def _strips(ny, n, overlap):
    edges = np.linspace(0, ny, n + 1).round().astype(int)
    return [((max(0, a - overlap), min(ny, b + overlap)), (a, b)) for a, b in zip(edges[:-1], edges[1:])]


def extract_tiled(sub, threshold, *, err, mask=None, workers=2, overlap=OVERLAP, shared=None, **kwargs):
    """`sep.extract` of a large frame by overlapping strips on ``workers`` processes.

    Parameters
    ----------
    sub : 2D ndarray of float32, shape (ny, nx)
        Background-subtracted image.
    threshold : float
        Detection threshold in units of ``err``.
    err : float or 2D ndarray, shape (ny, nx)
        Global noise, or the noise map.
    mask : 2D bool ndarray, shape (ny, nx), optional
        True for pixels to ignore.
    workers : int
        Worker processes; the frame is cut into ``2 * workers`` strips (for balance).
    overlap : int
        Rows shared by neighbouring strips.
    shared : SharedArrays, optional
        ``sub`` (and the noise map as ``rms``, the mask as ``mask``) already
        in shared memory, as `astrokit.photometry.measure_sources` puts them
        once for detection and measurement; nothing is copied then.
    **kwargs
        Passed to ``sep.extract`` (minarea, deblend_cont, deblend_nthresh, filter_kernel).

    Returns
    -------
    objects : numpy structured array
        sep's object records in frame coordinates, strip by strip (top to bottom).
    n_cut : int
        Objects whose pixels reach a strip's cut rows (possibly measured
        differently than on the whole frame).
    """
    ny = sub.shape[0]
    n = max(1, min(2 * int(workers), ny // max(4 * overlap, 1)))
    own_blocks = shared is None
    if own_blocks:
        shared = SharedArrays(sub=np.asarray(sub, np.float32), mask=mask,
                              rms=np.asarray(err, np.float32) if np.ndim(err) == 2 else None)
    err = None if np.ndim(err) == 2 else err
    try:
        pool = process_pool(workers)
        futures = [pool.submit(_extract_strip, shared.spec, rows, own, threshold, err, kwargs)
                   for rows, own in _strips(ny, n, overlap)]
        parts = [f.result() for f in futures]
    finally:
        if own_blocks:
            shared.close()
    objects = np.concatenate([p[0] for p in parts])
    return objects, sum(p[1] for p in parts)


class Shared(str):
    """Marks a keyword argument of `map_sources` as the shared array of that name."""


def _call_chunk(func, spec, array_args, chunk, kwargs):
    arrays = _attach(spec)
    kwargs = {k: arrays[v] if isinstance(v, Shared) else v for k, v in kwargs.items()}
    return func(*[arrays[a] for a in array_args], *chunk, **kwargs)


def map_sources(func, shared, array_args, per_source, kwargs, *, workers=2, chunks=None):
    """Run ``func(*arrays, *per_source_chunk, **kwargs)`` on chunks of the sources in worker processes.

    Parameters
    ----------
    func : callable
        A module-level function measuring each source independently.
    shared : SharedArrays
        The images it reads.
    array_args : list of str
        Names of the shared arrays passed first, positionally.
    per_source : list of 1D ndarray, each shape (n,)
        Per-source arguments (positions, shapes, fluxes), cut into ``workers`` chunks.
    kwargs : dict
        Keyword arguments; a `Shared` value is replaced by that shared array.
    workers : int
        Worker processes.
    chunks : int, optional
        Number of chunks (default ``workers``); more chunks than workers
        balance sources of unequal cost (large galaxies next to faint stars).

    Returns
    -------
    list
        ``func``'s result for each chunk, in order (the caller joins them).
    """
    n = len(per_source[0])
    bounds = np.linspace(0, n, max(1, min(int(chunks or workers), n)) + 1).round().astype(int)
    pool = process_pool(workers)
    futures = [pool.submit(_call_chunk, func, shared.spec, array_args, [np.asarray(p)[a:b] for p in per_source],
                           kwargs) for a, b in zip(bounds[:-1], bounds[1:])]
    return [f.result() for f in futures]
