"""Known solar-system objects in ZTF alert packets (``ssnamenr``) and what the packets say about their motion."""

import numpy as np
from astropy.table import Table

from astrokit.alerts import read_alert_packets
from astrokit.exceptions import DataError

__all__ = ["alert_history", "solar_system_alerts"]

_NULL = (None, "", "null", "None")


def solar_system_alerts(path):
    """Find the alerts whose candidate ZTF matched to a known solar-system object (``ssnamenr`` set).

    ZTF's pipeline matches every candidate to the predicted positions of the known asteroids and
    comets at the exposure time; ``ssnamenr`` is the nearest one within 30 arcsec, ``ssdistnr`` its
    distance and ``ssmagnr`` its predicted V magnitude [1]_. The motion is measured when the packet holds
    at least two detections of the object (the alert and ``prv_candidates`` with positions): a
    straight-line fit on the tangent plane (`astrokit.linking.fit_linear_motion`).

    Parameters
    ----------
    path : path-like
        Parquet file of alert packets (``objectId``, ``candidate``, ``prv_candidates``).

    Returns
    -------
    `~astropy.table.Table`
        One row per such alert: ``object_id``, ``candid``, ``ssnamenr``, ``ssdistnr`` (arcsec),
        ``ssmagnr`` (mag), ``magpsf``, ``sigmapsf`` (mag), ``mag_offset`` (``magpsf - ssmagnr``: near 0
        when the detection is the asteroid, several mag brighter when it is a star or galaxy that the
        asteroid passes), ``mjd``, ``ra``, ``dec`` (deg), ``band``, ``elong`` (aimage / bimage),
        ``n_previous`` (earlier alerts and limits in the packet), ``n_detections`` (detections with a
        position, this one included), ``rate`` (arcsec/h) and ``position_angle`` (deg east of north),
        NaN with fewer than two detections.

    Raises
    ------
    DataError
        If the file is not a Parquet file of alert packets.

    References
    ----------
    .. [1] Masci et al. 2019, PASP 131, 018003 (ZTF science data system, alert contents).
    """
    from astrokit.alerts import ZTF_BANDS
    from astrokit.linking._core import fit_linear_motion, tangent_plane

    rows = []
    for p in read_alert_packets(path, ["objectId", "candid", "candidate", "prv_candidates"]):
        c = p["candidate"]
        if str(c.get("ssnamenr")) in _NULL:
            continue
        prv = p.get("prv_candidates") or []
        det = [(q["jd"], q["ra"], q["dec"]) for q in prv if q.get("ra") is not None and q.get("magpsf") is not None]
        det.append((c["jd"], c["ra"], c["dec"]))
        rate = pa = np.nan
        if len({d[0] for d in det}) >= 2:
            jd, ra, dec = (np.array(v, dtype=float) for v in zip(*det, strict=True))
            xi, eta = tangent_plane(ra, dec, ra[-1], dec[-1])
            fit = fit_linear_motion((jd - jd[-1]) * 24.0, xi, eta, np.full(len(jd), 0.1))
            rate = float(np.hypot(fit["vx"], fit["vy"]))
            pa = float(np.degrees(np.arctan2(fit["vx"], fit["vy"])) % 360.0)
        bimage = c.get("bimage") or np.nan
        rows.append({
            "object_id": p["objectId"], "candid": p["candid"], "ssnamenr": str(c["ssnamenr"]),
            "ssdistnr": c.get("ssdistnr"), "ssmagnr": c.get("ssmagnr"), "magpsf": c.get("magpsf"),
            "sigmapsf": c.get("sigmapsf"), "mag_offset": (c.get("magpsf") or np.nan) - (c.get("ssmagnr") or np.nan),
            "mjd": c["jd"] - 2400000.5, "ra": c["ra"], "dec": c["dec"], "band": ZTF_BANDS.get(c.get("fid")),
            "elong": (c.get("aimage") or np.nan) / bimage, "n_previous": len(prv), "n_detections": len(det),
            "rate": rate, "position_angle": pa,
        })
    names = ("object_id", "candid", "ssnamenr", "ssdistnr", "ssmagnr", "magpsf", "sigmapsf", "mag_offset", "mjd",
             "ra", "dec", "band", "elong", "n_previous", "n_detections", "rate", "position_angle")
    table = Table(rows=[[r[n] for n in names] for r in rows] if rows else None, names=names,
                  dtype=[str, np.int64, str] + [float] * 8 + [str, float, np.int64, np.int64, float, float])
    for name, unit in (("ssdistnr", "arcsec"), ("ssmagnr", "mag"), ("magpsf", "mag"), ("sigmapsf", "mag"),
                       ("mag_offset", "mag"), ("mjd", "d"), ("ra", "deg"), ("dec", "deg"),
                       ("rate", "arcsec / h"), ("position_angle", "deg")):
        table[name].unit = unit
    return table


def alert_history(path, object_id):
    """List the earlier epochs of one alert's object as the packet holds them: detections and limits.

    Parameters
    ----------
    path : path-like
        Parquet file of alert packets.
    object_id : str
        The ZTF ``objectId``.

    Returns
    -------
    `~astropy.table.Table`
        One row per epoch, by time, the alert itself last: ``mjd``, ``band``, ``detected`` (bool),
        ``mag`` (magpsf of a detection, else the 5-sigma limit ``diffmaglim``, mag), ``ra``, ``dec``
        (deg, NaN for a limit).

    Raises
    ------
    DataError
        If the file is not a Parquet file of alert packets, or holds no alert of ``object_id``.
    """
    from astrokit.alerts import ZTF_BANDS

    packets = [p for p in read_alert_packets(path, ["objectId", "candidate", "prv_candidates"])
               if p["objectId"] == object_id]
    if not packets:
        msg = f"{path}: no alert of object {object_id!r}"
        raise DataError(msg)
    epochs = {}
    for p in packets:
        for q in [*(p.get("prv_candidates") or []), p["candidate"]]:
            detected = q.get("magpsf") is not None
            epochs[q["jd"]] = (q["jd"] - 2400000.5, ZTF_BANDS.get(q.get("fid")), detected,
                               q.get("magpsf") if detected else q.get("diffmaglim"),
                               q.get("ra") if detected else np.nan, q.get("dec") if detected else np.nan)
    rows = [epochs[k] for k in sorted(epochs)]
    table = Table(rows=rows, names=("mjd", "band", "detected", "mag", "ra", "dec"),
                  dtype=(float, str, bool, float, float, float))
    for name, unit in (("mjd", "d"), ("mag", "mag"), ("ra", "deg"), ("dec", "deg")):
        table[name].unit = unit
    return table
