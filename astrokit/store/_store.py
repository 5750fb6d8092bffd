"""The Parquet store: one folder per table, atomic writes, DuckDB views, content-addressed artifacts."""

import contextlib
import hashlib
import json
import os
import re
import socket
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from astrokit.exceptions import AstrokitError
from astrokit.io._s3 import is_s3, s3_cache_dir, s3_client, s3_endpoint_url, s3_filesystem, split_s3
from astrokit.store._faults import fault_point
from astrokit.store._overlay import base_name, overlay_sql, overlay_tables
from astrokit.store._replace import commit_replacement, live_files, roll_forward, table_write_lock
from astrokit.store.schema import OVERLAYS, TABLES, arrow_schema, conform

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
        fault_point("write:staged", path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


#: Lease of a run lock on an S3 store: a lock older than this is stale and may be broken (hours).
S3_LOCK_LEASE_HOURS = 6.0

_LOCK_NAME = ".astrokit-run.lock"


def _batch_key():
    return f"batch-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"


def _parquet_bytes(table):
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


#: Reads that race a writer's replacement (a listed file is gone when read) list again, this many times in all.
_READ_ATTEMPTS = 4


def _vanished(exc):
    """Whether a read failed because a listed file was replaced meanwhile (not a damaged or unreadable file)."""
    if isinstance(exc, FileNotFoundError):
        return True
    if not isinstance(exc, OSError) and type(exc).__name__ != "IOException":  # e.g. DuckDB's catalog errors
        return False
    text = str(exc)
    return any(s in text for s in ("No such file", "No files found", "not found", "does not exist"))


def _hidden(key):
    return any(part.startswith((".", "_")) for part in key.split("/"))


class Store:
    """An astrokit store: Parquet tables, artifacts, executed notebooks and models under one folder or S3 prefix.

    Layout (ARCHITECTURE.md)::

        <root>/tables/<table>/<key>.parquet   one file per unit of work (difference, ...) via `write`,
                                              or per batch of units (ingest: many FITS files) via `upsert`
        <root>/artifacts/sha256/xx/<hash>.<ext>
        <root>/runs/<run_id>/<stage>.ipynb
        <root>/models/<name>/<version>/
        <root>/astrokit.duckdb                views over tables/ (rebuilt by `refresh_views`; local stores)

    The same code serves both kinds of root through a `pyarrow.fs`
    filesystem (``LocalFileSystem`` or ``S3FileSystem``): files are addressed
    by a *key* relative to the root (``tables/frames/x.parquet``). On a
    folder a write goes to a temporary name and is renamed; on S3 each
    object is written with one PUT (or one completed multipart upload), which
    S3 makes visible atomically. DuckDB queries read the tables through Arrow
    datasets, so an S3 store needs no DuckDB extension.

    Parameters
    ----------
    root : path-like or str, optional
        Store folder, or ``s3://bucket/prefix``; default `default_store_path`.
    endpoint_url : str, optional
        For ``s3://`` roots: an S3-compatible service (MinIO, Ceph, moto);
        default ``$AWS_ENDPOINT_URL`` or AWS. Credentials and region come from
        the standard AWS environment variables and profiles.

    Attributes
    ----------
    root : pathlib.Path or str
        The resolved folder, or the ``s3://bucket/prefix`` URI (no trailing slash).
    is_s3 : bool
        Whether the store is in S3.
    fs : pyarrow.fs.FileSystem
        The filesystem holding the store.

    Raises
    ------
    AstrokitError
        If a folder root exists and is not a folder, or the bucket of an
        ``s3://`` root cannot be reached (missing, no permission, endpoint down).

    References
    ----------
    .. [1] Apache Arrow, "Filesystem Interface", https://arrow.apache.org/docs/python/filesystems.html
    .. [2] Amazon S3 User Guide, "Amazon S3 data consistency model" (strong read-after-write consistency),
       https://docs.aws.amazon.com/AmazonS3/latest/userguide/Welcome.html#ConsistencyModel
    """

    def __init__(self, root=None, *, endpoint_url=None):
        root = default_store_path() if root is None else root
        self._ready = set()
        if is_s3(root):
            bucket, prefix = split_s3(str(root))
            prefix = prefix.strip("/")
            self.is_s3 = True
            self.endpoint_url = s3_endpoint_url(endpoint_url)
            self.root = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
            self.bucket, self.prefix = bucket, prefix
            self._base = f"{bucket}/{prefix}" if prefix else bucket
            try:
                self.fs = s3_filesystem(self.endpoint_url)
                info = self.fs.get_file_info(bucket)
            except (OSError, ValueError) as exc:
                msg = f"store {self.root}: cannot reach the bucket ({str(exc).splitlines()[0]})"
                raise AstrokitError(msg) from exc
            if info.type == pafs.FileType.NotFound:
                where = self.endpoint_url or "AWS"
                msg = f"store {self.root}: bucket {bucket!r} does not exist at {where}; create it first"
                raise AstrokitError(msg)
        else:
            self.is_s3 = False
            self.endpoint_url = None
            self.root = Path(root).expanduser().resolve()
            if self.root.exists() and not self.root.is_dir():
                msg = f"store {self.root} exists and is not a folder"
                raise AstrokitError(msg)
            self.fs = pafs.LocalFileSystem()
            self._base = self.root.as_posix()

    def __repr__(self):
        return f"Store({str(self.root)!r})"

    # -- files by key -------------------------------------------------------------------------
    def _fs_path(self, key):
        return f"{self._base}/{key}" if key else self._base

    def location(self, key):
        """Return where the file ``key`` lives: a `pathlib.Path` (folder store) or an ``s3://`` URI (str).

        Parameters
        ----------
        key : str
            Path relative to the store root, with ``/`` separators.

        Returns
        -------
        pathlib.Path or str
        """
        return f"{self.root}/{key}" if self.is_s3 else self.root / key

    def key_of(self, location):
        """Return the key (path relative to the root) of a location returned by `location` or `put_artifact`.

        Parameters
        ----------
        location : path-like or str
            A path inside the store folder, or an ``s3://`` URI inside the store prefix.

        Returns
        -------
        str

        Raises
        ------
        AstrokitError
            If the location is outside the store.
        """
        text = str(location)
        if self.is_s3:
            if text.startswith(self.root + "/"):
                return text[len(self.root) + 1:]
        else:
            with contextlib.suppress(ValueError):
                return Path(location).resolve().relative_to(self.root).as_posix()
        msg = f"{text} is not inside the store {self.root}"
        raise AstrokitError(msg)

    def _error(self, action, key, exc):
        msg = f"store {self.root}: cannot {action} {key} ({str(exc).splitlines()[0]})"
        return AstrokitError(msg)

    def write_bytes(self, key, data):
        """Write ``data`` to the file ``key`` atomically (rename on a folder, one PUT on S3).

        Parameters
        ----------
        key : str
            Path relative to the root.
        data : bytes
            Content.

        Returns
        -------
        pathlib.Path or str
            The `location` written.

        Raises
        ------
        AstrokitError
            If the write fails (for S3: endpoint unreachable, no permission...).
        """
        if not self.is_s3:
            out = atomic_write_bytes(self.root / key, data)
        else:
            fault_point("write:staged", key)
            try:
                with self.fs.open_output_stream(self._fs_path(key)) as stream:
                    stream.write(data)
            except OSError as exc:
                raise self._error("write", key, exc) from exc
            out = self.location(key)
        fault_point("write:done", key)
        return out

    def read_bytes(self, key):
        """Return the content of the file ``key``.

        Parameters
        ----------
        key : str
            Path relative to the root (e.g. a ``difference_path`` of the ``differences`` table).

        Returns
        -------
        bytes

        Raises
        ------
        AstrokitError
            If the file does not exist or cannot be read.
        """
        try:
            with self.fs.open_input_stream(self._fs_path(key)) as fh:
                return fh.read()
        except (OSError, FileNotFoundError) as exc:
            raise self._error("read", key, exc) from exc

    def local_path(self, key):
        """Return a local file with the content of ``key``, for readers that need a path (astropy FITS, Keras).

        For a folder store this is the file itself; for an S3 store it is a
        copy under ``$ASTROKIT_S3_CACHE``, downloaded again only when the
        object's size or LastModified time changed (`astrokit.io._s3.local_copy`).

        Parameters
        ----------
        key : str
            Path relative to the root (e.g. a ``difference_path`` of the ``differences`` table).

        Returns
        -------
        pathlib.Path

        Raises
        ------
        AstrokitError
            If the file does not exist or cannot be downloaded.
        """
        from astrokit.io._s3 import local_copy

        if not self.is_s3:
            path = self.root / key
            if not path.is_file():
                msg = f"store {self.root}: {key} does not exist"
                raise AstrokitError(msg)
            return path
        return local_copy(f"s3://{self._base}/{key}", client=self.client)

    def exists(self, key):
        """Return whether the file ``key`` exists.

        Parameters
        ----------
        key : str
            Path relative to the root.

        Returns
        -------
        bool
        """
        try:
            return self.fs.get_file_info(self._fs_path(key)).type == pafs.FileType.File
        except OSError as exc:
            raise self._error("look up", key, exc) from exc

    def delete_file(self, key):
        """Remove the file ``key`` (no error if it does not exist).

        Parameters
        ----------
        key : str
            Path relative to the root.

        Raises
        ------
        AstrokitError
            If the file exists and cannot be removed.
        """
        if not self.is_s3:
            (self.root / key).unlink(missing_ok=True)
            return
        try:
            self.fs.delete_file(self._fs_path(key))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise self._error("delete", key, exc) from exc

    def list_files(self, prefix="", *, hidden=False):
        """List the files under ``prefix`` (recursively).

        Parameters
        ----------
        prefix : str
            Folder relative to the root (``""`` for the whole store).
        hidden : bool
            Also list names starting with ``.`` or ``_`` (temporary files, schema files, the lock).

        Returns
        -------
        list of tuple
            ``(key, size_bytes, mtime)`` sorted by key; ``mtime`` in Unix seconds.

        Raises
        ------
        AstrokitError
            If the listing fails.
        """
        base = self._fs_path(prefix.strip("/"))
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        except OSError as exc:
            raise self._error("list", prefix or "/", exc) from exc
        out = []
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            key = info.path[len(self._base) + 1:]
            if not hidden and _hidden(key):
                continue
            mtime = info.mtime.timestamp() if info.mtime is not None else 0.0
            out.append((key, int(info.size), mtime))
        return sorted(out)

    def local_dir(self, key):
        """Return a local folder to write the files of ``key`` into before `publish` (created).

        For a folder store this is the folder itself; for an S3 store it is a
        staging folder under ``$ASTROKIT_S3_CACHE``. Papermill writes an
        executed notebook cell by cell into it.

        Parameters
        ----------
        key : str
            Folder relative to the root (e.g. ``runs/<run_id>``).

        Returns
        -------
        pathlib.Path
        """
        path = (self._mirror_root() if self.is_s3 else self.root) / key
        path.mkdir(parents=True, exist_ok=True)
        return path

    def publish(self, local_path, key=None):
        """Make a file written under `local_dir` part of the store (upload it for S3; nothing to do for a folder).

        Parameters
        ----------
        local_path : path-like
            A file under `local_dir`.
        key : str, optional
            Its key; default: its path relative to the local folder.

        Returns
        -------
        str
            The file's `location`, as text (what the ``runs`` table records); a
            missing local file is not uploaded, its location is still returned.

        Raises
        ------
        AstrokitError
            If the upload fails.
        """
        local_path = Path(local_path)
        if not self.is_s3:
            return str(local_path)
        key = key or local_path.resolve().relative_to(self._mirror_root().resolve()).as_posix()
        if local_path.is_file():  # a kernel that died before papermill wrote anything leaves no file
            self.write_bytes(key, local_path.read_bytes())
        return str(self.location(key))

    def _mirror_root(self):
        return s3_cache_dir() / "stores" / self._base

    # -- layout -------------------------------------------------------------------------------
    @property
    def tables_dir(self):
        """Folder of the Parquet tables (a Path, or an ``s3://`` URI)."""
        return self.location("tables")

    @property
    def artifacts_dir(self):
        """Folder of the content-addressed artifacts (a Path, or an ``s3://`` URI)."""
        return self.location("artifacts")

    @property
    def runs_dir(self):
        """Folder of the executed notebooks (a Path, or an ``s3://`` URI)."""
        return self.location("runs")

    @property
    def models_dir(self):
        """Local folder of the model registry.

        For an S3 store this is a local mirror of ``models/`` under
        ``$ASTROKIT_S3_CACHE``, refreshed from the bucket on each access (only
        new or changed objects are downloaded); call `push_models` after
        changing the registry (training, promotion).
        """
        if not self.is_s3:
            return self.root / "models"
        return self._sync_models_down()

    def _sync_models_down(self):
        from astrokit.io._s3 import local_copy

        mirror = self._mirror_root() / "models"
        mirror.mkdir(parents=True, exist_ok=True)
        client = self.client
        for key, size, mtime in self.list_files("models"):
            # local_copy keeps <cache>/<bucket>/<key> up to date by size and LastModified; link it into the mirror
            cached = local_copy(f"s3://{self._base}/{key}", client=client, size=size, mtime=mtime)
            target = self._mirror_root() / key
            if not (target.is_file() and target.stat().st_size == size and target.stat().st_mtime == mtime):
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(target, cached.read_bytes())
                os.utime(target, (mtime, mtime))
        return mirror

    def push_models(self):
        """Upload the files of the local `models_dir` mirror that are new or changed (S3 stores; no-op on a folder).

        Returns
        -------
        list of str
            Keys uploaded.

        Raises
        ------
        AstrokitError
            If an upload fails.
        """
        if not self.is_s3:
            return []
        mirror = self._mirror_root()
        remote = {key: (size, mtime) for key, size, mtime in self.list_files("models")}
        pushed = []
        for path in sorted((mirror / "models").rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            key = path.relative_to(mirror).as_posix()
            st = path.stat()
            if remote.get(key) == (st.st_size, st.st_mtime):
                continue
            self.write_bytes(key, path.read_bytes())
            info = self.fs.get_file_info(self._fs_path(key))
            stamp = info.mtime.timestamp()
            os.utime(path, (stamp, stamp))
            pushed.append(key)
        return pushed

    @property
    def client(self):
        """A boto3 S3 client for this store's endpoint (S3 stores only)."""
        return s3_client(self.endpoint_url)

    def table_dir(self, table):
        """Folder of one table (created with a zero-row schema file so views always resolve).

        Returns
        -------
        pathlib.Path or str
            A Path for a folder store, an ``s3://`` URI for an S3 store.

        Raises
        ------
        AstrokitError
            If the table is unknown.
        """
        return self.location(self._table_key(table))

    def _table_key(self, table):
        if table not in TABLES:
            msg = f"unknown table {table!r}; the tables are {sorted(TABLES)}"
            raise AstrokitError(msg)
        key = f"tables/{table}"
        if table not in self._ready:
            schema = arrow_schema(table)
            if not self.exists(f"{key}/_schema.parquet"):
                if not self.is_s3:
                    (self.root / key).mkdir(parents=True, exist_ok=True)
                self.write_bytes(f"{key}/_schema.parquet", _parquet_bytes(schema.empty_table()))
            elif set(schema.names) - set(pq.read_schema(pa.BufferReader(
                    self.read_bytes(f"{key}/_schema.parquet"))).names):  # a column added since: views resolve it
                self.write_bytes(f"{key}/_schema.parquet", _parquet_bytes(schema.empty_table()))
            self._ready.add(table)
        return key

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
        pathlib.Path or str
            The file written (an ``s3://`` URI for an S3 store).

        Raises
        ------
        AstrokitError
            If the key is not a safe file name, the rows do not fit the schema, or the write fails.
        """
        key = self._checked_key(table, key)
        rows = conform(table, data)
        return self.write_bytes(f"{self._table_key(table)}/{key}.parquet", _parquet_bytes(rows))

    def append(self, table, data):
        """Append rows as a new file (used by the append-only ``labels`` and ``runs`` tables).

        Parameters
        ----------
        table : str
            Table name.
        data : pyarrow.Table, pandas.DataFrame or list of dict
            Rows.

        Returns
        -------
        pathlib.Path or str
            The file written.
        """
        return self.write(table, data, key=f"{uuid.uuid4().hex}")

    def upsert(self, table, data, *, on, key=None):
        """Write rows as one batch file, replacing every earlier row with the same ``on`` value, atomically.

        This is the many-units-per-file counterpart of `write`: ingest writes
        the rows of a whole batch of files in one Parquet file (``on="path"``)
        instead of one tiny file per FITS file. The new batch and the older
        files rewritten without the replaced rows are staged, then switched in
        with one commit record (`astrokit.store._replace`): a reader, or a
        crash at any point, sees either the table before or the table after,
        never a duplicate or a missing row. Writers of one table are
        serialised (an advisory lock on a folder store, the run lock on S3).

        Parameters
        ----------
        table : str
            Table name.
        data : pyarrow.Table, pandas.DataFrame or list of dict
            Rows, conformed to the schema.
        on : str
            Column whose values identify the rows a batch replaces (e.g. ``"path"``).
        key : str, optional
            File name of the batch; default ``batch-<UTC time>-<random>``. An
            existing file of that name is replaced as a whole.

        Returns
        -------
        pathlib.Path or str or None
            The batch file written; None when ``data`` has no rows (nothing changes).

        Raises
        ------
        AstrokitError
            If the key is not a safe file name, the rows do not fit the schema, or a write fails.
        """
        import pyarrow.compute as pc

        rows = conform(table, data)
        if rows.num_rows == 0:
            return None
        key = self._checked_key(table, key or _batch_key())
        values = pc.unique(rows.column(on))
        table_key = self._table_key(table)
        with table_write_lock(self, table_key) as exclusive:
            roll_forward(self, table_key, holding_lock=exclusive)
            name = f"{key}.parquet"
            add, remove = {name: _parquet_bytes(rows)}, []
            for file_key in live_files(self, table_key):
                old_name = file_key.rsplit("/", 1)[-1]
                if old_name == name:
                    continue
                old = self._read_file(file_key, table, columns=[on])
                if not pc.any(pc.is_in(old.column(on), value_set=values)).as_py():
                    continue
                full = self._read_file(file_key, table)
                keep = full.filter(pc.invert(pc.is_in(full.column(on), value_set=values)))
                if keep.num_rows == 0:
                    remove.append(old_name)
                else:
                    add[old_name] = _parquet_bytes(keep)
            commit_replacement(self, table_key, add, remove)
        return self.location(f"{table_key}/{name}")

    def _checked_key(self, table, key):
        if not _KEY.match(str(key)):
            msg = f"key {key!r} for table {table!r} must match {_KEY.pattern}"
            raise AstrokitError(msg)
        return str(key)

    def _read_file(self, file_key, table, columns=None):
        try:
            return pq.read_table(self._fs_path(file_key), filesystem=self.fs, schema=arrow_schema(table),
                                 columns=columns)
        except OSError as exc:
            raise self._error("read", file_key, exc) from exc

    def compact(self, table, *, key=None):
        """Merge every data file of ``table`` into one, atomically (one commit switches the files).

        Parameters
        ----------
        table : str
            Table name (append-only tables, whose files are events, are merged too, losing nothing).
        key : str, optional
            Name of the merged file; default ``batch-<UTC time>-<random>``.

        Returns
        -------
        int
            Number of files merged (0 or 1: nothing to do).

        Raises
        ------
        AstrokitError
            If the key is not a safe file name, or a read or write fails.
        """
        table_key = self._table_key(table)
        key = self._checked_key(table, key or _batch_key())
        with table_write_lock(self, table_key) as exclusive:
            roll_forward(self, table_key, holding_lock=exclusive)
            files = live_files(self, table_key)
            if len(files) < 2:
                return len(files)
            merged = pa.concat_tables([self._read_file(f, table) for f in files])
            name = f"{key}.parquet"
            remove = [f.rsplit("/", 1)[-1] for f in files if f.rsplit("/", 1)[-1] != name]
            commit_replacement(self, table_key, {name: _parquet_bytes(merged)}, remove)
        return len(files)

    def recover(self, tables=None):
        """Finish the table replacements that crashed writers committed, and discard what they only staged.

        Writers do this on their own table before each replacement; `run`
        and `ingest` call it for every table when they start, so the DuckDB
        file (``astrokit.duckdb``), which lists the folders directly, shows the
        committed state too.

        Parameters
        ----------
        tables : list of str, optional
            Tables to recover; default all.

        Returns
        -------
        int
            Number of committed replacements applied.

        Raises
        ------
        AstrokitError
            If a table is unknown or a file cannot be moved or removed.
        """
        done = 0
        for table in TABLES if tables is None else tables:
            if table not in TABLES:
                self._table_key(table)  # the one-line error naming the tables
            table_key = f"tables/{table}"
            if not any(key.startswith(f"{table_key}/_txn/") and not key.endswith("/.lock")
                       for key, _, _ in self.list_files(f"{table_key}/_txn", hidden=True)):
                continue  # nothing staged or committed: create nothing
            with table_write_lock(self, table_key) as exclusive:
                done += roll_forward(self, table_key, holding_lock=exclusive)
        return done

    def _data_files(self, table):
        return live_files(self, self._table_key(table))

    def delete(self, table, key):
        """Remove the rows one unit of work wrote (no error if there were none).

        Parameters
        ----------
        table : str
            Table name.
        key : str
            The unit of work, as given to `write`.
        """
        self.delete_file(f"{self._table_key(table)}/{key}.parquet")

    def put_artifact(self, data, ext):
        """Store bytes content-addressed under ``artifacts/sha256/xx/<hash>.<ext>``.

        Parameters
        ----------
        data : bytes
            Content (a FITS file, a PNG...).
        ext : str
            File name extension, without the dot.

        Returns
        -------
        pathlib.Path or str
            The artifact's `location`; `key_of` gives the key to record in a table.

        Raises
        ------
        AstrokitError
            If the write fails.
        """
        digest = hashlib.sha256(data).hexdigest()
        key = f"artifacts/sha256/{digest[:2]}/{digest}.{ext}"
        if not self.exists(key):
            self.write_bytes(key, data)
        return self.location(key)

    # -- reading ------------------------------------------------------------------------------
    def dataset(self, table):
        """Return the table as a `pyarrow.dataset.Dataset` with the full schema (files missing a column read null).

        Parameters
        ----------
        table : str
            Table name.

        Returns
        -------
        pyarrow.dataset.Dataset
        """
        files = [self._fs_path(k) for k in self._data_files(table)]
        return ds.dataset(files, schema=arrow_schema(table), format="parquet", filesystem=self.fs)

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

        Returns
        -------
        pyarrow.Table

        Raises
        ------
        AstrokitError
            If the table is unknown or a file cannot be read.
        """
        for attempt in range(_READ_ATTEMPTS):
            try:
                if overlay_tables(table) and (columns is None or set(columns) & set(OVERLAYS[table]["columns"])):
                    return self._read_joined(table, columns, filter)
                return self.dataset(table).to_table(columns=columns, filter=filter)
            except (OSError, FileNotFoundError) as exc:
                if attempt + 1 < _READ_ATTEMPTS and _vanished(exc):
                    continue  # a writer replaced a file between the listing and the read: list again
                raise self._error("read", f"table {table}", exc) from exc
        return None  # not reached

    def _read_joined(self, table, columns, filter):
        """Read a table with its overlaid columns joined in (`astrokit.store._overlay`), in its own row order."""
        import duckdb

        key = OVERLAYS[table]["key"]
        wanted = None if columns is None else list(dict.fromkeys([*columns, key]))
        base = self.dataset(table).to_table(columns=wanted, filter=filter)
        schema = base.schema
        base = base.append_column("__row", pa.array(range(base.num_rows), pa.int64()))
        con = duckdb.connect()
        try:
            con.register("__base", base)
            for overlay in overlay_tables(table):
                con.register(overlay, self.dataset(overlay).to_table())
            present = [c for c in OVERLAYS[table]["columns"] if c in schema.names]
            joined = con.sql(overlay_sql(table, "__base", order_by="__row", only=present)).to_arrow_table()
        finally:
            con.close()
        out = joined.drop_columns(["__row"]).cast(schema)
        return out if columns is None else out.select(columns)

    def keys(self, table):
        """Return the keys (units of work) written to ``table``.

        Parameters
        ----------
        table : str
            Table name.

        Returns
        -------
        list of str
        """
        return sorted(k.rsplit("/", 1)[-1][: -len(".parquet")] for k in self._data_files(table))

    def connect(self, *, read_only=True, tables=None):
        """Return an in-memory DuckDB connection with one view per table.

        The Parquet files are the source of truth, as of the last committed
        change of each table (`astrokit.store._replace.live_files`). On a
        folder store the views read them with ``read_parquet([...],
        union_by_name=true)``; on an S3 store each table is registered as an
        Arrow dataset (`dataset`), which DuckDB scans directly, so no DuckDB
        extension is needed. The file lists are taken when the connection is
        made: open a new connection to see later writes.

        Parameters
        ----------
        read_only : bool
            Kept for compatibility; the connection is in memory.
        tables : list of str, optional
            Register only these tables (each costs a listing; a LIST request on S3); default all.

        Returns
        -------
        duckdb.DuckDBPyConnection
        """
        import duckdb

        con = duckdb.connect()
        wanted = list(TABLES if tables is None else tables)
        wanted += [t for table in wanted for t in overlay_tables(table) if t not in wanted]
        for table in wanted:  # a table with overlays: its own files as <table>__files, joined below
            name = base_name(table) if overlay_tables(table) else table
            if self.is_s3:
                con.register(name, self.dataset(table))
            else:
                files = [self.root / self._table_key(table) / "_schema.parquet"]
                files += [self.root / k for k in self._data_files(table)]
                listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
                con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet([{listed}], "
                            "union_by_name=true)")
        for table in wanted:
            if overlay_tables(table):
                con.execute(f"CREATE OR REPLACE VIEW {table} AS {overlay_sql(table, base_name(table))}")
        return con

    def _view_sql(self):
        joined = [t for t in TABLES if overlay_tables(t)]
        for table in TABLES:  # relative to the store: a copy of the store (cp -r, rsync, restore) queries itself
            pattern = f"{self._table_key(table)}/*.parquet".replace("'", "''")
            name = base_name(table) if table in joined else table
            yield f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet('{pattern}', union_by_name=true)"
        for table in joined:
            yield f"CREATE OR REPLACE VIEW {table} AS {overlay_sql(table, base_name(table))}"

    def refresh_views(self):
        """(Re)build ``astrokit.duckdb`` with the views, for people who open the store in DuckDB directly.

        The views name the files relative to the store folder, so a copy of
        the store answers on its own: open it from inside the store, e.g.
        ``cd astrokit-data && duckdb astrokit.duckdb`` (DuckDB resolves a
        relative path against the working folder, or against its
        ``file_search_path`` setting from elsewhere). They glob each table's
        folder, so they see what `Store.recover` has applied.

        Returns
        -------
        pathlib.Path or None
            The DuckDB file; None for an S3 store (its tables are queried with `connect` / `sql`).
        """
        import duckdb

        if self.is_s3:
            return None
        path = self.root / "astrokit.duckdb"
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".astrokit.{uuid.uuid4().hex}.duckdb")
        con = duckdb.connect(str(tmp))
        try:
            # the views' relative paths are checked against the store while they are created (not stored)
            con.execute("SET file_search_path = ?", [str(self.root)])
            for sql in self._view_sql():
                con.execute(sql)
        finally:
            con.close()
        os.replace(tmp, path)
        return path

    def sql(self, query, params=None):
        """Run a DuckDB query over the tables and return a `pyarrow.Table`.

        Parameters
        ----------
        query : str
            SQL; the tables are views named after them (``frames``, ``sources``, ...).
        params : list or dict, optional
            Query parameters (``?`` or ``$name``).

        Returns
        -------
        pyarrow.Table

        Raises
        ------
        AstrokitError
            If the query is empty, returns no table, or DuckDB rejects it (the message is DuckDB's).
        """
        import duckdb

        # list only the tables the query names (a table it does not name cannot be read by it)
        used = [t for t in TABLES if re.search(rf"\b{t}\b", query, re.IGNORECASE)]
        if not str(query).strip():
            msg = "empty query: give a SELECT statement, e.g. \"select count(*) from frames\""
            raise AstrokitError(msg)
        for attempt in range(_READ_ATTEMPTS):
            con = self.connect(tables=used)
            try:
                relation = con.sql(query, params=params)
                if relation is None:  # a statement that returns no rows (SET, CREATE ...): nothing to show
                    msg = f"the query returned no table ({str(query).strip()[:40]!r}): give a SELECT statement"
                    raise AstrokitError(msg)
                return relation.to_arrow_table()
            except (duckdb.Error, OSError) as exc:
                if attempt + 1 < _READ_ATTEMPTS and _vanished(exc):
                    continue  # a writer replaced a file between the listing and the query: list again
                msg = f"query failed: {str(exc).splitlines()[0]}"
                raise AstrokitError(msg) from exc
            finally:
                con.close()
        return None  # not reached

    # -- the run lock -------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, *, lease_hours=None, wait=0.0):
        """Hold the store's run lock for the duration of the block, so two runs never overlap on one store.

        On a folder, the lock is an advisory ``flock`` on ``<root>/.astrokit-run.lock``:
        the operating system releases it when the holder exits, even after a
        crash. On S3, the lock is the object ``<prefix>/.astrokit-run.lock``
        created with a conditional PUT (``If-None-Match: *``), which S3 lets
        only one writer win; it records the holder's host, pid and time. A
        lock is stale, and is broken, when it is older than the lease
        (`S3_LOCK_LEASE_HOURS`, 6 h, or ``$ASTROKIT_LOCK_LEASE_HOURS``) or when
        its holder ran on this host and that process is gone.

        Parameters
        ----------
        lease_hours : float, optional
            Lease of an S3 lock (hours).
        wait : float
            Seconds to wait for a lock held by another process before giving up
            (0: give up at once).

        Yields
        ------
        pathlib.Path or str
            The lock file (or object URI).

        Raises
        ------
        AstrokitError
            If another process holds the lock (its pid, and host for S3, are in the message).

        References
        ----------
        .. [1] Amazon S3 User Guide, "Add preconditions to S3 operations with conditional requests",
           https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-requests.html
        """
        deadline = time.monotonic() + max(0.0, float(wait))
        if self.is_s3:
            while True:
                try:
                    lock = self._s3_lock(lease_hours)
                    lock.__enter__()
                    break
                except AstrokitError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.5)
            try:
                yield self.location(_LOCK_NAME)
            finally:
                lock.__exit__(None, None, None)
            return
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / _LOCK_NAME
        fh = open(path, "a+")  # noqa: SIM115 - held open for the lifetime of the lock
        try:
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() < deadline:
                        time.sleep(0.1)
                        continue
                    fh.seek(0)
                    holder = fh.read().strip() or "unknown"
                    msg = (f"another astrokit run holds the lock on {self.root} (pid {holder}); not starting a "
                           "second one")
                    raise AstrokitError(msg) from None
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            yield path
        finally:
            fh.close()

    @contextlib.contextmanager
    def _s3_lock(self, lease_hours):
        from botocore.exceptions import BotoCoreError, ClientError

        lease = float(lease_hours or os.environ.get("ASTROKIT_LOCK_LEASE_HOURS") or S3_LOCK_LEASE_HOURS) * 3600.0
        client = self.client
        key = f"{self.prefix}/{_LOCK_NAME}" if self.prefix else _LOCK_NAME
        token = uuid.uuid4().hex
        body = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "token": token,
                           "created": time.time(), "lease_s": lease}).encode()
        try:
            for attempt in range(2):
                try:
                    client.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")
                    break
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412",
                                                                          "ConditionalRequestConflict"):
                        raise
                    holder, etag = self._lock_holder(client, key)
                    if attempt == 0 and self._lock_is_stale(holder):
                        with contextlib.suppress(ClientError):
                            client.delete_object(Bucket=self.bucket, Key=key, IfMatch=etag)
                        continue
                    msg = (f"another astrokit run holds the lock on {self.root} (pid {holder.get('pid', '?')} on "
                           f"{holder.get('host', '?')}, since {_utc(holder.get('created'))}); not starting a "
                           f"second one")
                    raise AstrokitError(msg) from None
        except (ClientError, BotoCoreError) as exc:
            raise self._error("take the run lock", _LOCK_NAME, exc) from exc
        try:
            yield
        finally:
            with contextlib.suppress(ClientError, BotoCoreError):
                holder, etag = self._lock_holder(client, key)
                if holder.get("token") == token:
                    client.delete_object(Bucket=self.bucket, Key=key)

    def _lock_holder(self, client, key):
        from botocore.exceptions import ClientError

        try:
            obj = client.get_object(Bucket=self.bucket, Key=key)
            text = obj["Body"].read()
        except ClientError:
            return {}, None
        try:
            holder = json.loads(text)
        except ValueError:
            holder = {}
        return (holder if isinstance(holder, dict) else {}), obj.get("ETag")

    @staticmethod
    def _lock_is_stale(holder):
        created = holder.get("created")
        if not isinstance(created, (int, float)):
            return True  # unreadable lock: nobody can renew or release it
        if time.time() - created > float(holder.get("lease_s") or S3_LOCK_LEASE_HOURS * 3600.0):
            return True
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
            try:
                os.kill(holder["pid"], 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
        return False


def _utc(stamp):
    if not isinstance(stamp, (int, float)):
        return "an unknown time"
    return datetime.fromtimestamp(stamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
