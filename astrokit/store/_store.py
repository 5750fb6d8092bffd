"""The Parquet store: one folder per table, atomic writes, DuckDB views, content-addressed artifacts."""

import hashlib
import os
import re
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from astrokit.exceptions import AstrokitError
from astrokit.store.schema import TABLES, arrow_schema, conform

__all__ = ["Store", "default_store_path", "atomic_write_bytes"]

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=-]{0,200}$")


def default_store_path():
    """Return the default store: ``$ASTROKIT_STORE`` if set, else ``./astrokit-data``."""
    return Path(os.environ.get("ASTROKIT_STORE") or "astrokit-data")


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` atomically (temporary name in the same folder, then rename).

    Readers never see a half-written file: either the old content or the new one.

    Parameters
    ----------
    path : path-like
        Destination.
    data : bytes
        Content.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


class Store:
    """An astrokit store: Parquet tables, artifacts, executed notebooks and models under one folder.

    Layout (ARCHITECTURE.md)::

        <root>/tables/<table>/<key>.parquet   one file per unit of work (difference, ...) via `write`,
                                              or per batch of units (ingest: many FITS files) via `upsert`
        <root>/artifacts/sha256/xx/<hash>.<ext>
        <root>/runs/<run_id>/<stage>.ipynb
        <root>/models/<name>/<version>/
        <root>/astrokit.duckdb                views over tables/ (rebuilt by `refresh_views`)

    Parameters
    ----------
    root : path-like, optional
        Store folder; default `default_store_path`. ``s3://`` stores come with the storage issue.

    Raises
    ------
    AstrokitError
        If ``root`` is an ``s3://`` URI (not supported yet) or exists and is not a folder.
    """

    def __init__(self, root=None):
        root = default_store_path() if root is None else root
        if str(root).startswith("s3://"):
            msg = f"store {root}: s3:// stores are not supported yet; use a local folder"
            raise AstrokitError(msg)
        self.root = Path(root).expanduser().resolve()
        if self.root.exists() and not self.root.is_dir():
            msg = f"store {self.root} exists and is not a folder"
            raise AstrokitError(msg)

    def __repr__(self):
        return f"Store({str(self.root)!r})"

    # -- layout -------------------------------------------------------------------------------
    @property
    def tables_dir(self):
        """Folder of the Parquet tables."""
        return self.root / "tables"

    @property
    def artifacts_dir(self):
        """Folder of the content-addressed artifacts."""
        return self.root / "artifacts"

    @property
    def runs_dir(self):
        """Folder of the executed notebooks."""
        return self.root / "runs"

    @property
    def models_dir(self):
        """Folder of the model registry."""
        return self.root / "models"

    def table_dir(self, table):
        """Folder of one table (created with a zero-row schema file so views always resolve)."""
        if table not in TABLES:
            msg = f"unknown table {table!r}; the tables are {sorted(TABLES)}"
            raise AstrokitError(msg)
        path = self.tables_dir / table
        schema_file = path / "_schema.parquet"
        if not schema_file.exists():
            path.mkdir(parents=True, exist_ok=True)
            sink = pa.BufferOutputStream()
            pq.write_table(arrow_schema(table).empty_table(), sink)
            atomic_write_bytes(schema_file, sink.getvalue().to_pybytes())
        return path

    # -- writing ------------------------------------------------------------------------------
    def write(self, table, data, *, key):
        """Write the rows of one unit of work, replacing what that unit wrote before.

        Parameters
        ----------
        table : str
            Table name.
        data : pyarrow.Table, pandas.DataFrame or list of dict
            Rows, conformed to the schema with `astrokit.store.schema.conform`.
        key : str
            The unit of work (an exposure_id, a difference_id, ...): the file
            ``tables/<table>/<key>.parquet`` is replaced atomically, so a rerun
            is idempotent.

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        AstrokitError
            If the key is not a safe file name or the rows do not fit the schema.
        """
        if not _KEY.match(str(key)):
            msg = f"key {key!r} for table {table!r} must match {_KEY.pattern}"
            raise AstrokitError(msg)
        rows = conform(table, data)
        sink = pa.BufferOutputStream()
        pq.write_table(rows, sink, compression="zstd")
        return atomic_write_bytes(self.table_dir(table) / f"{key}.parquet", sink.getvalue().to_pybytes())

    def append(self, table, data):
        """Append rows as a new file (used by the append-only ``labels`` and ``runs`` tables)."""
        return self.write(table, data, key=f"{uuid.uuid4().hex}")

    def upsert(self, table, data, *, on, key=None):
        """Write rows as one batch file, replacing every earlier row with the same ``on`` value.

        This is the many-units-per-file counterpart of `write`: ingest writes
        the rows of a whole batch of files in one Parquet file (``on="path"``)
        instead of one tiny file per FITS file. The new batch is written first
        (atomically), then the older files that held rows with the same
        ``on`` values are rewritten without them (atomically, or removed when
        nothing is left), so a reader or a crash sees at worst a duplicate,
        never a missing row. Earlier per-unit files written by `write` are
        cleaned the same way.

        Parameters
        ----------
        table : str
            Table name.
        data : pyarrow.Table, pandas.DataFrame or list of dict
            Rows, conformed to the schema.
        on : str
            Column whose values identify the rows a batch replaces (e.g. ``"path"``).
        key : str, optional
            File name of the batch; default ``batch-<UTC time>-<random>``.

        Returns
        -------
        pathlib.Path or None
            The batch file written; None when ``data`` has no rows (nothing changes).

        Raises
        ------
        AstrokitError
            If the key is not a safe file name or the rows do not fit the schema.
        """
        import pyarrow.compute as pc

        rows = conform(table, data)
        if rows.num_rows == 0:
            return None
        if key is None:
            from datetime import datetime, timezone

            key = f"batch-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
        out = self.write(table, rows, key=key)
        values = pc.unique(rows.column(on))
        for path in self._data_files(table):
            if path == out:
                continue
            old = pq.read_table(path, columns=[on])
            hit = pc.is_in(old.column(on), value_set=values)
            if not pc.any(hit).as_py():
                continue
            full = pq.read_table(path, schema=arrow_schema(table))
            keep = full.filter(pc.invert(pc.is_in(full.column(on), value_set=values)))
            if keep.num_rows == 0:
                path.unlink(missing_ok=True)
            else:
                sink = pa.BufferOutputStream()
                pq.write_table(keep, sink, compression="zstd")
                atomic_write_bytes(path, sink.getvalue().to_pybytes())
        return out

    def compact(self, table, *, key=None):
        """Merge every data file of ``table`` into one (atomically: the merged file first, then the old ones go).

        Parameters
        ----------
        table : str
            Table name (not for append-only tables whose files are events: those are merged too, losing nothing).
        key : str, optional
            Name of the merged file; default ``batch-<UTC time>-<random>``.

        Returns
        -------
        int
            Number of files merged.
        """
        files = self._data_files(table)
        if len(files) < 2:
            return len(files)
        merged = pa.concat_tables([pq.read_table(p, schema=arrow_schema(table)) for p in files])
        if key is None:
            from datetime import datetime, timezone

            key = f"batch-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
        out = self.write(table, merged, key=key)
        for p in files:
            if p != out:
                p.unlink(missing_ok=True)
        return len(files)

    def _data_files(self, table):
        return sorted(p for p in self.table_dir(table).glob("*.parquet") if not p.name.startswith(("_", ".")))

    def delete(self, table, key):
        """Remove the rows one unit of work wrote (no error if there were none)."""
        (self.table_dir(table) / f"{key}.parquet").unlink(missing_ok=True)

    def put_artifact(self, data, ext):
        """Store bytes content-addressed under ``artifacts/sha256/xx/<hash>.<ext>``; return the path."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.artifacts_dir / "sha256" / digest[:2] / f"{digest}.{ext}"
        if not path.exists():
            atomic_write_bytes(path, data)
        return path

    # -- reading ------------------------------------------------------------------------------
    def read(self, table, *, columns=None, filter=None):
        """Read a whole table as a `pyarrow.Table` (zero rows with the full schema if empty).

        Parameters
        ----------
        table : str
            Table name.
        columns : list of str, optional
            Columns to read.
        filter : pyarrow.compute.Expression, optional
            Row filter, e.g. ``pc.field("status") == "ok"``.
        """
        dataset = ds.dataset(self.table_dir(table), schema=arrow_schema(table), format="parquet")
        return dataset.to_table(columns=columns, filter=filter)

    def keys(self, table):
        """Return the keys (units of work) written to ``table``."""
        return sorted(p.stem for p in self.table_dir(table).glob("*.parquet") if not p.name.startswith("_"))

    def connect(self, *, read_only=True):
        """Return an in-memory DuckDB connection with one view per table.

        The Parquet files are the source of truth; the views read them with
        ``read_parquet(..., union_by_name=true)``, so every query sees the
        current files.
        """
        import duckdb

        con = duckdb.connect()
        for sql in self._view_sql():
            con.execute(sql)
        return con

    def _view_sql(self):
        for table in TABLES:
            pattern = str(self.table_dir(table) / "*.parquet").replace("'", "''")
            yield f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet('{pattern}', union_by_name=true)"

    def refresh_views(self):
        """(Re)build ``astrokit.duckdb`` with the views, for people who open the store in DuckDB directly."""
        import duckdb

        path = self.root / "astrokit.duckdb"
        tmp = path.with_name(f".astrokit.{uuid.uuid4().hex}.duckdb")
        con = duckdb.connect(str(tmp))
        try:
            for sql in self._view_sql():
                con.execute(sql)
        finally:
            con.close()
        os.replace(tmp, path)
        return path

    def sql(self, query, params=None):
        """Run a DuckDB query over the tables and return a `pyarrow.Table`.

        Raises
        ------
        AstrokitError
            If DuckDB rejects the query (the message is DuckDB's).
        """
        import duckdb

        con = self.connect()
        try:
            return con.sql(query, params=params).to_arrow_table()
        except duckdb.Error as exc:
            msg = f"query failed: {str(exc).splitlines()[0]}"
            raise AstrokitError(msg) from exc
        finally:
            con.close()
