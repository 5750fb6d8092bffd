"""Run the pipeline notebooks with papermill, keep every executed notebook, record each stage in ``runs``.

Papermill executes one notebook; this module adds what a nightly cron run
needs around it: a lock so that two runs never overlap on one store,
retries with exponential back-off, parameter sweeps, YAML run configs, and
one Dask cluster per run whose address the stage notebooks receive as their
``scheduler`` parameter. A crontab line for a nightly run at 07:00 UTC::

    0 7 * * *  cd /data && /opt/astrokit/.venv/bin/astrokit --quiet run --config nightly.yaml >> astrokit-cron.log 2>&1
"""

import contextlib
import itertools
import math
import secrets
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from astrokit._resources import resource_dir
from astrokit.exceptions import AstrokitError
from astrokit.pipeline._core import record_run
from astrokit.pipeline._dask import _check_workers, dask_client
from astrokit.pipeline._params import ParameterError, validate_parameters
from astrokit.store import Store

__all__ = ["STAGES", "RunConfig", "load_run_config", "new_run_id", "pipelines_dir", "run_pipeline", "store_lock"]

#: The stages in order, each a notebook ``pipelines/<stage>.ipynb``.
STAGES = ("ingest", "calibrate", "astrometry", "photometry", "difference", "alerts", "inference", "objects", "link")


def pipelines_dir():
    """Return the folder of the pipeline notebooks.

    ``$ASTROKIT_PIPELINES`` when set, else the repository's ``pipelines/`` in a
    clone, else the copy shipped inside the installed package
    (`astrokit._resources.resource_dir`).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    AstrokitError
        If the folder does not exist.
    """
    path = resource_dir("pipelines", env="ASTROKIT_PIPELINES")
    if not path.is_dir():
        msg = f"pipeline notebooks not found in {path}; set ASTROKIT_PIPELINES to a folder of pipeline notebooks"
        raise AstrokitError(msg)
    return path


def new_run_id():
    """Return a new run id: UTC time to the second and a random suffix (sortable, unique).

    Returns
    -------
    str
    """
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


@contextlib.contextmanager
def store_lock(store):
    """Hold the store's run lock (``<store>/.astrokit-run.lock``) for the duration of the block.

    On a folder the lock is an advisory ``flock`` on a file: the operating system
    releases it when the holder exits, even after a crash, so a stale lock
    never blocks the next cron run. On S3 it is a lock object created with a
    conditional PUT, broken when stale (`astrokit.store.Store.lock`).

    Parameters
    ----------
    store : Store
        The store.

    Yields
    ------
    pathlib.Path
        The lock file.

    Raises
    ------
    AstrokitError
        If another process holds the lock (its pid is in the message).
    """
    with store.lock() as path:  # flock on a folder, a conditional-PUT lock object on S3 (Store.lock)
        yield path


class RunConfig(dict):
    """A run configuration: a dict with the keys of ``KEYS`` (``store``, ``stages``, ... ``workers``, ``force``).

    See `load_run_config` for the meaning of each key.
    """

    KEYS = ("store", "stages", "params", "sweep", "retries", "backoff", "scheduler", "workers", "force")


def load_run_config(path):
    """Read a YAML run configuration.

    Example::

        store: /data/astrokit-store
        stages: [ingest, photometry, difference, alerts, inference]
        params:
          inputs: [/data/raw/tonight]
        sweep:                       # the listed stages run once per value
          threshold: [4.0, 5.0]
        retries: 2                   # re-attempts of a failing stage
        backoff: 30                  # seconds before the first retry, doubled each time
        workers: 2                   # local Dask worker processes for the per-frame/per-pair work
        # scheduler: tcp://10.0.0.5:8786   # or a running Dask scheduler (instead of workers)
        force: false                 # redo units whose inputs and parameters are unchanged

    Parameters
    ----------
    path : path-like
        The YAML file.

    Returns
    -------
    RunConfig

    Raises
    ------
    AstrokitError
        If the file cannot be read or has unknown keys or wrong types.
    """
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        msg = f"{path}: cannot read the run config ({str(exc).splitlines()[0]})"
        raise AstrokitError(msg) from exc
    if not isinstance(data, dict):
        msg = f"{path}: a run config is a mapping of {', '.join(RunConfig.KEYS)}"
        raise AstrokitError(msg)
    unknown = set(data) - set(RunConfig.KEYS)
    if unknown:
        msg = f"{path}: unknown keys {sorted(unknown)}; the keys are {', '.join(RunConfig.KEYS)}"
        raise AstrokitError(msg)
    for key, kind in (("params", dict), ("sweep", dict), ("stages", list), ("scheduler", str), ("force", bool)):
        if key in data and data[key] is not None and not isinstance(data[key], kind):
            msg = f"{path}: {key} must be a {kind.__name__}"
            raise AstrokitError(msg)
    workers = data.get("workers")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        msg = f"{path}: workers must be an integer >= 0 (local Dask worker processes), got {workers!r}"
        raise AstrokitError(msg)
    for key, values in (data.get("sweep") or {}).items():
        if not isinstance(values, list) or not values:
            msg = f"{path}: sweep.{key} must be a non-empty list of values"
            raise AstrokitError(msg)
    return RunConfig(data)


def _record_interrupted(store):
    """Mark the ``runs`` rows left ``running`` by a killed run as ``interrupted`` (called under the run lock).

    Only the holder of the lock runs stages, so a ``running`` row found by the
    next holder belongs to a process that died (kill -9, a crash, a reboot). The
    table replacements such a process committed are finished first (`Store.recover`).
    """
    store.recover()
    rows = store.sql("select * from runs where status = 'running'").to_pylist()
    for row in rows:
        row.update(status="interrupted", error="interrupted: the process ended before the stage finished "
                   "(killed, crashed or the machine stopped); its units are redone or skipped by the next run")
        store.write("runs", [row], key=f"{row['run_id']}-{row['stage']}".replace("=", "_"))
    return len(rows)


def _check_retries(retries, backoff):
    """Return (retries, backoff) as (int >= 0, finite float >= 0), or raise `ParameterError` before any work."""
    try:
        ok = float(retries) == int(retries) and int(retries) >= 0 and not isinstance(retries, bool)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        msg = f"retries must be a whole number >= 0 (re-attempts of a failing stage), got {retries!r}"
        raise ParameterError(msg)
    try:
        ok = math.isfinite(float(backoff)) and float(backoff) >= 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        msg = f"backoff must be a finite number of seconds >= 0, got {backoff!r}"
        raise ParameterError(msg)
    return int(retries), float(backoff)


def _sweep_points(sweep, declared):
    """Return the sweep combinations that apply to a notebook, as (values, file suffix); one empty point if none."""
    keys = [k for k in sweep if k in declared]
    if not keys:
        return [({}, "")]
    points = []
    for values in itertools.product(*(sweep[k] for k in keys)):
        point = dict(zip(keys, values))
        suffix = "-" + "-".join(f"{k}={v}" for k, v in point.items())
        points.append((point, suffix.replace("/", "_").replace(" ", "")))
    return points


def _execute(notebook, output, parameters, kernel_name, cwd):
    import papermill as pm

    try:
        pm.execute_notebook(str(notebook), str(output), parameters=parameters, kernel_name=kernel_name,
                            progress_bar=False, cwd=str(cwd))
    except pm.PapermillExecutionError as exc:
        return f"{exc.ename}: {exc.evalue}".splitlines()[0]
    except Exception as exc:  # noqa: BLE001 - a kernel crash must still be recorded
        return traceback.format_exception_only(exc)[-1].strip()
    return None


def _read_report(path):
    """Return the last `StageReport` a stage notebook displayed (its JSON output), or None."""
    import nbformat

    from astrokit.pipeline._core import REPORT_MIMETYPE

    try:
        nb = nbformat.read(str(path), as_version=4)
    except (OSError, ValueError):
        return None
    reports = [out["data"][REPORT_MIMETYPE] for cell in nb.cells if cell.cell_type == "code"
               for out in cell.get("outputs", []) if REPORT_MIMETYPE in out.get("data", {})]
    return reports[-1] if reports else None


def run_pipeline(store=None, *, stages=None, params=None, sweep=None, retries=0, backoff=10.0, run_id=None,
                 progress=True, kernel_name="python3", scheduler=None, workers=None, force=False):
    """Execute the pipeline notebooks in order with papermill, under the store's run lock.

    Each stage's executed notebook is kept as ``<store>/runs/<run_id>/<stage>.ipynb``
    and recorded in the ``runs`` table with its parameters, status, times and
    what its `StageReport` says (units processed, skipped as unchanged, failed
    with their reasons).
    A failing stage is retried ``retries`` times with exponential back-off;
    the run stops at a stage that still fails, whose notebook is kept with
    the error at the top (papermill's behaviour).

    Parameters
    ----------
    store : Store or path, optional
        The store (default `astrokit.store.default_store_path`).
    stages : list of str, optional
        Stages to run, a subset of `STAGES` (kept in pipeline order).
    params : dict, optional
        Parameters for the notebooks; each notebook receives those its
        ``parameters`` cell declares, plus ``store``.
    sweep : dict of str -> list, optional
        Parameters to sweep: a stage that declares one of them runs once per
        value (once per combination for several), each run kept as
        ``<stage>-<name>=<value>.ipynb``.
    retries : int
        Re-attempts of a failing stage.
    backoff : float
        Seconds before the first retry; doubled for each further one.
    run_id : str, optional
        Run id (default `new_run_id`).
    progress : bool
        Show a progress bar over the stages.
    kernel_name : str
        Jupyter kernel to execute with.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:port``), passed to the
        notebooks that declare a ``scheduler`` parameter.
    workers : int, optional
        Without ``scheduler``: start one `~distributed.LocalCluster` of this many
        worker processes for the whole run (`astrokit.pipeline.dask_client`) and
        pass its address to the notebooks. 0, 1 or None: the stages run in their kernel.
    force : bool
        Passed to the notebooks that declare ``force``: redo the units whose
        inputs and parameters are unchanged instead of skipping them.

    Returns
    -------
    list of dict
        The ``runs`` rows written, one per notebook execution (the last attempt).

    Raises
    ------
    AstrokitError
        If a stage name is unknown (the valid ones are listed), another run
        holds the store's lock, or ``workers`` is not a non-negative integer.
    ParameterError
        Before any work, if a parameter is unknown or outside its declared range
        (`astrokit.pipeline.STAGE_PARAMETERS`), a sweep is empty, or ``retries`` /
        ``backoff`` are negative.
    """
    import papermill as pm
    from tqdm.auto import tqdm

    store = store if isinstance(store, Store) else Store(store)
    stages = list(STAGES) if stages is None else list(stages)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        msg = f"unknown stages {unknown}; choose from {', '.join(STAGES)}"
        raise AstrokitError(msg)
    stages = [s for s in STAGES if s in stages]
    workers = _check_workers(workers)
    retries, backoff = _check_retries(retries, backoff)
    nb_dir = pipelines_dir()
    declared = {s: set(pm.inspect_notebook(str(nb_dir / f"{s}.ipynb"))) for s in STAGES
                if (nb_dir / f"{s}.ipynb").exists()}
    params = validate_parameters(stages, params, sweep, declared=declared)
    run_id = run_id or new_run_id()
    records = []
    with store_lock(store), contextlib.ExitStack() as cluster:
        _record_interrupted(store)
        out_dir = store.local_dir(f"runs/{run_id}")  # a staging folder for an S3 store, published below
        bar = tqdm(stages, desc="pipeline", unit="stage", disable=not progress)
        for stage in bar:
            bar.set_postfix_str(stage)
            notebook = nb_dir / f"{stage}.ipynb"
            declared = set(pm.inspect_notebook(str(notebook)))
            if workers > 1 and not scheduler and "scheduler" in declared:  # one cluster for the whole run
                scheduler = cluster.enter_context(dask_client(None, workers)).scheduler.address
            extra = {"force": bool(force), **({"scheduler": scheduler} if scheduler else
                                              {"workers": int(workers)} if workers else {})}
            base = {k: v for k, v in {**(params or {}), **extra}.items() if k in declared}
            failed = False
            for point, suffix in _sweep_points(sweep or {}, declared):
                stage_params = {**base, **point, "store": str(store.root)}
                output = out_dir / f"{stage}{suffix}.ipynb"
                started = datetime.now(timezone.utc)
                # a "running" row first: a run killed here (kill -9, power cut) leaves it, and the next run,
                # which holds the lock, records it as interrupted
                record_run(store, run_id, stage + suffix, parameters=stage_params, status="running", started=started)
                for attempt in range(int(retries) + 1):
                    if attempt:
                        time.sleep(float(backoff) * 2 ** (attempt - 1))
                    error = _execute(notebook, output, stage_params, kernel_name, nb_dir)
                    if error is None:
                        break
                row = record_run(store, run_id, stage + suffix, parameters=stage_params, started=started,
                                 status="ok" if error is None else "failed",
                                 error=None if error is None else f"{error} (after {attempt + 1} attempts)",
                                 notebook_path=store.publish(output),
                                 report=_read_report(output) if error is None else None)
                records.append(row)
                failed = failed or error is not None
            if failed:
                break
        store.refresh_views()
    return records
