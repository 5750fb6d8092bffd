"""Run the pipeline notebooks with papermill, keep every executed notebook, record each stage in ``runs``."""

import json
import os
import secrets
import traceback
from datetime import datetime, timezone
from pathlib import Path

import astrokit
from astrokit.exceptions import AstrokitError
from astrokit.store import Store

__all__ = ["STAGES", "pipelines_dir", "run_pipeline", "new_run_id"]

#: The stages in order, each a notebook ``pipelines/<stage>.ipynb``.
STAGES = ("ingest", "photometry", "difference", "alerts", "inference")


def pipelines_dir():
    """Return the folder of the pipeline notebooks (``$ASTROKIT_PIPELINES`` or the repository's ``pipelines/``)."""
    path = Path(os.environ.get("ASTROKIT_PIPELINES") or Path(astrokit.__file__).resolve().parents[1] / "pipelines")
    if not path.is_dir():
        msg = f"pipeline notebooks not found in {path}; set ASTROKIT_PIPELINES to the pipelines/ folder"
        raise AstrokitError(msg)
    return path


def new_run_id():
    """Return a new run id: UTC time to the second and a random suffix (sortable, unique)."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def run_pipeline(store=None, *, stages=None, params=None, run_id=None, progress=True, kernel_name="python3"):
    """Execute the pipeline notebooks in order with papermill.

    Each stage's executed notebook is kept as ``<store>/runs/<run_id>/<stage>.ipynb``
    and recorded in the ``runs`` table with its parameters, status and times.
    The run stops at the first failed stage; the failed notebook is kept with
    the error (papermill puts it at the top).

    Parameters
    ----------
    store : Store or path, optional
        The store (default `astrokit.store.default_store_path`).
    stages : list of str, optional
        Stages to run, a subset of `STAGES` (kept in pipeline order).
    params : dict, optional
        Parameters for the notebooks; each notebook receives those its
        ``parameters`` cell declares, plus ``store``.
    run_id : str, optional
        Run id (default `new_run_id`).
    progress : bool
        Show a progress bar over the stages.
    kernel_name : str
        Jupyter kernel to execute with.

    Returns
    -------
    list of dict
        The ``runs`` rows written, one per stage attempted.

    Raises
    ------
    AstrokitError
        If a stage name is unknown (the valid ones are listed).
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
    run_id = run_id or new_run_id()
    out_dir = store.runs_dir / run_id
    out_dir.mkdir(parents=True, exist_ok=True)
    nb_dir = pipelines_dir()
    records = []
    bar = tqdm(stages, desc="pipeline", unit="stage", disable=not progress)
    for stage in bar:
        bar.set_postfix_str(stage)
        notebook = nb_dir / f"{stage}.ipynb"
        declared = {p for p in pm.inspect_notebook(str(notebook))}
        stage_params = {k: v for k, v in (params or {}).items() if k in declared}
        stage_params["store"] = str(store.root)
        output = out_dir / f"{stage}.ipynb"
        started = datetime.now(timezone.utc)
        status, error = "ok", None
        try:
            pm.execute_notebook(str(notebook), str(output), parameters=stage_params, kernel_name=kernel_name,
                                progress_bar=False, cwd=str(nb_dir))
        except pm.PapermillExecutionError as exc:
            status, error = "failed", f"{exc.ename}: {exc.evalue}".splitlines()[0]
        except Exception as exc:  # noqa: BLE001 - a kernel crash must still be recorded
            status, error = "failed", (traceback.format_exception_only(exc)[-1].strip())
        row = {"run_id": run_id, "stage": stage, "parameters": json.dumps(stage_params, sort_keys=True),
               "status": status, "error": error, "started_at": started,
               "finished_at": datetime.now(timezone.utc), "notebook_path": str(output),
               "astrokit_version": astrokit.__version__}
        store.write("runs", [row], key=f"{run_id}-{stage}")
        records.append(row)
        if status != "ok":
            break
    store.refresh_views()
    return records
