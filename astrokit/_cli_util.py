"""Printing tables for the ``astrokit`` command: the one formatter every subcommand module uses.

It lives apart from ``astrokit.cli`` so that the topic modules that register
subcommands (``<package>/_cli.py``) never import the command back.
"""

import json
import math

__all__ = ["format_table"]


def _value(v):
    if isinstance(v, bytes):
        return f"<{len(v)} bytes>"
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def _units(table):
    """Return ``{column: unit}``: the field's ``unit`` metadata, else that column name's unit in the schema."""
    from astrokit.store.schema import TABLES

    known = {c.name: c.unit for columns in TABLES.values() for c in columns if c.unit}
    out = {}
    for field in table.schema:
        meta = field.metadata or {}
        unit = meta.get(b"unit", b"").decode() or known.get(field.name, "")
        if unit:
            out[field.name] = unit
    return out


def _float_text(v, single):
    """Full precision: the shortest text that reads back as the same float (float32 columns as float32)."""
    if single:
        import numpy as np

        return str(np.float32(v))
    return repr(v)


def format_table(table, fmt="table", *, max_width=40):
    """Format a `pyarrow.Table` as an aligned text table, CSV or JSON (NaN and Inf become null).

    In the text table floats are printed at full precision (the shortest text that
    reads back as the same value: coordinates and MJDs are never rounded), and
    each header carries its unit, ``ra [deg]``, from the field's ``unit``
    metadata or else from the column of that name in `astrokit.store.schema`.
    CSV and JSON keep the bare column names.

    Parameters
    ----------
    table : pyarrow.Table
        Rows to print.
    fmt : {'table', 'csv', 'json'}
        Output format.
    max_width : int
        Cells wider than this are cut in the text table (numbers never are).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If ``fmt`` is unknown.
    """
    rows = [{k: _value(v) for k, v in r.items()} for r in table.to_pylist()]
    names = table.column_names
    if fmt == "json":
        return json.dumps(rows, indent=1, default=str)
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
        writer.writeheader()
        writer.writerows([{k: "" if v is None else v for k, v in r.items()} for r in rows])
        return buf.getvalue().rstrip("\n")
    if fmt != "table":
        msg = f"unknown format {fmt!r}; choose table, csv or json"
        raise ValueError(msg)

    import pyarrow as pa

    single = {f.name for f in table.schema if pa.types.is_float32(f.type) or pa.types.is_float16(f.type)}

    def cell(v, name):
        if isinstance(v, float):
            return _float_text(v, name in single)
        text = "" if v is None else str(v)
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    units = _units(table)
    headers = [f"{n} [{units[n]}]" if n in units else n for n in names]
    cells = [[cell(r[n], n) for n in names] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)
