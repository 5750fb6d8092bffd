"""The parameters every pipeline stage declares: type, range, unit, description, in one place.

The declaration drives three things: the ``parameters`` cell of each notebook in
``pipelines/`` (written by ``tools/make_pipeline_notebooks.py``, so
``papermill --help-notebook`` documents it), ``astrokit run --help-stage STAGE``,
and the validation `astrokit.pipeline.run_pipeline` does before any work: an
unknown name or an out-of-range value is a `ParameterError` (exit 2 on the command
line), and nothing is read or written.
"""

import difflib
import json
import math
from dataclasses import dataclass, field

from astrokit.exceptions import ParameterError

__all__ = ["ParameterError", "StageParameter", "STAGE_PARAMETERS", "describe_stage", "parameters_cell",
           "validate_parameters"]


_TYPES = {"float": float, "int": int, "bool": bool, "str": str, "list": list}


@dataclass(frozen=True)
class StageParameter:
    """One parameter of a pipeline stage.

    Parameters
    ----------
    name : str
        The notebook variable.
    type : {'float', 'int', 'bool', 'str', 'list'}
        Its Python type.
    default : object
        The default value (the notebook's).
    description : str
        One line.
    unit : str
        Unit of a number ('' when none).
    minimum, maximum : float, optional
        Inclusive bounds of a number.
    exclusive_minimum : bool
        Whether ``minimum`` itself is refused (a strictly positive number).
    choices : tuple, optional
        The allowed values of a string.
    """

    name: str
    type: str
    default: object
    description: str
    unit: str = ""
    minimum: float = None
    maximum: float = None
    exclusive_minimum: bool = False
    choices: tuple = field(default=None)

    def range_text(self):
        """Return the allowed values as text, e.g. ``> 0``, ``0 .. 1``, ``zogy | sfft``."""
        if self.choices:
            return " | ".join(str(c) for c in self.choices)
        if self.minimum is None and self.maximum is None:
            return ""
        low = "" if self.minimum is None else f"{'>' if self.exclusive_minimum else '>='} {self.minimum:g}"
        high = "" if self.maximum is None else f"<= {self.maximum:g}"
        return ", ".join(t for t in (low, high) if t)

    def check(self, value, *, stage):
        """Return ``value`` if it fits the declaration.

        Parameters
        ----------
        value : object
            The value given (from ``--param`` JSON, a YAML config or Python).
        stage : str
            The stage, for the message.

        Returns
        -------
        object
            ``value`` (an int given for a float is returned as float).

        Raises
        ------
        ParameterError
            If the type or range is wrong; the message names the stage, the
            parameter and what is allowed.
        """
        where = f"{stage} parameter {self.name}={value!r}"
        kind = _TYPES[self.type]
        if self.type == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.type == "list" and isinstance(value, str):
            value = [value]
        if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
            msg = f"{where}: expected {self.type}" + (f" ({self.range_text()})" if self.range_text() else "")
            raise ParameterError(msg)
        if kind in (int, float):
            bad = not math.isfinite(value)
            if self.minimum is not None:
                bad = bad or value < self.minimum or (self.exclusive_minimum and value == self.minimum)
            if self.maximum is not None:
                bad = bad or value > self.maximum
            if bad:
                unit = f" {self.unit}" if self.unit else ""
                msg = f"{where}: expected a finite number {self.range_text()}{unit}".rstrip()
                raise ParameterError(msg)
        if self.choices and value not in self.choices:
            msg = f"{where}: choose from {self.range_text()}"
            raise ParameterError(msg)
        return value


def _p(name, type_, default, description, unit="", **kw):
    return StageParameter(name, type_, default, description, unit, **kw)


_STORE = _p("store", "str", "astrokit-data", "store folder or s3://bucket/prefix (tables/, runs/, artifacts/)")
_SCHEDULER = _p("scheduler", "str", "", "Dask scheduler address tcp://host:port; empty: no scheduler")
_WORKERS = _p("workers", "int", 0, "without a scheduler: local Dask worker processes; 0 or 1: compute in this kernel",
              minimum=0)
_FORCE = _p("force", "bool", False, "redo units whose inputs and parameters are unchanged (default: skip them)")
_DASK = (_SCHEDULER, _WORKERS, _FORCE)

#: stage -> its parameters, in the order of the notebook's parameters cell.
STAGE_PARAMETERS = {
    "ingest": (_STORE,
               _p("inputs", "list", [], "FITS/PNG/JPEG/TIFF files or folders, and nothing else; empty: nothing new "
                  "(the sample frames: astrokit data path frames)"),
               _SCHEDULER, _WORKERS),
    "calibrate": (_STORE,
                  _p("cosmic_rays", "bool", False, "also clean cosmic rays (astroscrappy L.A.Cosmic)"),
                  _p("sigma", "float", 3.0, "sigma-clipping threshold of the master combines (robust standard "
                     "deviations)", "sigma", minimum=0.0, exclusive_minimum=True),
                  _p("force", "bool", False, "recalibrate frames whose inputs and parameters are unchanged "
                     "(default: skip them)")),
    "astrometry": (_STORE,
                   _p("timeout", "float", 60.0, "CPU-time limit of one plate solve", "s", minimum=0.0,
                      exclusive_minimum=True, maximum=3600.0),
                   _p("max_references", "int", 5, "frames with a WCS tried per frame in the alignment fallback",
                      minimum=1),
                   _p("force", "bool", False, "solve again frames solved before, retry those that failed "
                      "(default: skip them)")),
    "photometry": (_STORE,
                   _p("threshold", "float", 3.0, "detection threshold in background-rms units", "sigma",
                      minimum=0.0, exclusive_minimum=True, maximum=1e6),
                   _p("aperture_radius", "float", 0.0, "aperture radius; 0: 1.5 x the median FWHM of each frame",
                      "pix", minimum=0.0, maximum=1000.0),
                   *_DASK),
    "difference": (_STORE,
                   _p("threshold", "float", 5.0, "|S_corr| detection threshold", "sigma", minimum=0.0,
                      exclusive_minimum=True, maximum=1e6),
                   _p("method", "str", "zogy", "subtraction method", choices=("zogy", "sfft")),
                   *_DASK),
    "alerts": (_STORE,
               _p("alerts", "list", [], "alert files (Parquet, Avro) or folders; empty: none (the 51 real ZTF "
                  "sample alerts: astrokit data path ztf_alerts)"),),
    "inference": (_STORE,
                  _p("model", "str", "", "NAME[:VERSION] in the registry, 'default' for the shipped model; "
                     "empty: promoted"),),
    "objects": (_STORE,
                _p("radius", "float", 1.0, "association radius, a few times the astrometric error", "arcsec",
                   minimum=0.0, exclusive_minimum=True, maximum=3600.0),
                _p("forced_photometry", "bool", True, "forced PSF photometry on D where an object has no "
                   "candidate"),
                _FORCE),
    "link": (_STORE,
             _p("max_rate", "float", 150.0, "fastest motion searched", "arcsec/h", minimum=0.0,
                exclusive_minimum=True, maximum=1e5),
             _p("stack", "bool", True, "run the shift-and-stack search (slower)"),
             _p("stack_threshold", "float", 7.0, "least stacked signal-to-noise ratio of a trajectory", "sigma",
                minimum=0.0, exclusive_minimum=True),
             _FORCE),
}


def parameters_cell(stage):
    """Return the source of the ``parameters`` cell of a stage's notebook.

    One annotated assignment per parameter with its description, unit and
    range as the comment, so ``papermill --help-notebook`` documents it.

    Parameters
    ----------
    stage : str
        A key of `STAGE_PARAMETERS`.

    Returns
    -------
    str
    """
    lines = []
    for p in STAGE_PARAMETERS[stage]:
        # no "=" in the comment: papermill's parameter parser gives up on the line
        bounds = p.range_text().replace(">=", "at least").replace("<=", "at most").replace(">", "above")
        extra = ", ".join(t for t in (p.unit, bounds) if t)
        default = json.dumps(p.default) if isinstance(p.default, (str, list)) else repr(p.default)
        lines.append(f"{p.name}: {p.type} = {default}  # {p.description}" + (f" [{extra}]" if extra else ""))
    return "\n".join(lines) + "\n"


def describe_stage(stage):
    """Return the parameters of a stage as a text table (``astrokit run --help-stage STAGE``).

    Parameters
    ----------
    stage : str
        A key of `STAGE_PARAMETERS`.

    Returns
    -------
    str

    Raises
    ------
    ParameterError
        If the stage is unknown (the message lists the stages).
    """
    if stage not in STAGE_PARAMETERS:
        msg = f"unknown stage {stage!r}; choose from {', '.join(STAGE_PARAMETERS)}"
        raise ParameterError(msg)
    rows = [("name", "type", "default", "unit", "range", "description")]
    rows += [(p.name, p.type, repr(p.default), p.unit, p.range_text(), p.description)
             for p in STAGE_PARAMETERS[stage] if p.name != "store"]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:5], widths)) + "  " + r[5] for r in rows)


def validate_parameters(stages, params, sweep=None, *, declared=None):
    """Check run parameters before any work: known names, declared types and ranges.

    A name must be a parameter of some stage (of `STAGE_PARAMETERS`, or declared
    by a notebook of a custom ``$ASTROKIT_PIPELINES`` folder, given in
    ``declared``); its value must fit the declaration of every selected stage
    that takes it. A swept parameter needs a non-empty list, each value checked.

    Parameters
    ----------
    stages : list of str
        The stages of the run.
    params : dict
        Parameters for the notebooks.
    sweep : dict of str -> list, optional
        Swept parameters.
    declared : dict of str -> set of str, optional
        Parameter names each stage's notebook declares (papermill's
        ``inspect_notebook``); names outside `STAGE_PARAMETERS` are accepted
        unchecked when a notebook declares them.

    Returns
    -------
    dict
        ``params`` with values normalised (ints given for floats become floats).

    Raises
    ------
    ParameterError
        On the first unknown name (with the closest known names) or bad value.
    """
    declared = declared or {}
    known = {p.name for ps in STAGE_PARAMETERS.values() for p in ps} | {n for ns in declared.values() for n in ns}
    out = dict(params or {})
    sweep = dict(sweep or {})
    for name in [*out, *sweep]:
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            msg = f"unknown parameter {name!r}{hint}; see astrokit run --help-stage STAGE"
            raise ParameterError(msg)
    for name, values in sweep.items():
        if not isinstance(values, list) or not values:
            msg = f"--sweep {name}: expected a non-empty list of values, e.g. {name}=[4.0,5.0]"
            raise ParameterError(msg)
    for stage in stages:
        for p in STAGE_PARAMETERS.get(stage, ()):
            if p.name in out:
                out[p.name] = p.check(out[p.name], stage=stage)
            for value in sweep.get(p.name, []):
                p.check(value, stage=stage)
    return out
