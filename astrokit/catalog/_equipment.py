"""The user-editable equipment configuration (filters, telescopes, cameras, site, calibration tolerances)."""

import copy
import os
import tomllib
from pathlib import Path

from astrokit.exceptions import AstrokitError

__all__ = ["DEFAULT_EQUIPMENT_FILE", "load_equipment"]

#: The documented default configuration shipped with astrokit (copy it to change it).
DEFAULT_EQUIPMENT_FILE = Path(__file__).with_name("equipment.toml")


def _merge(base, extra):
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


def _read(path):
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        msg = f"equipment file {path} does not exist (copy {DEFAULT_EQUIPMENT_FILE} and edit it)"
        raise AstrokitError(msg) from None
    except tomllib.TOMLDecodeError as exc:
        msg = f"equipment file {path} is not valid TOML: {exc}"
        raise AstrokitError(msg) from None


_DEFAULT_CACHE = {}


def load_equipment(equipment=None):
    """Return the equipment configuration: the shipped `DEFAULT_EQUIPMENT_FILE` merged with the user's.

    Parameters
    ----------
    equipment : path-like or dict, optional
        The user's TOML file, or an already-loaded dict, merged over the
        default; default ``$ASTROKIT_EQUIPMENT`` when set, else only the default.

    Returns
    -------
    dict
        Sections ``site`` (``longitude`` in degrees east, optional
        ``utc_offset_hours``), ``filters``, ``telescopes`` and ``cameras``
        (header value -> name, keys lower-cased) and ``calibration`` (tolerances:
        ``dark_exptime_tolerance_s`` in s, ``dark_temp_tolerance_c`` in deg C,
        ``dark_max_days``, ``flat_max_days``, ``bias_max_days`` in days).

    Raises
    ------
    AstrokitError
        If the file does not exist or is not valid TOML.
    """
    if "default" not in _DEFAULT_CACHE:
        _DEFAULT_CACHE["default"] = _read(DEFAULT_EQUIPMENT_FILE)
    config = copy.deepcopy(_DEFAULT_CACHE["default"])
    if equipment is None and os.environ.get("ASTROKIT_EQUIPMENT"):
        equipment = os.environ["ASTROKIT_EQUIPMENT"]
    if equipment is not None:
        _merge(config, equipment if isinstance(equipment, dict) else _read(Path(equipment).expanduser()))
    for section in ("filters", "telescopes", "cameras"):
        config[section] = {str(k).strip().lower(): v for k, v in config.get(section, {}).items()}
    config.setdefault("site", {})
    config.setdefault("calibration", {})
    return config
