"""Model registry: ``<models_dir>/<name>/<version>/`` with the model, its metrics and training-set hash.

Layout (ARCHITECTURE.md, "The store")::

    <models_dir>/<name>/v0001/model.keras
                             /metrics.json
                             /training_set.sha256
    <models_dir>/<name>/promoted.json      {"version": ..., "history": [...]}

A version folder is written under a temporary name and renamed into place,
so readers never see a half-written model.
"""

import json
import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from astrokit.exceptions import AstrokitError, require

__all__ = ["DOMAIN_ORIGINS", "candidate_instrument", "in_domain", "list_models", "load_model", "load_model_folder",
           "model_domain", "model_choice", "model_metrics", "normalise_instrument", "promote", "promoted_version",
           "save_model"]

_VERSION = re.compile(r"^v(\d{4,})$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _check_name(name):
    if not _NAME.match(name or ""):
        msg = f"model name {name!r} must be non-empty and contain only letters, digits, '_', '.', '-'"
        raise ValueError(msg)


def _versions(models_dir, name):
    base = Path(models_dir) / name
    if not base.is_dir():
        return []
    found = [(int(m.group(1)), p.name) for p in base.iterdir() if p.is_dir() and (m := _VERSION.match(p.name))]
    return [v for _, v in sorted(found)]


def _atomic_write_text(path, text):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def save_model(model, metrics, *, models_dir, name="real_bogus"):
    """Save a model as the next version ``vNNNN`` of ``name`` in the registry.

    The model (``model.keras``), ``metrics.json`` (the given metrics plus
    ``created_at`` (UTC, ISO 8601), ``astrokit_version``, ``name`` and
    ``version``) and ``training_set.sha256`` (from
    ``metrics["training_set_sha256"]``, empty if absent) are written to a
    temporary folder that is then renamed to ``<models_dir>/<name>/vNNNN``.
    An `Ensemble` is saved one file per member (`_save_model_files`).

    Parameters
    ----------
    model : keras.Model or Ensemble
        The trained model.
    metrics : dict
        JSON-serialisable metrics, e.g. from `train_real_bogus`.
    models_dir : path-like
        Root of the registry (created if missing).
    name : str
        Model name (letters, digits, ``_ . -``).

    Returns
    -------
    str
        The new version, e.g. ``"v0001"``.

    Raises
    ------
    ValueError
        If ``name`` is not a valid model name, or ``metrics["validated_on"]``
        is malformed (see `model_domain`).
    AstrokitError
        If another writer took the same version at the same time.
    """
    import astrokit

    _check_name(name)
    domain = model_domain(metrics)  # a malformed validated_on raises before anything is written
    base = Path(models_dir) / name
    base.mkdir(parents=True, exist_ok=True)
    existing = _versions(models_dir, name)
    number = int(existing[-1][1:]) + 1 if existing else 1
    version = f"v{number:04d}"
    meta = dict(metrics)
    meta.setdefault("created_at", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    meta["astrokit_version"] = astrokit.__version__
    meta["name"] = name
    meta["version"] = version
    if domain is not None:
        meta["validated_on"] = domain
    tmp = Path(tempfile.mkdtemp(dir=base, prefix=f".{version}.", suffix=".part"))
    try:
        _save_model_files(model, tmp, meta)
        (tmp / "metrics.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=float) + "\n")
        (tmp / "training_set.sha256").write_text(str(meta.get("training_set_sha256", "")) + "\n")
        try:
            os.rename(tmp, base / version)
        except OSError as exc:
            msg = f"could not register {name}/{version} in {models_dir}: {exc} (concurrent save?)"
            raise AstrokitError(msg) from exc
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return version


def _read_promoted(models_dir, name):
    path = Path(models_dir) / name / "promoted.json"
    if not path.is_file():
        return {"version": None, "history": []}
    return json.loads(path.read_text())


def promoted_version(models_dir, name="real_bogus"):
    """Return the promoted version of ``name`` (e.g. ``"v0002"``), or None if none is promoted.

    Parameters
    ----------
    models_dir : path-like
        Root of the registry.
    name : str
        Model name.

    Returns
    -------
    str or None
        The promoted version.
    """
    return _read_promoted(models_dir, name).get("version")


def model_choice(store, spec=None):
    """Return which model scores a store's candidates, without loading it: the promoted one, else the shipped one.

    Parameters
    ----------
    store : astrokit.store.Store
        The store (its ``models/`` folder is the registry; read only when ``spec`` is not ``"default"``).
    spec : str, optional
        ``NAME`` or ``NAME:VERSION`` in the registry, or ``default`` for the shipped model; default:
        the promoted ``real_bogus``, else the shipped model.

    Returns
    -------
    name : str
        Model name.
    version : str
        Model version.
    models_dir : pathlib.Path or None
        The registry holding it; None for the shipped model.

    Raises
    ------
    AstrokitError
        If a named model has no promoted version.
    """
    from astrokit.inference._score import default_model_version

    name, _, version = (spec or "").partition(":")
    if spec != "default":
        name = name or "real_bogus"
        models_dir = store.models_dir  # an S3 store syncs its local mirror on each access: once here
        version = version or promoted_version(models_dir, name)
        if version:
            return name, version, models_dir
        if spec:
            msg = f"no promoted version of model {name!r} in {models_dir}; train one or use 'default'"
            raise AstrokitError(msg)
    return "real_bogus", default_model_version(), None  # a retrained shipped model is a new version


def list_models(models_dir):
    """List every registered model version.

    Parameters
    ----------
    models_dir : path-like
        Root of the registry.

    Returns
    -------
    list of dict
        One dict per version, sorted by name then version, with ``name``,
        ``version``, ``path``, ``promoted`` (bool), ``created_at``,
        ``roc_auc``, ``average_precision``, ``fpr_at_fnr_1pct``,
        ``fpr_at_fnr_5pct``, ``n_train``, ``n_eval``, ``training_set_sha256``
        (None where absent from ``metrics.json``), and ``validated_on`` (the
        `model_domain`, None when unknown). Empty if the folder does not exist.
    """
    root = Path(models_dir)
    out = []
    if not root.is_dir():
        return out
    keys = ("created_at", "roc_auc", "average_precision", "fpr_at_fnr_1pct", "fpr_at_fnr_5pct", "n_train",
            "n_eval", "training_set_sha256")
    for base in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        promoted = _read_promoted(root, base.name).get("version")
        for version in _versions(root, base.name):
            path = base / version
            mpath = path / "metrics.json"
            metrics = json.loads(mpath.read_text()) if mpath.is_file() else {}
            row = {"name": base.name, "version": version, "path": str(path), "promoted": version == promoted}
            row.update({k: metrics.get(k) for k in keys})
            row["validated_on"] = _domain_or_none(metrics)
            out.append(row)
    return out


def _resolve(models_dir, name, version):
    versions = _versions(models_dir, name)
    if not versions:
        names = sorted({r["name"] for r in list_models(models_dir)})
        msg = f"no model named {name!r} in {models_dir}; registered: {names}"
        raise AstrokitError(msg)
    if version is None:
        version = promoted_version(models_dir, name) or versions[-1]
    if version not in versions:
        msg = f"model {name!r} has no version {version!r} in {models_dir}; choose from {versions}"
        raise AstrokitError(msg)
    return version


def load_model(models_dir, name="real_bogus", version=None):
    """Load a registered model.

    Parameters
    ----------
    models_dir : path-like
        Root of the registry.
    name : str
        Model name.
    version : str, optional
        Version such as ``"v0003"``. None loads the promoted version, or the
        latest one when none is promoted.

    Returns
    -------
    model : keras.Model or Ensemble
        The model, compiled (fresh optimizer state); an `Ensemble` when
        its ``metrics.json`` names several members.
    metrics : dict
        Its ``metrics.json``.

    Raises
    ------
    AstrokitError
        If the name or version is not registered, or a member's file is missing.
    astrokit.exceptions.MissingExtraError
        If TensorFlow/Keras is not installed.
    """
    require("keras", "ml")
    version = _resolve(models_dir, name, version)
    return load_model_folder(Path(models_dir) / name / version)


def _model_files(folder, metrics=None):
    """Return the paths of the model files of a model folder, member by member.

    Parameters
    ----------
    folder : path-like
        A model folder (a registry version, the shipped model's, an
        ``astrokit train --out`` folder).
    metrics : dict, optional
        Its ``metrics.json``, if already read (read from the folder otherwise).

    Returns
    -------
    list of pathlib.Path
        The files named in ``metrics["members"]`` (an `Ensemble`), else
        ``[folder / "model.keras"]``; they may not exist.
    """
    folder = Path(folder)
    if metrics is None:
        mpath = folder / "metrics.json"
        metrics = json.loads(mpath.read_text()) if mpath.is_file() else {}
    members = metrics.get("members") or []
    return [folder / str(m["file"]) for m in members] or [folder / "model.keras"]


def load_model_folder(folder):
    """Load the model of a model folder (``model.keras``, or one file per member of an ensemble) and its metrics.

    This reads what `save_model`, ``astrokit train --out DIR`` and
    `astrokit.inference.train_default` write.

    Parameters
    ----------
    folder : path-like
        The folder, holding ``model.keras`` (and, for an ensemble,
        ``model_2.keras``, ...) and ``metrics.json``.

    Returns
    -------
    model : keras.Model or Ensemble
        The model, compiled for inference; an `Ensemble` when
        ``metrics.json`` names several members (``members``).
    metrics : dict
        Its ``metrics.json`` (empty when the folder has none).

    Raises
    ------
    AstrokitError
        If a model file is missing.
    astrokit.exceptions.MissingExtraError
        If TensorFlow/Keras is not installed.
    """
    from astrokit.inference._ensemble import Ensemble

    require("keras", "ml")
    folder = Path(folder)
    mpath = folder / "metrics.json"
    metrics = json.loads(mpath.read_text()) if mpath.is_file() else {}
    files = _model_files(folder, metrics)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        msg = f"{folder}: model file(s) missing: {', '.join(missing)}"
        raise AstrokitError(msg)
    models = [_load_keras(f) for f in files]
    return (models[0] if len(models) == 1 else Ensemble(models)), metrics


def _save_model_files(model, folder, metrics):
    """Write a model's file(s) into ``folder``: ``model.keras``, or one file per member of an ensemble.

    For an ensemble, ``metrics["members"]`` (a list with one dict per
    member, created if missing) gets each member's ``file``, ``name`` and
    ``target_fwhm``; `load_model_folder` reads them back. Files are written
    as they are: write into a temporary folder and rename it (or replace the
    files) to keep readers from seeing half a model.

    Parameters
    ----------
    model : keras.Model or Ensemble
        The model.
    folder : path-like
        The destination folder (it must exist).
    metrics : dict
        The metrics to be written next to it; updated in place.

    Returns
    -------
    list of str
        The file names written, member by member.
    """
    from astrokit.inference._ensemble import Ensemble, member_file, members_of
    from astrokit.inference._psf_scale import model_target_fwhm

    members = members_of(model)
    names = [member_file(i) for i in range(len(members))]
    for m, f in zip(members, names):
        _save_keras(m, Path(folder) / f)
    if isinstance(model, Ensemble) or len(members) > 1:
        info = list(metrics.get("members") or [{} for _ in members])
        if len(info) != len(members):
            msg = f"metrics['members'] has {len(info)} entries for {len(members)} members"
            raise ValueError(msg)
        metrics["members"] = [{**i, "file": f, "name": str(m.name), "target_fwhm": model_target_fwhm(m)}
                              for i, f, m in zip(info, names, members)]
    else:
        metrics.pop("members", None)
    return names


def _save_keras(model, path):
    """Save ``model`` without its optimizer state (about a third of the size), as a ``.keras`` file."""
    keras = require("keras", "ml")
    bare = keras.Model.from_config(model.get_config())  # same architecture, not compiled
    bare.set_weights(model.get_weights())
    bare.save(path)


def _load_keras(path):
    """Load a ``.keras`` file for inference and re-compile it as `build_real_bogus_model` does.

    The optimizer state is not restored (a registered model is used for
    scoring; fine-tuning starts a fresh optimizer).
    """
    keras = require("keras", "ml")
    model = keras.models.load_model(path, compile=False)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(name="auc")])
    return model


def promote(models_dir, name, version, *, margin=0.0, force=False, metric="average_precision"):
    """Promote a version if it beats the currently promoted one by ``margin``.

    The comparison uses ``metric`` from each ``metrics.json`` (by default the
    average precision, "AUCPR"): the candidate is promoted when no version is
    promoted yet, or when ``new > current + margin``, or when ``force`` is
    True. Every decision (promoted or not) is appended to the ``history`` in
    ``<models_dir>/<name>/promoted.json``, which is rewritten atomically.

    Parameters
    ----------
    models_dir : path-like
        Root of the registry.
    name : str
        Model name.
    version : str
        The version to promote.
    margin : float
        Required improvement of ``metric`` over the promoted version.
    force : bool
        Promote regardless of the metrics.
    metric : str
        Key in ``metrics.json`` to compare (higher is better).

    Returns
    -------
    dict
        ``promoted`` (bool), ``version``, ``previous`` (version or None),
        ``metric``, ``new_value``, ``current_value``, ``margin``, ``reason``.

    Raises
    ------
    AstrokitError
        If the version is not registered, or a metrics.json lacks ``metric``.
    """
    version = _resolve(models_dir, name, version)
    root = Path(models_dir) / name

    def value(v):
        m = json.loads((root / v / "metrics.json").read_text())
        if metric not in m or m[metric] is None:
            msg = f"{name}/{v}/metrics.json has no {metric!r}; cannot compare models"
            raise AstrokitError(msg)
        return float(m[metric])

    state = _read_promoted(models_dir, name)
    current = state.get("version")
    new_value = value(version) if not force else _maybe(value, version)
    current_value = _maybe(value, current) if current else None
    if force:
        ok, reason = True, "forced"
    elif current is None:
        ok, reason = True, "no promoted version yet"
    elif current == version:
        ok, reason = False, "already promoted"
    elif new_value > current_value + margin:
        ok, reason = True, f"{metric} {new_value:.4f} > {current_value:.4f} + margin {margin}"
    else:
        ok, reason = False, f"{metric} {new_value:.4f} <= {current_value:.4f} + margin {margin}"
    decision = {"promoted": ok, "version": version, "previous": current, "metric": metric,
                "new_value": new_value, "current_value": current_value, "margin": float(margin),
                "reason": reason, "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    if ok:
        state["version"] = version
    state.setdefault("history", []).append(decision)
    _atomic_write_text(root / "promoted.json", json.dumps(state, indent=2) + "\n")
    return decision


def _maybe(fn, arg):
    try:
        return fn(arg)
    except AstrokitError:
        return None


# -- the validation domain of a model ---------------------------------------------------------------------------
DOMAIN_ORIGINS = ("pipeline", "alert", "injected")
"""Candidate origins a model can be validated on (the ``candidates.origin`` values).

``pipeline``: candidates of astrokit's own difference images; ``alert``:
survey alert packets (`astrokit.alerts`); ``injected``: injected fakes.
``difference`` is read as ``pipeline``, ``alerts`` as ``alert``.
"""

_ORIGIN_ALIASES = {"difference": "pipeline", "differences": "pipeline", "alerts": "alert", "injection": "injected"}

#: (regular expression, name): an instrument or telescope matching the expression is that instrument. The first
#: match wins; the instrument keyword is tried before the telescope one.
_INSTRUMENTS = (
    (re.compile(r"\bZTF|palomar\s*48|\bP48\b|oschin", re.I), "ZTF"),
    (re.compile(r"decam|blanco|ctio\s*4", re.I), "DECam"),
    (re.compile(r"\bGOTO", re.I), "GOTO"),
    (re.compile(r"\bWFC3\b", re.I), "WFC3"),
    (re.compile(r"\bWFPC2\b", re.I), "WFPC2"),
    (re.compile(r"\bACS\b", re.I), "ACS"),
    (re.compile(r"\bISAAC\b", re.I), "ISAAC"),
    (re.compile(r"\bEMMI\b", re.I), "EMMI"),
    (re.compile(r"\bSAAO\b", re.I), "SAAO"),
)
_ALERT_SURVEY = re.compile(r"^(ZTF)\d", re.I)  # ZTF objectIds: ZTF18abcdefg


def normalise_instrument(telescope=None, instrument=None):
    """Name the instrument of a frame from its ``TELESCOP`` and ``INSTRUME`` values (``frames`` columns).

    Known spellings are mapped to one name: ``'ZTF/MOSAIC'`` or
    ``'Palomar 48-inch'`` -> ``ZTF``; ``'DECam'`` or ``'CTIO 4.0-m telescope'``
    -> ``DECam``; ``'GOTO-N'`` -> ``GOTO``; ``'ACS'`` (HST) -> ``ACS``;
    ``'SAAO 1.0m'`` -> ``SAAO``; also ``WFC3``, ``WFPC2``, ``ISAAC``, ``EMMI``.
    Anything else is returned stripped (the instrument, else the telescope).

    Parameters
    ----------
    telescope : str, optional
        ``TELESCOP`` (``frames.telescope``).
    instrument : str, optional
        ``INSTRUME`` (``frames.instrument``).

    Returns
    -------
    str or None
        The instrument name, None when neither value is given.
    """
    texts = [str(v).strip() for v in (instrument, telescope) if v is not None and str(v).strip()]
    for text in texts:
        for pattern, name in _INSTRUMENTS:
            if pattern.search(text):
                return name
    return texts[0] if texts else None


def candidate_instrument(*, origin=None, telescope=None, instrument=None, object_id=None):
    """Name the instrument a candidate comes from.

    A pipeline or injected candidate has the instrument of its science frame
    (``candidates.difference_id`` -> ``differences.science_id`` ->
    ``frames.exposure_id``, with `normalise_instrument`). An alert candidate
    has its survey, read from the ``object_id`` (``ZTF18abc...`` -> ``ZTF``)
    when the frame gives none.

    Parameters
    ----------
    origin : str, optional
        ``candidates.origin``.
    telescope, instrument : str, optional
        ``frames.telescope`` and ``frames.instrument`` of the science frame.
    object_id : str, optional
        ``candidates.object_id`` (the survey's objectId for alerts).

    Returns
    -------
    str or None
        The instrument, None when unknown.
    """
    name = normalise_instrument(telescope, instrument)
    if name is None and _norm_origin(origin) == "alert" and object_id is not None:
        m = _ALERT_SURVEY.match(str(object_id))
        name = normalise_instrument(instrument=m.group(1)) if m else None
    return name


def _norm_origin(origin):
    if origin is None:
        return None
    text = str(origin).strip().lower()
    return _ORIGIN_ALIASES.get(text, text) or None


def _names(value, what):
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        msg = f"validated_on[{what!r}] must be a list of strings, got {value!r}"
        raise ValueError(msg)
    out = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            msg = f"validated_on[{what!r}] must be a list of non-empty strings, got {value!r}"
            raise ValueError(msg)
        out.append(item.strip())
    return out


def model_domain(metrics):
    """Return the origins and instruments a model was validated on, from its ``metrics.json``.

    The key is ``validated_on``: ``{"origins": [...], "instruments": [...]}``,
    origins from `DOMAIN_ORIGINS` (aliases accepted), instruments as names
    `normalise_instrument` gives (``"GOTO"``, ``"DECam"``, ``"ZTF"`` ...);
    ``"*"`` stands for any instrument, including an unknown one.

    Parameters
    ----------
    metrics : dict or None
        A model's metrics (``metrics.json`` of a registry version or of the
        shipped model).

    Returns
    -------
    dict or None
        ``{"origins": list of str, "instruments": list of str}``, normalised
        (origins lower case, instruments by `normalise_instrument`,
        duplicates removed, order kept); None when ``metrics`` has no
        ``validated_on`` (an unknown domain: no candidate is inside it).

    Raises
    ------
    ValueError
        If ``validated_on`` is not a dict of two lists of strings, or names an
        unknown origin.
    """
    raw = (metrics or {}).get("validated_on")
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"origins", "instruments"}:
        msg = f"validated_on must be {{'origins': [...], 'instruments': [...]}}, got {raw!r}"
        raise ValueError(msg)
    origins = [_norm_origin(o) for o in _names(raw.get("origins", []), "origins")]
    bad = sorted(set(origins) - set(DOMAIN_ORIGINS))
    if bad:
        msg = f"validated_on names unknown origin(s) {bad}; choose from {list(DOMAIN_ORIGINS)}"
        raise ValueError(msg)
    instruments = [i if i == "*" else normalise_instrument(instrument=i)
                   for i in _names(raw.get("instruments", []), "instruments")]
    return {"origins": list(dict.fromkeys(origins)), "instruments": list(dict.fromkeys(instruments))}


def _domain_or_none(metrics):
    try:
        return model_domain(metrics)
    except ValueError:
        return None


def _describe_origin(origin, instrument):
    who = instrument or "an unrecorded instrument"
    if origin == "alert":
        return f"{who} alerts"
    if origin == "injected":
        return f"injected candidates on {who} frames"
    if origin == "pipeline":
        return f"candidates of {who} frames"
    return f"{origin or 'unknown-origin'} candidates of {who}"


def in_domain(domain, origin, instrument):
    """Decide whether a candidate lies in a model's validation domain, and say why not.

    Parameters
    ----------
    domain : dict or None
        From `model_domain`; None is an unknown domain, inside which nothing lies.
    origin : str or None
        ``candidates.origin`` (``pipeline``, ``alert``, ``injected``; aliases accepted).
    instrument : str or None
        The candidate's instrument (`candidate_instrument`); compared after
        `normalise_instrument`, case-insensitively. None (unknown) is inside
        only a domain whose instruments include ``"*"``.

    Returns
    -------
    inside : bool
        True when the origin and the instrument are both in the domain.
    note : str or None
        None when inside; otherwise one line for the scanner, e.g. ``"score
        from a model not validated on ZTF alerts (validated on: pipeline;
        GOTO, DECam)"``, or ``"... (its validation domain is unknown: no
        validated_on in its metrics)"``.
    """
    origin = _norm_origin(origin)
    name = None if instrument is None else normalise_instrument(instrument=instrument)
    if domain is None:
        return False, (f"score from a model not validated on {_describe_origin(origin, name)} (its validation "
                       "domain is unknown: no validated_on in its metrics)")
    origins = [o.lower() for o in domain.get("origins", [])]
    instruments = [i.casefold() if i == "*" else normalise_instrument(instrument=i).casefold()
                   for i in map(str, domain.get("instruments", []))]
    ok_origin = origin is not None and origin in origins
    ok_instrument = "*" in instruments or (name is not None and name.casefold() in instruments)
    if ok_origin and ok_instrument:
        return True, None
    where = f"{', '.join(domain.get('origins', [])) or 'nothing'}; {', '.join(domain.get('instruments', [])) or '-'}"
    return False, f"score from a model not validated on {_describe_origin(origin, name)} (validated on: {where})"


_DEFAULT_METRICS = {}  # ((path, mtime_ns, size) of the files) -> (version, metrics) of the shipped model


def _shipped_model():
    from astrokit.inference._score import default_model_path, default_model_version

    path = default_model_path()
    mpath = path.with_name("metrics.json")
    try:
        key = tuple((str(p), (st := p.stat()).st_mtime_ns, st.st_size)
                    for p in (path, mpath) if p == path or p.exists())
    except OSError:
        return None, None
    if key not in _DEFAULT_METRICS:
        metrics = json.loads(mpath.read_text()) if mpath.is_file() else {}
        _DEFAULT_METRICS.clear()
        _DEFAULT_METRICS[key] = (default_model_version(), metrics)
    return _DEFAULT_METRICS[key]


def model_metrics(models_dir, name, version):
    """Return the ``metrics.json`` of the model that wrote a score (``scores.model_name``, ``model_version``).

    A version ``default-<hash>`` is the model shipped with astrokit, when its
    hash is that of the shipped model now (an older shipped model's metrics
    are gone); any other version is read from
    ``<models_dir>/<name>/<version>/metrics.json``.

    Parameters
    ----------
    models_dir : path-like or None
        Root of the registry (None: only the shipped model is looked up).
    name : str
        Model name.
    version : str
        Model version.

    Returns
    -------
    dict or None
        The metrics, None when they cannot be found.
    """
    if version is None or name is None:
        return None
    version, name = str(version), str(name)
    if version.startswith("default-"):
        shipped, metrics = _shipped_model()
        return metrics if shipped == version else None
    if models_dir is None or not _NAME.match(name) or not _NAME.match(version) or version.startswith("."):
        return None
    path = Path(models_dir) / name / version / "metrics.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
