"""ZTF-style alert packets (Parquet, as distributed by brokers) -> the ``candidates`` table."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from astrokit.datasets import sha256_file
from astrokit.exceptions import DataError
from astrokit.io import cutout, decode_fits_stamp, encode_cutout

__all__ = ["ZTF_BANDS", "read_alert_packets", "read_alerts", "ingest_alerts"]

#: ZTF filter ids (candidate.fid) -> band.
ZTF_BANDS = {1: "g", 2: "r", 3: "i"}

_STAMPS = {"cutout_science": "cutoutScience", "cutout_reference": "cutoutTemplate",
           "cutout_difference": "cutoutDifference"}


def read_alert_packets(path, columns):
    """Read columns of a Parquet file of ZTF-style alert packets, one dict per packet.

    Parameters
    ----------
    path : path-like
        Parquet file of alert packets.
    columns : list of str
        Top-level packet fields to read (e.g. ``objectId``, ``candidate``, ``prv_candidates``).

    Returns
    -------
    list of dict

    Raises
    ------
    DataError
        If the file is not Parquet or lacks one of the columns (the message names the file).

    References
    ----------
    .. [1] Masci et al. 2019, PASP 131, 018003 (ZTF science data system, alert contents).
    """
    path = Path(path)
    try:
        return pq.read_table(path, columns=list(columns)).to_pylist()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for bad files
        msg = f"{path}: not a Parquet file of alert packets ({str(exc).splitlines()[0]})"
        raise DataError(msg) from exc


def _stamp(packet, key, path, size):
    stamp = packet.get(key) or {}
    data = stamp.get("stampData")
    if data is None:
        return None
    try:
        arr = decode_fits_stamp(data)
    except (OSError, ValueError) as exc:
        msg = f"{path}: alert {packet.get('candid')}: unreadable {key} stamp ({exc})"
        raise DataError(msg) from exc
    if arr.shape != (size, size):  # stamps cut at a CCD edge are smaller: pad, centred
        arr = cutout(arr, (arr.shape[1] - 1) / 2, (arr.shape[0] - 1) / 2, size)
    return encode_cutout(arr)


def read_alerts(path, *, size=63):
    """Read ZTF alert packets from a Parquet file into ``candidates`` rows.

    Parameters
    ----------
    path : path-like
        Parquet file of alert packets (ZTF avro schema 3.x flattened by the
        broker: ``objectId, candid, candidate{...}, cutoutScience{stampData}``...).
    size : int
        Stamp size; smaller stamps (at a CCD edge) are NaN-padded.

    Returns
    -------
    list of dict
        One ``candidates`` row per packet with ``origin='alert'``,
        ``alert_id`` = candid, ``mjd`` = jd - 2400000.5, ``mag, mag_err`` =
        magpsf, sigmapsf, ``flux, flux_err`` in ADU of the difference image
        from magpsf and magzpsci, ``s_corr`` = scorr, ``survey_rb, survey_drb``
        = rb, drb, and the three stamps as ``.npy`` bytes.

    Raises
    ------
    DataError
        If the file is not Parquet or lacks the alert columns.

    References
    ----------
    .. [1] Masci et al. 2019, PASP 131, 018003 (ZTF science data system, alert contents).
    """
    path = Path(path)
    rows = []
    for packet in read_alert_packets(path, ["objectId", "candid", "candidate", *_STAMPS.values()]):
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
            row[col] = _stamp(packet, key, path, size)
        rows.append(row)
    return rows


def ingest_alerts(paths, store):
    """Ingest alert files into the store's ``candidates`` table (one unit per file: a rerun replaces it).

    Parameters
    ----------
    paths : list of path-like
        Parquet files of alert packets.
    store : astrokit.store.Store
        Destination.

    Returns
    -------
    int
        Number of alert candidates written.

    Raises
    ------
    DataError
        If a file cannot be read as alerts (see `read_alerts`).
    """
    n = 0
    for path in paths:
        rows = read_alerts(path)
        store.write("candidates", rows, key=f"alerts-{sha256_file(path)[:16]}")
        n += len(rows)
    return n
