"""Reading ZTF-style alert packets as brokers distribute them: Parquet, Avro containers, tar archives of Avro.

The packet layout is the ZTF alert schema (3.x, 4.x): ``objectId, candid,
candidate{...}, prv_candidates[...], cutoutScience{fileName, stampData}, ...``.
ZTF's Kafka stream and its public archive (``ztf_public_YYYYMMDD.tar.gz``) carry
Avro; brokers such as Fink also distribute the same packets flattened to Parquet.
"""

import io
import tarfile
from pathlib import Path

from astrokit.exceptions import DataError

__all__ = ["ALERT_SUFFIXES", "alert_files", "read_alert_packets"]

#: File name endings of alert files looked for in folders.
ALERT_SUFFIXES = (".avro", ".parquet", ".parq", ".tar", ".tar.gz", ".tgz")

_PARQUET_MAGIC = b"PAR1"
_AVRO_MAGIC = b"Obj\x01"


def alert_files(paths):
    """Expand files and folders (searched recursively for `ALERT_SUFFIXES`) into a sorted list of alert files.

    Parameters
    ----------
    paths : list of path-like
        Alert files and folders.

    Returns
    -------
    list of pathlib.Path
        Each file once, in the order given (folder contents sorted).

    Raises
    ------
    DataError
        If a path does not exist, or a folder holds no alert file.
    """
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.lower().endswith(ALERT_SUFFIXES))
            if not found:
                msg = f"{p}: no alert files ({', '.join(ALERT_SUFFIXES)}) in this folder"
                raise DataError(msg)
            out += found
        elif p.is_file():
            out.append(p)
        else:
            msg = f"{p}: no such alert file or folder"
            raise DataError(msg)
    return list(dict.fromkeys(out))


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _parquet(fh, columns, name):
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(fh)
    names = pf.schema_arrow.names
    missing = [c for c in columns or () if c not in names]
    if missing:
        msg = f"{name}: missing alert columns {missing} (it has {', '.join(names[:12])})"
        raise DataError(msg)
    return pf.read(columns=list(columns) if columns else None).to_pylist()


def _avro(fh, columns, name):
    import fastavro

    packets = []
    try:
        for i, record in enumerate(fastavro.reader(fh)):
            missing = [c for c in columns or () if c not in record]
            if missing:
                msg = f"{name}: packet {i} (candid {record.get('candid')}): missing alert fields {missing}"
                raise DataError(msg)
            packets.append({c: record[c] for c in columns} if columns else record)
    except (EOFError, ValueError, StopIteration) as exc:  # a truncated or damaged block
        if isinstance(exc, DataError) or not packets:
            raise
        msg = (f"{name}: not a readable file of alert packets (damaged or truncated after packet "
               f"{len(packets) - 1}: {_first_line(exc)})")
        raise DataError(msg) from exc
    return packets


def _read(fh, columns, name):
    head = fh.read(4)
    fh.seek(0)
    if head == _PARQUET_MAGIC:
        return _parquet(fh, columns, name)
    if head == _AVRO_MAGIC:
        return _avro(fh, columns, name)
    msg = f"{name}: neither Parquet nor an Avro container nor a tar archive (starts with {head!r})"
    raise DataError(msg)


def read_alert_packets(path, columns=None):
    r"""Read the alert packets of one file (Parquet, Avro, or a tar archive of Avro files), one dict per packet.

    The format is recognised from the file's first bytes (``PAR1``, ``Obj\x01``,
    or a tar header, gzipped or not), not from its name.

    Parameters
    ----------
    path : path-like
        Alert file.
    columns : list of str, optional
        Top-level packet fields to keep (e.g. ``objectId``, ``candidate``,
        ``prv_candidates``); every one must be present. Default: all.

    Returns
    -------
    list of dict
        One dict per packet (nested records as dicts, ``prv_candidates`` as a
        list, stamps as ``{fileName, stampData}`` with the gzipped FITS bytes).

    Raises
    ------
    DataError
        If the file is not a readable Parquet or Avro file of alert packets
        (truncated, corrupt) or lacks one of the columns; the one-line message
        names the file, the archive member, and the packet where known.

    References
    ----------
    .. [1] Masci et al. 2019, PASP 131, 018003 (ZTF science data system, alert contents).
    .. [2] ZTF alert schema, https://github.com/ZwickyTransientFacility/ztf-avro-alert
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            if fh.read(4) not in (_PARQUET_MAGIC, _AVRO_MAGIC) and tarfile.is_tarfile(path):
                return _read_tar(path, columns)
            fh.seek(0)
            return _read(fh, columns, path)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow and fastavro raise many types for bad files
        msg = f"{path}: not a readable file of alert packets ({_first_line(exc)})"
        raise DataError(msg) from exc


def _read_tar(path, columns):
    packets = []
    with tarfile.open(path) as tar:
        for member in tar:
            if not member.isfile() or not member.name.lower().endswith((".avro", ".parquet", ".parq")):
                continue
            name = f"{path}:{member.name}"
            try:
                packets += _read(io.BytesIO(tar.extractfile(member).read()), columns, name)
            except DataError:
                raise
            except Exception as exc:  # noqa: BLE001
                msg = f"{name}: not a readable file of alert packets ({_first_line(exc)})"
                raise DataError(msg) from exc
    return packets
