"""ZTF-style alert packets (Parquet or Avro, as brokers distribute them) -> the ``candidates`` table."""

import hashlib
import math
from numbers import Real
from pathlib import Path

import numpy as np

from astrokit.alerts._packets import ALERT_SUFFIXES, alert_files, read_alert_packets
from astrokit.exceptions import AstrokitError, DataError
from astrokit.io import cutout, decode_fits_stamp, encode_cutout

__all__ = ["ALERT_SUFFIXES", "ZTF_BANDS", "alert_files", "read_alert_packets", "read_alerts", "validate_alerts",
           "ingest_alerts"]

#: ZTF filter ids (candidate.fid) -> band.
ZTF_BANDS = {1: "g", 2: "r", 3: "i"}

_STAMPS = {"cutout_science": "cutoutScience", "cutout_reference": "cutoutTemplate",
           "cutout_difference": "cutoutDifference"}
_REQUIRED = ("objectId", "candid", "candidate", *_STAMPS.values())
_REQUIRED_CANDIDATE = ("jd", "ra", "dec")


def _where(path, i, packet):
    return f"{path}: packet {i} (candid {packet.get('candid')})"


def _stamp(packet, key, where, size):
    stamp = packet.get(key) or {}
    data = stamp.get("stampData") if isinstance(stamp, dict) else None
    if data is None:
        return None
    try:
        arr = decode_fits_stamp(data)
    except (OSError, ValueError, EOFError, TypeError) as exc:
        msg = f"{where}: unreadable {key} stamp ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        raise DataError(msg) from exc
    if arr.ndim != 2 or min(arr.shape) == 0:
        msg = f"{where}: {key} stamp has shape {arr.shape}, expected a 2D image"
        raise DataError(msg)
    if arr.shape != (size, size):  # stamps cut at a CCD edge are smaller: padded (larger ones cut), centred
        arr = cutout(arr, (arr.shape[1] - 1) / 2, (arr.shape[0] - 1) / 2, size)
    return encode_cutout(arr)


def _check(packet, where):
    """Raise DataError unless the packet has the fields a candidate row needs, with usable types."""
    if not isinstance(packet.get("candid"), int) or not isinstance(packet.get("objectId"), str):
        msg = f"{where}: candid must be an integer and objectId a string"
        raise DataError(msg)
    c = packet.get("candidate")
    if not isinstance(c, dict):
        msg = f"{where}: no candidate record"
        raise DataError(msg)
    bad = [k for k in _REQUIRED_CANDIDATE if not isinstance(c.get(k), Real) or not math.isfinite(c[k])]
    if bad:
        msg = f"{where}: candidate lacks a finite {', '.join(bad)}"
        raise DataError(msg)


def _row(packet, where, size):
    _check(packet, where)
    c = packet["candidate"]
    zp = c.get("magzpsci")
    mag, mag_err = c.get("magpsf"), c.get("sigmapsf")
    flux = 10 ** (-0.4 * (mag - zp)) if zp is not None and mag is not None else None
    flux_err = flux * mag_err * np.log(10) / 2.5 if flux is not None and mag_err is not None else None
    row = {
        "candidate_id": f"alert-{packet['candid']}", "difference_id": None, "alert_id": packet["candid"],
        "object_id": packet["objectId"], "x": c.get("xpos"), "y": c.get("ypos"), "ra": c["ra"],
        "dec": c["dec"], "mjd": c["jd"] - 2400000.5, "band": ZTF_BANDS.get(c.get("fid")),
        "s_corr": c.get("scorr"), "flux": flux, "flux_err": flux_err, "mag": mag, "mag_err": mag_err,
        "is_positive": str(c.get("isdiffpos")).lower() in ("t", "1", "true"), "flags": 0, "origin": "alert",
        "survey_rb": c.get("rb"), "survey_drb": c.get("drb"),
    }
    for col, key in _STAMPS.items():
        row[col] = _stamp(packet, key, where, size)
    return row


def read_alerts(path, *, size=63):
    """Read and check the ZTF alert packets of one file into ``candidates`` rows.

    Every packet is checked: it must have ``objectId``, an integer ``candid``,
    a ``candidate`` record with finite ``jd, ra, dec``, and the three cutout
    fields, whose stamps (when not null) must decode as 2D FITS images.

    Parameters
    ----------
    path : path-like
        Alert file: Parquet, an Avro container of one or more packets (ZTF
        alert schema 3.x/4.x: ``objectId, candid, candidate{...},
        cutoutScience{fileName, stampData}``...), or a tar archive of them.
    size : int
        Stamp size (pixels); smaller stamps (at a CCD edge) are NaN-padded, centred.

    Returns
    -------
    list of dict
        One ``candidates`` row per packet with ``origin='alert'``,
        ``alert_id`` = candid, ``candidate_id`` = ``alert-<candid>``,
        ``mjd`` = jd - 2400000.5 (d), ``mag, mag_err`` = magpsf, sigmapsf
        (mag), ``flux, flux_err`` in ADU of the difference image from magpsf
        and magzpsci, ``s_corr`` = scorr, ``survey_rb, survey_drb`` = rb, drb,
        and the three stamps as ``.npy`` bytes (float32, ``size x size``).

    Raises
    ------
    DataError
        If the file cannot be read as alerts or a packet fails the checks; the
        one-line message names the file, and the packet (index and candid).

    References
    ----------
    .. [1] Masci et al. 2019, PASP 131, 018003 (ZTF science data system, alert contents).
    """
    path = Path(path)
    return [_row(p, _where(path, i, p), size) for i, p in enumerate(read_alert_packets(path, list(_REQUIRED)))]


def validate_alerts(paths, *, size=63):
    """Read and check every packet of every alert file; nothing is written.

    Parameters
    ----------
    paths : list of path-like
        Alert files and folders (see `alert_files`).
    size : int
        Stamp size (pixels).

    Returns
    -------
    dict
        `pathlib.Path` of each file -> its ``candidates`` rows conformed to the
        schema (a `pyarrow.Table`), in the order given.

    Raises
    ------
    DataError
        At the first file or packet that cannot be read (see `read_alerts`).
    """
    from astrokit.store.schema import conform

    tables = {}
    for path in alert_files(paths):
        rows = list({r["candidate_id"]: r for r in read_alerts(path, size=size)}.values())  # one row per candid
        try:
            tables[path] = conform("candidates", rows)
        except (AstrokitError, TypeError, ValueError, OverflowError) as exc:  # e.g. a string where a number goes
            msg = f"{path}: alert values do not fit the candidates table ({str(exc).splitlines()[0]})"
            raise DataError(msg) from exc
    return tables


def _key(table):
    """Store key of one file's alerts: a digest of its candids, so the same packets always land in the same file."""
    ids = sorted(table.column("alert_id").to_pylist())
    return "alerts-" + hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:16]


def ingest_alerts(paths, store, *, size=63, lock=False):
    """Ingest alert files into the store's ``candidates`` table, all or nothing.

    Every packet of every file is read and checked first (`validate_alerts`);
    only then is anything written, one Parquet file per alert file. Rows are
    keyed by ``candidate_id`` (``alert-<candid>``): ingesting the same packets
    again, from the same file or from the same packets in another format,
    replaces them instead of duplicating them.
    With ``lock``, the store's run lock is held while writing (``astrokit
    alerts ingest``); a pipeline run holds it already, so its stage does not.

    Parameters
    ----------
    paths : list of path-like
        Alert files (Parquet, Avro, tar of Avro) and folders of them.
    store : astrokit.store.Store
        Destination.
    size : int
        Stamp size (pixels).
    lock : bool
        Hold the store's run lock (`astrokit.store.Store.lock`) while writing.

    Returns
    -------
    int
        Number of alert candidates written.

    Raises
    ------
    DataError
        If a file or packet cannot be read as alerts (nothing is written then).
    AstrokitError
        With ``lock``, if another process (a pipeline run) holds the store's lock.
    """
    import contextlib

    tables = validate_alerts(paths, size=size)
    with store.lock() if lock else contextlib.nullcontext():
        for table in tables.values():
            if table.num_rows:
                store.upsert("candidates", table, on="candidate_id", key=_key(table))
    return sum(t.num_rows for t in tables.values())
