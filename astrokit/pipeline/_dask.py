"""Run the per-unit work of a stage (a frame, a pair) through Dask, or in this process.

astrokit does not schedule anything itself: `dask_client` connects to a
``dask.distributed`` scheduler or starts a `~distributed.LocalCluster`, and
`map_units` hands the units to ``client.map`` and collects them with
``as_completed``. A worker computes and *returns* its result (Arrow tables,
bytes); the stage, in the calling process, is the only writer of the store.
When a worker dies, the scheduler re-runs its tasks on another worker
(``distributed.scheduler.allowed-failures``, default 3 attempts); a unit that
still cannot run comes back as `~distributed.KilledWorker` and is recorded as
a failure like any other.
"""

import contextlib

from astrokit.exceptions import AstrokitError

__all__ = ["WORKER_ENV", "dask_client", "map_units"]

#: Environment of local worker processes: one BLAS/OpenMP thread each, so N workers use N cores.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _check_workers(workers):
    if workers is None or workers == 0:
        return 0
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        msg = f"workers={workers!r}: the number of local Dask worker processes must be an integer >= 0 (0: no Dask)"
        raise AstrokitError(msg)
    return workers


@contextlib.contextmanager
def dask_client(scheduler=None, workers=None):
    """Yield a ``dask.distributed`` client for a stage's units, or None to run them in this process.

    Parameters
    ----------
    scheduler : str or distributed.Client, optional
        Address of a running scheduler (``tcp://host:port``) or an existing
        client (used as is and left open). Takes precedence over ``workers``.
    workers : int, optional
        Without a scheduler, start a `~distributed.LocalCluster` of this many
        worker processes, one thread each and ``OMP/OPENBLAS/MKL_NUM_THREADS=1``
        (`WORKER_ENV`), so that N workers really use N cores; it is closed on
        exit. 0, 1 or None: no Dask, the units run in this process (one worker
        process would add its start-up and the transfer of every result, and
        nothing in parallel).

    Yields
    ------
    distributed.Client or None

    Raises
    ------
    AstrokitError
        If ``workers`` is not a non-negative integer, or the scheduler cannot be reached.

    References
    ----------
    .. [1] Rocklin 2015, "Dask: Parallel Computation with Blocked algorithms and Task Scheduling",
       Proc. 14th Python in Science Conf., 130.
    """
    workers = _check_workers(workers)
    if scheduler is not None and not isinstance(scheduler, str):
        yield scheduler  # a client the caller owns
        return
    if not scheduler and workers <= 1:
        yield None
        return
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler)  # waits distributed.comm.timeouts.connect (dask config) at most
        except (OSError, TimeoutError, ValueError) as exc:
            msg = f"cannot connect to the Dask scheduler at {scheduler!r}: {str(exc).splitlines()[0]}"
            raise AstrokitError(msg) from exc
        with client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      env=dict(WORKER_ENV)) as cluster, Client(cluster) as client:
        yield client


def map_units(func, units, *, client=None, errors=(), desc="units", progress=True, **kwargs):
    """Apply ``func(unit, **kwargs)`` to every unit, on Dask workers or here; yield each outcome as it completes.

    Parameters
    ----------
    func : callable
        A module-level function (picklable) that computes one unit and returns its result.
    units : list
        The units (frame rows, pairs of rows, ...), picklable.
    client : distributed.Client, optional
        Run on this client's workers (``client.map`` + ``as_completed``); None runs in this process.
    errors : tuple of type
        Exceptions that mark a unit as failed; any other exception propagates. On Dask,
        `~distributed.KilledWorker` (a unit whose workers kept dying) is added.
    desc : str
        Label of the progress bar.
    progress : bool
        Show a tqdm progress bar over the completed units.
    **kwargs
        Passed to every call of ``func``.

    Yields
    ------
    unit : object
        The unit, as given.
    result : object or None
        What ``func`` returned; None when it failed.
    error : Exception or None
        The exception of a failed unit.
    """
    from tqdm.auto import tqdm

    units = list(units)
    bar = tqdm(total=len(units), desc=desc, disable=not progress)
    try:
        if client is None:
            for unit in units:
                try:
                    result = func(unit, **kwargs)
                except errors as exc:
                    yield unit, None, exc
                else:
                    yield unit, result, None
                bar.update()
            return
        from distributed import KilledWorker, as_completed

        errors = (*errors, KilledWorker)
        futures = client.map(func, units, pure=False, **kwargs)
        unit_of = {f.key: u for f, u in zip(futures, units)}
        try:
            for future in as_completed(futures):
                unit = unit_of[future.key]
                if future.status == "error":
                    exc = future.exception()
                    if not isinstance(exc, errors):
                        raise exc
                    yield unit, None, exc
                else:
                    yield unit, future.result(), None
                future.release()
                bar.update()
        finally:
            client.cancel([f for f in futures if not f.done()])
    finally:
        bar.close()

