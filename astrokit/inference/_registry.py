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

__all__ = ["list_models", "load_model", "promote", "promoted_version", "save_model"]

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

    Parameters
    ----------
    model : keras.Model
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
        If ``name`` is not a valid model name.
    AstrokitError
        If another writer took the same version at the same time.
    """
    import astrokit

    _check_name(name)
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
    tmp = Path(tempfile.mkdtemp(dir=base, prefix=f".{version}.", suffix=".part"))
    try:
        _save_keras(model, tmp / "model.keras")
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
        (None where absent from ``metrics.json``). Empty if the folder does not exist.
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
    model : keras.Model
        The model, compiled (fresh optimizer state).
    metrics : dict
        Its ``metrics.json``.

    Raises
    ------
    AstrokitError
        If the name or version is not registered.
    astrokit.exceptions.MissingExtraError
        If TensorFlow/Keras is not installed.
    """
    require("keras", "ml")
    version = _resolve(models_dir, name, version)
    path = Path(models_dir) / name / version
    model = _load_keras(path / "model.keras")
    metrics = json.loads((path / "metrics.json").read_text())
    return model, metrics


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
