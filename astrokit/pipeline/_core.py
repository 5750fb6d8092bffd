"""The one unit-of-work runner that every ``run_<stage>`` goes through (ARCHITECTURE.md, "The runner").

A stage hands `run_units` its units of work (a frame, a pair, a field and night,
a batch of candidates, the whole store for a global step). The runner

1. fingerprints each unit: SHA-256 of what identifies its inputs (file SHA-256s,
   artifact addresses, row ids), the stage's parameters and the public astrokit
   version (`fingerprint`);
2. skips a unit whose fingerprint is the one recorded in ``fingerprints`` after its
   last success and whose outputs still exist (unless ``force``);
3. computes the others with a picklable function that writes no table, on Dask workers or
   in this process (`astrokit.pipeline.map_units`, `astrokit.pipeline.dask_client`); it may
   store large images as content-addressed artifacts (`Store.put_artifact`: the same bytes,
   the same key) and return their keys, as the difference stage does with D and S_corr, so
   that full frames do not travel back through Dask;
4. hands each result to the stage's writer, in this process: the stage is the single
   writer of its tables;
5. records the unit's fingerprint once its outputs are written (a crash before that
   redoes the unit), and counts it in the `StageReport`.

A unit that fails is recorded in the report with its reason and is not
fingerprinted, so the next run tries it again; the others go on.
`record_run` writes the ``runs`` row of a stage or a job (the papermill runner,
``astrokit search --run``).
"""

import json
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pyarrow.compute as pc

from astrokit._allocator import retain_freed_memory
from astrokit.exceptions import AstrokitWarning

__all__ = ["REPORT_MIMETYPE", "StageReport", "Unit", "digest", "fingerprint", "inputs_unchanged", "plan_units",
           "read_tables", "record_inputs", "record_run", "run_units", "short_id"]

#: Mimetype under which a `StageReport` displays as JSON in a notebook (read back by the runner).
REPORT_MIMETYPE = "application/vnd.astrokit.stage-report+json"


class StageReport(dict):
    """What a stage did: counts of units processed, skipped and failed, and the failures' reasons.

    In a notebook the report displays as text and also as JSON (mimetype
    `REPORT_MIMETYPE`), which the papermill runner reads back from the executed
    notebook into the ``runs`` table.

    Parameters
    ----------
    stage : str
        Stage name.
    """

    def __init__(self, stage):
        super().__init__(stage=stage, processed=0, skipped=0, failed=0, rows=0, failures=[])

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/plain": repr(self), REPORT_MIMETYPE: json.loads(json.dumps(dict(self), default=str))}

    def fail(self, unit, reason):
        """Record a failed unit and warn with its one-line reason."""
        self["failed"] += 1
        self["failures"].append({"unit": unit, "reason": str(reason)})
        text = str(reason) if str(reason).startswith(str(unit)) else f"{unit}: {reason}"  # no path twice
        warnings.warn(f"{self['stage']}: {text}", AstrokitWarning, stacklevel=3)

    def __repr__(self):
        extra = "".join(f", {len(self[k])} {k}" for k in ("unpaired", "unsolved") if self.get(k))
        return (f"<{self['stage']}: {self['processed']} processed, {self.get('skipped', 0)} skipped, "
                f"{self['rows']} rows, {self['failed']} failed{extra}>")


def digest(value):
    """Return the SHA-256 (hex) of a JSON-serialisable value, keys sorted: the runner's one content hash.

    Files are hashed by `astrokit.io.sha256_file`; this hashes what identifies a
    unit's inputs once they are values (row ids, file hashes, parameters).

    Parameters
    ----------
    value : object
        JSON-serialisable (other objects are hashed by their ``str``).

    Returns
    -------
    str
        64 hex digits.
    """
    import hashlib

    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def short_id(text, n=16):
    """Return a stable id of ``n`` hex digits for a text (difference ids, tracklet ids, unit keys).

    SHA-1, as the ids have always been made: the ids already in stores stay the same. Content
    hashes are `digest` (values) and `astrokit.io.sha256_file` (files).

    Parameters
    ----------
    text : str
        What the id names.
    n : int
        Hex digits kept.

    Returns
    -------
    str
    """
    import hashlib

    return hashlib.sha1(text.encode()).hexdigest()[:n]


def fingerprint(stage, inputs, parameters):
    """Return the fingerprint of one unit of work: SHA-256 of its stage, inputs, parameters and astrokit version.

    A rerun skips a unit whose fingerprint is unchanged (resumption, `run_units`).

    Parameters
    ----------
    stage : str
        Stage name.
    inputs : list
        What identifies the unit's input data: SHA-256 of files, HDU numbers, ids.
    parameters : dict
        The parameters that change the result (JSON-serialisable).

    Returns
    -------
    str
        64 hex digits.
    """
    import astrokit

    # the public version (a release, or 0.1.devN in a clone): uncommitted edits (+g<commit>.dirty) do not redo work
    version = astrokit.__version__.split("+", 1)[0]
    return digest({"stage": stage, "inputs": list(inputs), "parameters": parameters, "astrokit": version})


@dataclass
class Unit:
    """One unit of work of a stage.

    Parameters
    ----------
    key : str
        The unit's id within the stage (its ``fingerprints`` row; usually its output key).
    inputs : list
        What identifies its input data (fingerprinted with the stage's parameters).
    item : object
        What the compute function receives (picklable for Dask workers).
    outputs : list of (str, str)
        ``(table, key)`` files that must exist for the unit to be skipped.
    artifacts : list of str
        Artifact keys that must exist for the unit to be skipped.
    label : str, optional
        How failures name the unit (default ``key``).
    fingerprint : str, optional
        Set by `plan_units`: the unit's fingerprint.
    """

    key: str
    inputs: list
    item: object = None
    outputs: list = field(default_factory=list)
    artifacts: list = field(default_factory=list)
    label: str = None
    fingerprint: str = None  # set by `plan_units`

    @property
    def name(self):
        """How the report names the unit."""
        return self.label or self.key


def _completed(store, stage, force):
    """Return {unit: fingerprint} of the units of ``stage`` done before (empty with ``force``)."""
    if force:
        return {}
    done = store.read("fingerprints", columns=["unit", "fingerprint"], filter=pc.field("stage") == stage)
    return dict(zip(done.column("unit").to_pylist(), done.column("fingerprint").to_pylist()))


def _mark_done(store, stage, unit, value, parameters):
    """Record a unit's fingerprint, after its results are written (a crash before this redoes the unit)."""
    store.write("fingerprints", [{"stage": stage, "unit": unit, "fingerprint": value,
                                  "parameters": json.dumps(parameters, sort_keys=True, default=str),
                                  "finished_at": datetime.now(timezone.utc)}], key=f"{stage}-{unit}")


#: The ``fingerprints`` unit of a stage's cheap pre-check (`inputs_unchanged`).
_LISTING = "_inputs"


def inputs_unchanged(store, stage, tables, parameters, *, force=False):
    """Tell whether a stage's input tables' files are as they were after its last complete run (a cheap pre-check).

    The file listing of the input tables (key, size, mtime: the files are never rewritten in place)
    is fingerprinted with the parameters, like a unit, and recorded in ``fingerprints`` under the
    unit ``_inputs`` by `record_inputs` once the stage completed without a failure. When it is
    unchanged the stage skips its planning (the reads it fingerprints its units from) as a whole;
    otherwise it plans, and `run_units` skips the unchanged units one by one. The same mechanism as
    ingest's size-and-mtime check of each file.

    Parameters
    ----------
    store : Store
        The store.
    stage : str
        Stage name.
    tables : list of str
        The tables the stage reads (not those it writes).
    parameters : dict
        The stage's parameters.
    force : bool
        Never unchanged.

    Returns
    -------
    unchanged : bool
    token : str
        The fingerprint of the listing, for `record_inputs`.
    done : int
        How many units of the stage are recorded as done.
    """
    listing = [f for table in tables for f in store.list_files(f"tables/{table}") if f[0].endswith(".parquet")]
    token = fingerprint(stage, listing, parameters)
    done = _completed(store, stage, force)
    return (not force and done.get(_LISTING) == token), token, len(done) - (_LISTING in done)


def record_inputs(store, stage, token, parameters):
    """Record the `inputs_unchanged` fingerprint of a stage that completed without a failure.

    Parameters
    ----------
    store : Store
        The store.
    stage : str
        Stage name.
    token : str
        What `inputs_unchanged` returned before the stage ran.
    parameters : dict
        The stage's parameters.
    """
    _mark_done(store, stage, _LISTING, token, parameters)


def _apply(unit, *, compute, **kwargs):
    retain_freed_memory()  # in the process that computes: a Dask worker, or this one (astrokit._allocator)
    return compute(unit.item, **kwargs)


def plan_units(store, stage, units, *, parameters, force=False, report=None):
    """Split units into those to compute and those unchanged since their last success (counted as skipped).

    Parameters
    ----------
    store : Store
        The store (``fingerprints`` and the outputs' keys are read).
    stage : str
        Stage name.
    units : iterable of Unit
        The stage's units.
    parameters : dict
        The stage's parameters that change results.
    force : bool
        Compute every unit.
    report : StageReport, optional
        Its ``skipped`` is incremented.

    Returns
    -------
    todo : list of Unit
    digests : dict of str -> str
        Each unit's fingerprint, by key.
    """
    done = _completed(store, stage, force)
    keys = {}

    def exists(table, key):
        if table not in keys:
            keys[table] = set(store.keys(table))
        return key in keys[table]

    todo, digests = [], {}
    for unit in units:
        digests[unit.key] = unit.fingerprint = fingerprint(stage, unit.inputs, parameters)
        if (done.get(unit.key) == digests[unit.key] and all(exists(t, k) for t, k in unit.outputs)
                and all(store.exists(a) for a in unit.artifacts)):
            if report is not None:
                report["skipped"] += 1  # unchanged since its last success
        else:
            todo.append(unit)
    return todo, digests


def run_units(store, stage, units, compute, write, /, *, parameters, force=False, report=None, scheduler=None,
              workers=None, errors=(), on_error=None, progress=True, **kwargs):
    """Run a stage's units: fingerprint, skip the unchanged, compute (Dask or here), write, record.

    Parameters
    ----------
    store : Store
        The store.
    stage : str
        Stage name (the ``fingerprints.stage`` value).
    units : iterable of Unit
        The planned units.
    compute : callable
        ``compute(unit.item, **kwargs)`` -> result; a module-level function when it runs on Dask
        workers. It reads what it needs and writes nothing.
    write : callable
        ``write(unit, result)`` -> number of rows written, or ``(rows, complete)``; it runs in this process,
        the stage's single writer. A unit written incomplete (``complete`` False: some of its parts failed)
        is not fingerprinted, so the next run computes it again.
    parameters : dict
        The parameters that change results (fingerprinted with each unit's inputs).
    force : bool
        Compute every unit, even those whose inputs and parameters are unchanged.
    report : StageReport, optional
        The report to count into (default a new one).
    scheduler : str or distributed.Client, optional
        Dask scheduler address or client (`astrokit.pipeline.dask_client`).
    workers : int, optional
        Without a scheduler, local Dask worker processes (0 or None: this process).
    errors : tuple of type
        Exceptions that fail one unit; any other propagates.
    on_error : callable, optional
        ``on_error(unit, exc)`` instead of ``report.fail(unit.name, exc)``.
    progress : bool
        Show a progress bar.
    **kwargs
        Passed to ``compute``.

    Returns
    -------
    StageReport
        ``processed`` units computed and written, ``skipped`` unchanged units, ``rows`` as the
        writer counted them, ``failed`` units with their reasons.

    Raises
    ------
    AstrokitError
        If ``workers`` is invalid or the Dask scheduler cannot be reached.
    """
    from astrokit.pipeline._dask import dask_client, map_units

    report = StageReport(stage) if report is None else report
    todo, digests = plan_units(store, stage, units, parameters=parameters, force=force, report=report)
    with dask_client(*((scheduler, workers) if todo else (None, None))) as client:
        for unit, result, exc in map_units(_apply, todo, client=client, errors=errors, desc=stage,
                                           progress=progress, compute=compute, **kwargs):
            if exc is not None:
                (on_error or (lambda u, e: report.fail(u.name, e)))(unit, exc)
                continue
            rows = write(unit, result)
            rows, complete = rows if isinstance(rows, tuple) else (rows, True)
            report["rows"] += int(rows or 0)
            if complete:  # an incomplete unit (parts failed) is not fingerprinted: the next run redoes it
                _mark_done(store, stage, unit.key, digests[unit.key], parameters)
            report["processed"] += 1
    return report


def read_tables(store, *queries):
    """Run several queries on one DuckDB connection over the store: one listing of the tables, one connection.

    A stage that plans from several queries pays for one connection (`astrokit.store.Store.connect`)
    instead of one per query (`astrokit.store.Store.sql`).

    Parameters
    ----------
    store : Store
        The store.
    *queries : str
        SQL queries over the tables' views.

    Returns
    -------
    list of pyarrow.Table
        One per query.

    Raises
    ------
    AstrokitError
        If DuckDB rejects a query (the message is DuckDB's).
    """
    import re

    import duckdb

    from astrokit.exceptions import AstrokitError
    from astrokit.store import TABLES

    used = [t for t in TABLES if any(re.search(rf"\b{t}\b", q, re.IGNORECASE) for q in queries)]
    con = store.connect(tables=used)
    try:
        return [con.sql(q).to_arrow_table() for q in queries]
    except duckdb.Error as exc:
        msg = f"query failed: {str(exc).splitlines()[0]}"
        raise AstrokitError(msg) from exc
    finally:
        con.close()


def record_run(store, run_id, stage, *, parameters, status, started, error=None, notebook_path=None, report=None):
    """Write the ``runs`` row of one stage execution or job (key ``<run_id>-<stage>``).

    Parameters
    ----------
    store : Store
        The store.
    run_id : str
        The run (`astrokit.pipeline.new_run_id`).
    stage : str
        Stage name (with a sweep suffix), or ``search`` for a job at a position.
    parameters : dict or str
        The parameters (JSON text, or a dict serialised here).
    status : {"running", "ok", "failed", "interrupted"}
        The status.
    started : datetime.datetime
        Start time (UTC).
    error : str, optional
        One-line error of a failed run.
    notebook_path : str, optional
        The executed notebook.
    report : dict, optional
        The `StageReport` (its counts and failures are recorded).

    Returns
    -------
    dict
        The row written.
    """
    import astrokit

    text = parameters if isinstance(parameters, str) else json.dumps(parameters, sort_keys=True, default=str)
    row = {"run_id": run_id, "stage": stage, "parameters": text, "status": status, "started_at": started,
           "astrokit_version": astrokit.__version__}
    if status != "running":
        row.update(error=error, finished_at=datetime.now(timezone.utc), notebook_path=notebook_path)
        if report is not None:
            row.update(n_processed=report.get("processed"), n_skipped=report.get("skipped"),
                       n_failed=report.get("failed"), failures=json.dumps(report.get("failures", []), default=str))
        else:
            row.update(n_processed=None, n_skipped=None, n_failed=None, failures=None)
    store.write("runs", [row], key=f"{run_id}-{stage}".replace("=", "_"))
    return row
