"""Write tables to JSON (NaN and Inf as null), CSV, FITS and Parquet."""

import json
import math
from pathlib import Path

import numpy as np

__all__ = ["EXPORT_FORMATS", "table_to_json", "write_table"]

#: Formats accepted by `write_table`.
EXPORT_FORMATS = ("json", "csv", "fits", "parquet")


def _plain(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is np.ma.masked:
        return None
    return value


def _columns(table):
    """Return ``{name: (values ndarray, unit str)}`` for an astropy Table or QTable (units stripped)."""
    out = {}
    for name in table.colnames:
        col = table[name]
        unit = getattr(col, "unit", None)
        values = np.asarray(getattr(col, "value", col))
        if isinstance(col, np.ma.MaskedArray) and np.ma.is_masked(col):
            values = np.ma.filled(col.astype(object) if values.dtype.kind not in "fc" else col, np.nan)
        out[name] = (values, "" if unit is None else str(unit))
    return out


def table_to_json(table, *, indent=None):
    """Serialise a table as a JSON list of row objects; NaN, Inf and masked values become ``null``.

    Parameters
    ----------
    table : astropy.table.Table or QTable
        The rows (units are dropped; they are in the column descriptions).
    indent : int, optional
        Indentation of the JSON text.

    Returns
    -------
    str
        Strict JSON (``json.loads`` with ``parse_constant`` never sees NaN).
    """
    cols = _columns(table)
    names = list(cols)
    rows = [{n: _plain(cols[n][0][i]) for n in names} for i in range(len(table))]
    return json.dumps(rows, indent=indent, allow_nan=False)


def write_table(table, path, *, fmt=None, overwrite=True):
    """Write a table to ``path`` as JSON, CSV, a FITS binary table or Parquet.

    JSON writes NaN and Inf as ``null``; CSV writes them as empty cells; FITS
    and Parquet keep NaN (their readers understand it) and the column units
    (FITS TUNITn, Parquet field metadata ``unit``).

    Parameters
    ----------
    table : astropy.table.Table or QTable
        The rows.
    path : path-like or '-'
        Output file; ``'-'`` prints JSON or CSV to standard output.
    fmt : {'json', 'csv', 'fits', 'parquet'}, optional
        Format; default from the file suffix (``.json``, ``.csv``, ``.fits``/``.fit``, ``.parquet``/``.pq``).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    pathlib.Path or None
        The file written (None for standard output).

    Raises
    ------
    ValueError
        If the format is unknown, cannot be guessed from the suffix, or is
        binary (FITS, Parquet) and ``path`` is ``'-'``.
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    to_stdout = str(path) == "-"
    if fmt is None:
        suffix = "" if to_stdout else Path(path).suffix.lower()
        fmt = {".json": "json", ".csv": "csv", ".fits": "fits", ".fit": "fits", ".parquet": "parquet",
               ".pq": "parquet"}.get(suffix)
        if fmt is None:
            msg = f"cannot tell the format of {path!s}; give fmt= one of {list(EXPORT_FORMATS)} or a known suffix"
            raise ValueError(msg)
    if fmt not in EXPORT_FORMATS:
        msg = f"unknown export format {fmt!r}; choose one of {list(EXPORT_FORMATS)}"
        raise ValueError(msg)
    if to_stdout:
        if fmt in ("fits", "parquet"):
            msg = f"{fmt} is binary: give an output file (-o FILE), not standard output"
            raise ValueError(msg)
        print(table_to_json(table, indent=1) if fmt == "json" else _csv(table))
        return None
    path = Path(path)
    if path.exists() and not overwrite:
        msg = f"{path} exists; pass overwrite=True or choose another name"
        raise FileExistsError(msg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "json":
        tmp.write_text(table_to_json(table, indent=1) + "\n")
    elif fmt == "csv":
        tmp.write_text(_csv(table) + "\n")
    elif fmt == "fits":
        _fits(table).writeto(tmp, overwrite=True)
    else:
        import pyarrow.parquet as pq

        pq.write_table(_arrow(table), tmp)
    tmp.replace(path)
    return path


def _csv(table):
    import csv
    import io

    cols = _columns(table)
    names = list(cols)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(names)
    for i in range(len(table)):
        row = []
        for n in names:
            v = _plain(cols[n][0][i])
            row.append("" if v is None else (repr(v) if isinstance(v, float) else v))
        writer.writerow(row)
    return buf.getvalue().rstrip("\n")


def _fits(table):
    from astropy.io import fits

    fcols = []
    for name, (values, unit) in _columns(table).items():
        if values.dtype.kind in "iub":
            fmt = {1: "B", 2: "I", 4: "J", 8: "K"}.get(values.dtype.itemsize, "K") if values.dtype.kind != "b" else "L"
            if values.dtype.kind == "u" and values.dtype.itemsize > 1:
                values, fmt = values.astype(np.int64), "K"
        elif values.dtype.kind == "f":
            fmt = "E" if values.dtype.itemsize == 4 else "D"
        else:
            values = np.asarray([str(_plain(v)) for v in values])
            fmt = f"{max(1, max((len(v) for v in values), default=1))}A"
        fcols.append(fits.Column(name=name, format=fmt, array=values, unit=unit or None))
    hdu = fits.BinTableHDU.from_columns(fcols)
    for key, value in getattr(table, "meta", {}).items():
        v = _plain(value)
        if isinstance(v, (int, float, str, bool)):
            hdu.header[str(key).upper() if len(str(key)) <= 8 else f"HIERARCH {key}"] = v
    return fits.HDUList([fits.PrimaryHDU(), hdu])


def _arrow(table):
    import pyarrow as pa

    arrays, fields = [], []
    for name, (values, unit) in _columns(table).items():
        arr = pa.array(values if values.dtype.kind != "O" else [_plain(v) for v in values])
        arrays.append(arr)
        fields.append(pa.field(name, arr.type, metadata={"unit": unit} if unit else None))
    meta = {k: json.dumps(_plain(v)) for k, v in getattr(table, "meta", {}).items()
            if isinstance(_plain(v), (int, float, str, bool, type(None)))}
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata={"astrokit": json.dumps(meta)}))
