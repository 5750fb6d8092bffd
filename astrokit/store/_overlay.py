"""Columns owned by later stages, joined into the table they describe (`astrokit.store.schema.OVERLAYS`).

``candidates`` is written by the stages that find candidates (difference,
alerts). The objects stage owns object membership (``candidate_objects``) and
the link stage the streak bit (``candidate_flags``). Each is written by its
stage alone, and readers see one candidate row as before: `overlay_sql` joins
them, for DuckDB views (`Store.connect`, ``astrokit.duckdb``) and for
`Store.read`. So a rerun of the difference stage never erases what the later
stages wrote.
"""

from astrokit.store.schema import OVERLAYS

__all__ = ["base_name", "overlay_sql", "overlay_tables"]


def base_name(table):
    """Return the name of the view over ``table``'s own files, under the joined view named ``table``."""
    return f"{table}__files"


def overlay_tables(table):
    """Return the tables whose columns are joined into ``table`` (empty for most tables).

    Parameters
    ----------
    table : str
        Table name.

    Returns
    -------
    list of str
    """
    spec = OVERLAYS.get(table)
    return sorted({ov for ov, _ in spec["columns"].values()}) if spec else []


def overlay_sql(table, base, *, order_by=None, only=None):
    """Return a SELECT of ``base`` (a relation with ``table``'s columns) with the overlaid columns joined in.

    Parameters
    ----------
    table : str
        A table of `OVERLAYS`.
    base : str
        The relation holding the table's own rows (a view or a registered Arrow table).
    order_by : str, optional
        A column of ``base`` to keep its row order by.
    only : list of str, optional
        Join only these overlaid columns (those ``base`` has); default all.

    Returns
    -------
    str
        SQL; the overlay tables are referred to by their names.
    """
    spec = OVERLAYS[table]
    key = spec["key"]
    replaced, joins = [], []
    for i, (column, (source, how)) in enumerate(spec["columns"].items()):
        if only is not None and column not in only:
            continue
        alias = f"o{i}"
        if how == "replace":
            joins.append(f"LEFT JOIN (SELECT {key}, any_value({column}) AS {column} FROM {source} "
                         f"WHERE {column} IS NOT NULL GROUP BY {key}) {alias} USING ({key})")
            replaced.append(f"coalesce({alias}.{column}, b.{column}) AS {column}")
        else:  # "or": bits set by the later stage, OR-ed into the table's own
            joins.append(f"LEFT JOIN (SELECT {key}, bit_or({column}) AS {column} FROM {source} GROUP BY {key}) "
                         f"{alias} USING ({key})")
            replaced.append(f"CASE WHEN {alias}.{column} IS NULL THEN b.{column} "
                            f"ELSE CAST(coalesce(b.{column}, 0) | {alias}.{column} AS INTEGER) END AS {column}")
    order = f" ORDER BY b.{order_by}" if order_by else ""
    return f"SELECT b.* REPLACE ({', '.join(replaced)}) FROM {base} b {' '.join(joins)}{order}"
