"""A job at one position: the pipeline on the frames that contain it, recorded as one ``runs`` row."""

from datetime import datetime, timezone

from astrokit.catalog._search import frames_at
from astrokit.exceptions import AstrokitError
from astrokit.pipeline._core import StageReport, record_run

__all__ = ["run_at_position"]


def run_at_position(store, ra, dec, *, stages=("photometry", "difference", "link"), link_options=None,
                    progress=True):
    """Run the pipeline on the frames that contain a position, as one job recorded in ``runs``.

    The stage functions, each through the pipeline's runner (`astrokit.pipeline.run_units`: units
    unchanged since their last success are skipped), are called with the covering frames' exposure ids:
    `run_photometry` on
    them, `run_difference` on the pairs of `plan_differences` whose science frame is one of them, and
    `run_link` on the fields and nights of those pairs. The job holds the store's run lock and is one row
    of ``runs`` (stage ``search``, parameters with the position and exposure ids, status ok or failed
    with the error).

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    ra, dec : float
        Position (deg).
    stages : tuple of str, optional
        Stages to run, from ``photometry``, ``difference``, ``link``.
    link_options : dict, optional
        Keyword arguments for `astrokit.pipeline.run_link` (``max_rate``, ``stack``, ...).
    progress : bool, optional
        Show progress bars.

    Returns
    -------
    dict
        The ``runs`` row written, plus ``reports`` (one `StageReport` per stage).

    Raises
    ------
    AstrokitError
        If no frame contains the position, a stage is unknown, or another run holds the store's lock.
    """
    from astrokit.pipeline import new_run_id, plan_differences, run_difference, run_photometry, store_lock

    unknown = [s for s in stages if s not in ("photometry", "difference", "link")]
    if unknown:
        msg = f"run_at_position: unknown stages {unknown}; choose from photometry, difference, link"
        raise AstrokitError(msg)
    frames, _ = frames_at(store, ra, dec)
    ids = [r["exposure_id"] for r in frames.select(["exposure_id", "imagetyp"]).to_pylist()
           if r["imagetyp"] in (None, "light")]
    if not ids:
        msg = f"no ok light frame of {store.root} contains RA={ra}, Dec={dec}"
        raise AstrokitError(msg)
    run_id = new_run_id()
    params = {"ra": ra, "dec": dec, "exposure_ids": ids, "stages": list(stages)}
    started = datetime.now(timezone.utc)
    reports, error = [], None
    with store_lock(store):
        try:
            if "photometry" in stages:
                reports.append(run_photometry(store, exposure_ids=ids, progress=progress))
            pairs = [(s["exposure_id"], r["exposure_id"]) for s, r in plan_differences(store)
                     if s["exposure_id"] in set(ids)]
            if "difference" in stages and pairs:
                reports.append(run_difference(store, pairs=pairs, progress=progress))
            if "link" in stages:
                from astrokit.pipeline import plan_link, run_link

                sci = {s for s, _ in pairs}
                fields = sorted({k for k, c in plan_link(store).items() if sci & set(c["science_id"])})
                reports.append(run_link(store, fields=fields, progress=progress, **(link_options or {})))
        except (AstrokitError, ValueError, OSError) as exc:
            error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        job = StageReport("search")  # the job's units: the stages' units, summed
        for report in reports:
            for name in ("processed", "skipped", "failed"):
                job[name] += report[name]
            job["failures"] += report["failures"]
        row = record_run(store, run_id, "search", parameters=params, started=started, error=error,
                         status="ok" if error is None else "failed", report=job)
    return {**row, "reports": reports}
