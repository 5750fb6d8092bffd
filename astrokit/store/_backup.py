"""Backups of a store to S3: incremental by SHA-256, manifests, verification, restore, lifecycle rules, cost.

Layout in the bucket (``s3://bucket/prefix``)::

    <prefix>/objects/<sha256[:2]>/<sha256>      the content of each file, once per distinct content
    <prefix>/manifests/<backup_id>.json          one manifest per backup (a snapshot of the store)
    <prefix>/manifests/latest.json               a copy of the newest manifest

Objects are content-addressed, so a backup uploads only content that is not
in the bucket yet (new or changed files), identical files are stored once,
and every manifest stays restorable after later backups. The manifest is
written last: an interrupted backup leaves objects without a manifest, which
the next backup reuses instead of uploading them again.
"""

import base64
import hashlib
import json
import os
import socket
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path

import astrokit
from astrokit.exceptions import AstrokitError, AstrokitWarning
from astrokit.io._s3 import s3_client, split_s3

__all__ = ["STORAGE_PRICES", "PRICES_SOURCE", "backup", "diff_manifest", "estimate_cost", "list_backups",
           "read_manifest", "restore", "set_lifecycle", "storage_report", "verify_backup"]

MANIFEST_FORMAT = "astrokit-backup/1"

#: Storage price in USD per GB-month (first 50 TB, US East (N. Virginia)), by S3 storage class.
STORAGE_PRICES = {
    "STANDARD": 0.023,
    "STANDARD_IA": 0.0125,
    "GLACIER_IR": 0.004,
    "GLACIER": 0.0036,
    "DEEP_ARCHIVE": 0.00099,
}
#: Where `STORAGE_PRICES` come from, and when they were read.
PRICES_SOURCE = ("Amazon S3 pricing, https://aws.amazon.com/s3/pricing/ (Storage pricing, US East (N. Virginia), "
                 "first 50 TB/month), as listed in 2024-2025; check the page for your region and date")
#: Billing rules per class: minimum billable object size (bytes) and extra bytes billed per object
#: (GLACIER and DEEP_ARCHIVE: 32 KB of index at the class price plus 8 KB of metadata at the STANDARD price).
_MIN_OBJECT_BYTES = {"STANDARD_IA": 128 * 1024, "GLACIER_IR": 128 * 1024}
_ARCHIVE_OVERHEAD = {"GLACIER": (32 * 1024, 8 * 1024), "DEEP_ARCHIVE": (32 * 1024, 8 * 1024)}
_ARCHIVED = ("GLACIER", "DEEP_ARCHIVE")
_GB = 1024.0**3  # AWS bills storage per GB of 2**30 bytes

_EXCLUDE = {"astrokit.duckdb"}  # views, rebuilt from the tables after a restore: never backed up
_CHUNK = 8 * 1024 * 1024


def _now():
    return datetime.now(timezone.utc)


def _target(to):
    text = str(to or "")
    if not text.startswith("s3://"):
        msg = f"backup target {text!r}: expected s3://BUCKET/PREFIX"
        raise AstrokitError(msg)
    bucket, prefix = split_s3(text)
    return bucket, prefix.strip("/")


def _key(prefix, *parts):
    return "/".join(p for p in (prefix, *parts) if p)


def _client_error(exc):
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _sha256_stream(fh):
    h = hashlib.sha256()
    while chunk := fh.read(_CHUNK):
        h.update(chunk)
    return h.hexdigest()


def _b64(hexdigest):
    return base64.b64encode(bytes.fromhex(hexdigest)).decode()


# -- manifests -----------------------------------------------------------------------------------
def read_manifest(to, backup_id="latest", *, client=None):
    """Read one backup manifest from the bucket.

    Parameters
    ----------
    to : str
        ``s3://bucket/prefix`` of the backups.
    backup_id : str
        A backup id (see `list_backups`) or ``"latest"``.
    client : botocore.client.S3, optional
        Client (default `astrokit.io._s3.s3_client`).

    Returns
    -------
    dict
        ``format``, ``backup_id``, ``created_at``, ``source``, ``files`` (list of dicts with
        ``path``, ``size``, ``sha256``, ``mtime``, ``storage_class``), ``bytes``, ``uploaded``.

    Raises
    ------
    AstrokitError
        If there is no such manifest or it is not an astrokit manifest. A
        corrupted ``latest.json`` is not an error: the newest valid manifest is
        read instead, with an `AstrokitWarning`.
    """
    client = client or s3_client()
    try:
        return _read_manifest(to, backup_id, client)
    except _InvalidManifest as exc:
        if backup_id != "latest":
            raise
        for older in reversed(list_backups(to, client=client)):
            try:
                manifest = _read_manifest(to, older, client)
            except AstrokitError:
                continue
            warnings.warn(f"{exc}; using the newest valid manifest {older} instead", AstrokitWarning, stacklevel=2)
            return manifest
        raise


class _InvalidManifest(AstrokitError):
    """A manifest was read but is not valid JSON or not an astrokit manifest."""


def _read_manifest(to, backup_id, client):
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = _target(to)
    key = _key(prefix, "manifests", f"{backup_id}.json")
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404", "NoSuchBucket"):
            msg = f"s3://{bucket}/{key}: no backup {backup_id!r} there ({code})"
        else:
            msg = f"s3://{bucket}/{key}: cannot read the manifest ({_client_error(exc)})"
        raise AstrokitError(msg) from exc
    except BotoCoreError as exc:
        msg = f"s3://{bucket}/{key}: cannot read the manifest ({_client_error(exc)})"
        raise AstrokitError(msg) from exc
    try:
        manifest = json.loads(body)
    except ValueError as exc:
        msg = f"s3://{bucket}/{key}: not a JSON manifest ({exc})"
        raise _InvalidManifest(msg) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        msg = f"s3://{bucket}/{key}: not an astrokit backup manifest (format {MANIFEST_FORMAT})"
        raise _InvalidManifest(msg)
    return manifest


def list_backups(to, *, client=None):
    """List the backups under ``s3://bucket/prefix`` (oldest first).

    Parameters
    ----------
    to : str
        ``s3://bucket/prefix`` of the backups.
    client : botocore.client.S3, optional
        Client.

    Returns
    -------
    list of str
        Backup ids.

    Raises
    ------
    AstrokitError
        If the bucket cannot be listed.
    """
    bucket, prefix = _target(to)
    client = client or s3_client()
    keys = _list(client, bucket, _key(prefix, "manifests") + "/")
    ids = [k.rsplit("/", 1)[-1][: -len(".json")] for k in keys if k.endswith(".json")]
    return sorted(i for i in ids if i != "latest")


def _list(client, bucket, prefix):
    """``{key: {'size', 'storage_class', 'mtime'}}`` of the objects under ``prefix``."""
    from botocore.exceptions import BotoCoreError, ClientError

    out = {}
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                out[obj["Key"]] = {"size": int(obj["Size"]), "storage_class": obj.get("StorageClass", "STANDARD"),
                                   "mtime": obj["LastModified"].timestamp()}
    except (ClientError, BotoCoreError) as exc:
        msg = f"s3://{bucket}/{prefix}: cannot list the bucket ({_client_error(exc)})"
        raise AstrokitError(msg) from exc
    return out


def diff_manifest(files, previous, present):
    """Decide which files a backup must upload.

    Parameters
    ----------
    files : list of dict
        The current files, each with ``path``, ``size`` and ``sha256``.
    previous : dict or None
        The last manifest, to name what was added, changed and removed since.
    present : dict of str -> int
        SHA-256 of the objects already in the bucket whose content was checked
        (`_verified_present`) -> their size in bytes.

    Returns
    -------
    dict
        ``upload``: list of the files whose content is not in the bucket (one per distinct
        SHA-256, or whose object has the wrong size); ``added``, ``changed``, ``removed``,
        ``unchanged``: paths, compared with ``previous``.
    """
    before = {f["path"]: f for f in (previous or {}).get("files", [])}
    now = {f["path"]: f for f in files}
    added = sorted(p for p in now if p not in before)
    removed = sorted(p for p in before if p not in now)
    changed = sorted(p for p in now if p in before and before[p]["sha256"] != now[p]["sha256"])
    unchanged = sorted(p for p in now if p in before and before[p]["sha256"] == now[p]["sha256"])
    upload, seen = [], set()
    for f in files:
        digest = f["sha256"]
        if digest in seen or present.get(digest) == f["size"]:
            continue
        seen.add(digest)
        upload.append(f)
    return {"upload": upload, "added": added, "changed": changed, "removed": removed, "unchanged": unchanged}


# -- backup --------------------------------------------------------------------------------------
def _store_files(store, include_raw):
    """``(path in the backup, local Path or None, store key or None, size, mtime)`` of everything to back up."""
    out = []
    for key, size, mtime in store.list_files("", hidden=True):  # with the tables' _schema.parquet files
        if key in _EXCLUDE or any(part.startswith(".") for part in key.split("/")):  # temporary files, the lock
            continue
        out.append((key, None if store.is_s3 else store.root / key, key, size, mtime))
    if include_raw:
        seen = set()
        for row in store.read("frames", columns=["path"]).to_pylist():
            path = row["path"]
            if not path or str(path).startswith("s3://") or path in seen:
                continue
            seen.add(path)
            p = Path(path)
            if p.is_file():
                st = p.stat()
                out.append(("raw/" + p.resolve().as_posix().lstrip("/"), p, None, st.st_size, st.st_mtime))
    return out


def _hash_files(store, entries, previous, rehash, progress):
    from tqdm.auto import tqdm

    before = {f["path"]: f for f in (previous or {}).get("files", [])}
    files = []
    bar = tqdm(total=sum(e[3] for e in entries), desc="hashing", unit="B", unit_scale=True, disable=not progress)
    for path, local, key, size, mtime in entries:
        old = before.get(path)
        if not rehash and old and old["size"] == size and abs(old["mtime"] - mtime) < 1e-3:
            digest = old["sha256"]  # quick check (size and mtime unchanged), as rsync does; --rehash to force
        elif local is not None:
            with open(local, "rb") as fh:
                digest = _sha256_stream(fh)
        else:
            digest = hashlib.sha256(store.read_bytes(key)).hexdigest()
        bar.update(size)
        files.append({"path": path, "size": int(size), "sha256": digest, "mtime": float(mtime)})
    bar.close()
    return files


_MAX_PUT = 5 * 1024**3  # S3's limit for one PUT


def _object_matches(client, bucket, key, sha256, size, rehash, archived):
    """Whether the object ``key`` holds exactly the content ``sha256``: S3's stored checksum, or re-read."""
    from botocore.exceptions import ClientError

    try:
        head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError:
        return False
    if int(head["ContentLength"]) != size:
        return False
    stored = head.get("ChecksumSHA256")
    if stored and "-" not in stored:
        return stored == _b64(sha256)
    if archived:  # an archived object cannot be re-read without a restore: trust its name and size
        return True
    if not rehash:  # no whole-object checksum (not uploaded by astrokit): upload it again with one
        return False
    return _sha256_stream(client.get_object(Bucket=bucket, Key=key)["Body"]) == sha256


def _verified_present(client, bucket, listing, wanted, *, rehash, workers):
    """``{sha256: size}`` of the wanted objects in ``listing`` whose content matches their name.

    An object counts as present only when S3's ``ChecksumSHA256`` (HEAD with
    checksum mode) equals its content address, or, with ``rehash``, when its
    bytes re-read hash to it; a same-size corrupted object is uploaded again.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    todo = {key.rsplit("/", 1)[-1]: (key, meta["storage_class"] in _ARCHIVED) for key, meta in listing.items()
            if wanted.get(key.rsplit("/", 1)[-1]) == meta["size"]}
    try:
        with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
            checks = {d: pool.submit(_object_matches, client, bucket, key, d, wanted[d], rehash, archived)
                      for d, (key, archived) in todo.items()}
            return {d: wanted[d] for d, fut in checks.items() if fut.result()}
    except (ClientError, BotoCoreError) as exc:
        msg = f"s3://{bucket}: cannot check the objects already backed up ({_client_error(exc)})"
        raise AstrokitError(msg) from exc


def _upload_one(client, bucket, object_key, f, local, store, key, storage_class):
    """Upload one object with one PUT carrying its SHA-256 (``ChecksumAlgorithm=SHA256``).

    botocore computes the checksum of the bytes sent, S3 checks it on arrival and keeps it as the object's
    ChecksumSHA256; it is compared here with the hash the manifest records, so a file that changed after it was
    hashed is caught (and its object removed).
    """
    if f["size"] > _MAX_PUT:
        msg = f"{local or key}: {f['size']} bytes is more than one S3 PUT takes (5 GiB); not backed up"
        raise AstrokitError(msg)
    args = {"Bucket": bucket, "Key": object_key, "ChecksumAlgorithm": "SHA256", "StorageClass": storage_class,
            "Metadata": {"sha256": f["sha256"]}}
    if local is None:
        response = client.put_object(Body=store.read_bytes(key), **args)
    else:
        with open(local, "rb") as fh:
            response = client.put_object(Body=fh, **args)
    sent = response.get("ChecksumSHA256")
    if sent and sent != _b64(f["sha256"]):
        client.delete_object(Bucket=bucket, Key=object_key)
        msg = f"{local or key} changed while the backup ran; run the backup again"
        raise AstrokitError(msg)
    return f


def backup(store, to, *, include_raw=False, storage_class="STANDARD", rehash=False, workers=4, client=None,
           progress=True):
    """Back up a store to ``s3://bucket/prefix``: upload new or changed content, then write the manifest.

    Every file of the store (tables, artifacts, executed notebooks, models,
    quarantine records; not the rebuildable ``astrokit.duckdb``) is hashed
    with SHA-256 and stored as ``objects/<sha256[:2]>/<sha256>``; only content
    not yet in the bucket is uploaded, one PUT per object carrying its
    ``ChecksumSHA256`` so that S3 rejects a corrupted upload. A file whose
    size and modification time match the previous manifest keeps its hash
    (``rehash=True`` hashes everything again). The manifest is written last,
    as ``manifests/<backup_id>.json`` and ``manifests/latest.json``.

    Parameters
    ----------
    store : astrokit.store.Store
        The store to back up (a folder or an S3 store).
    to : str
        ``s3://bucket/prefix``; the bucket must exist.
    include_raw : bool
        Also back up the raw files the ``frames`` table points to (local paths;
        restored under ``raw/<absolute path>``).
    storage_class : str
        S3 storage class of new objects, one of `STORAGE_PRICES`.
    rehash : bool
        Hash every file, even those unchanged by size and time since the last backup.
    workers : int
        Parallel uploads.
    client : botocore.client.S3, optional
        Client (default: for the store's endpoint).
    progress : bool
        Show tqdm progress bars.

    Returns
    -------
    dict
        ``backup_id``, ``files``, ``bytes``, ``uploaded`` (objects), ``uploaded_bytes``, ``added``,
        ``changed``, ``removed``, ``manifest`` (URI).

    Raises
    ------
    AstrokitError
        If the target is not ``s3://``, the bucket cannot be reached, the storage class is
        unknown, a file changes during the backup, or an upload fails (the manifest is then
        not written; rerun to complete).

    References
    ----------
    .. [1] Amazon S3 User Guide, "Checking object integrity",
       https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html
    """
    from botocore.exceptions import BotoCoreError, ClientError
    from tqdm.auto import tqdm

    bucket, prefix = _target(to)
    if storage_class not in STORAGE_PRICES:
        msg = f"storage class {storage_class!r} is unknown; choose from {', '.join(STORAGE_PRICES)}"
        raise AstrokitError(msg)
    if not store.is_s3 and not store.root.is_dir():
        msg = f"store {store.root} does not exist; nothing to back up"
        raise AstrokitError(msg)
    client = client or s3_client(getattr(store, "endpoint_url", None))
    try:
        previous = read_manifest(to, client=client)
    except AstrokitError as exc:
        if "no backup" not in str(exc):
            raise
        previous = None
    entries = _store_files(store, include_raw)
    files = _hash_files(store, entries, previous, rehash, progress)
    objects_prefix = _key(prefix, "objects") + "/"
    listing = _list(client, bucket, objects_prefix)
    wanted = {f["sha256"]: f["size"] for f in files}
    present = _verified_present(client, bucket, listing, wanted, rehash=rehash, workers=workers)
    plan = diff_manifest(files, previous, present)
    source = {f["path"]: e for f, e in zip(files, entries)}
    bar = tqdm(total=sum(f["size"] for f in plan["upload"]), desc="uploading", unit="B", unit_scale=True,
               disable=not progress)
    try:
        with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
            futures = [pool.submit(_upload_one, client, bucket, _key(prefix, "objects", f["sha256"][:2], f["sha256"]),
                                   f, source[f["path"]][1], store, source[f["path"]][2], storage_class)
                       for f in plan["upload"]]
            for fut in as_completed(futures):
                bar.update(fut.result()["size"])
    except (ClientError, BotoCoreError) as exc:
        msg = f"backup to s3://{bucket}/{prefix} interrupted: {_client_error(exc)}; run it again to complete"
        raise AstrokitError(msg) from exc
    finally:
        bar.close()
    uploaded = {f["sha256"] for f in plan["upload"]}
    classes = {k.rsplit("/", 1)[-1]: v["storage_class"] for k, v in listing.items()}
    for f in files:
        f["storage_class"] = storage_class if f["sha256"] in uploaded else classes.get(f["sha256"], storage_class)
        f["key"] = _key(prefix, "objects", f["sha256"][:2], f["sha256"])
    created = _now()
    backup_id = created.strftime("%Y%m%dT%H%M%S%fZ")
    manifest = {"format": MANIFEST_FORMAT, "backup_id": backup_id, "created_at": created.isoformat(),
                "source": str(store.root), "host": socket.gethostname(), "astrokit_version": astrokit.__version__,
                "include_raw": bool(include_raw), "bytes": sum(f["size"] for f in files),
                "uploaded": len(plan["upload"]), "uploaded_bytes": sum(f["size"] for f in plan["upload"]),
                "files": files}
    body = json.dumps(manifest, indent=1).encode()
    try:
        for name in (backup_id, "latest"):
            client.put_object(Bucket=bucket, Key=_key(prefix, "manifests", f"{name}.json"), Body=body,
                              ContentType="application/json", ChecksumAlgorithm="SHA256")
    except (ClientError, BotoCoreError) as exc:
        msg = f"backup to s3://{bucket}/{prefix}: objects uploaded but the manifest was not written " \
              f"({_client_error(exc)}); run it again to complete"
        raise AstrokitError(msg) from exc
    return {"backup_id": backup_id, "files": len(files), "bytes": manifest["bytes"], "uploaded": manifest["uploaded"],
            "uploaded_bytes": manifest["uploaded_bytes"], "added": plan["added"], "changed": plan["changed"],
            "removed": plan["removed"], "manifest": f"s3://{bucket}/{_key(prefix, 'manifests', backup_id)}.json"}


# -- verification --------------------------------------------------------------------------------
def _check_object(client, bucket, f, full):
    """Return (status, detail) of one manifest entry's object: ok, missing, corrupted or archived."""
    from botocore.exceptions import ClientError

    try:
        head = client.head_object(Bucket=bucket, Key=f["key"], ChecksumMode="ENABLED")
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return "missing", "object not found"
        raise
    if int(head["ContentLength"]) != f["size"]:
        return "corrupted", f"size {head['ContentLength']} bytes, expected {f['size']}"
    stored = head.get("ChecksumSHA256")
    if stored and "-" not in stored and stored != _b64(f["sha256"]):
        return "corrupted", "S3's SHA-256 checksum differs from the manifest"
    if head.get("StorageClass", "STANDARD") in _ARCHIVED and "ongoing-request=\"false\"" not in head.get(
            "Restore", ""):
        return ("ok" if stored else "archived"), "archived: checked by S3's stored checksum only"
    if not full and stored:
        return "ok", "S3 checksum"
    digest = _sha256_stream(client.get_object(Bucket=bucket, Key=f["key"])["Body"])
    if digest != f["sha256"]:
        return "corrupted", f"content SHA-256 {digest[:12]}..., expected {f['sha256'][:12]}..."
    return "ok", "re-read and hashed"


def verify_backup(to, backup_id="latest", *, full=True, workers=4, client=None, progress=True):
    """Check every object of a backup against its manifest.

    Each object must exist, have the manifest's size and, when S3 keeps a
    ``ChecksumSHA256`` for it, that checksum. With ``full=True`` (default)
    each object is also read back and hashed, which catches an object
    overwritten without a checksum. Objects in GLACIER / DEEP_ARCHIVE cannot
    be read without a retrieval and are checked by their stored checksum.

    Parameters
    ----------
    to : str
        ``s3://bucket/prefix`` of the backups.
    backup_id : str
        Backup to check (default ``latest``).
    full : bool
        Re-read and hash every readable object.
    workers : int
        Parallel checks.
    client : botocore.client.S3, optional
        Client.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        ``backup_id``, ``checked``, ``ok``, ``problems`` (list of dicts with ``path``, ``key``,
        ``status`` (missing / corrupted / archived) and ``detail``).

    Raises
    ------
    AstrokitError
        If the manifest cannot be read or the bucket cannot be reached.
    """
    from botocore.exceptions import BotoCoreError, ClientError
    from tqdm.auto import tqdm

    bucket, _ = _target(to)
    client = client or s3_client()
    manifest = read_manifest(to, backup_id, client=client)
    unique = {f["sha256"]: f for f in manifest["files"]}
    status = {}
    try:
        with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
            futures = {pool.submit(_check_object, client, bucket, f, full): digest for digest, f in unique.items()}
            for fut in tqdm(as_completed(futures), total=len(futures), desc="verifying", unit="object",
                            disable=not progress):
                status[futures[fut]] = fut.result()
    except (ClientError, BotoCoreError) as exc:
        msg = f"verification of s3://{bucket} stopped: {_client_error(exc)}"
        raise AstrokitError(msg) from exc
    problems = [{"path": f["path"], "key": f"s3://{bucket}/{f['key']}", "status": status[f["sha256"]][0],
                 "detail": status[f["sha256"]][1]} for f in manifest["files"] if status[f["sha256"]][0] != "ok"]
    return {"backup_id": manifest["backup_id"], "checked": len(manifest["files"]),
            "ok": len(manifest["files"]) - len(problems), "problems": problems}


# -- restore -------------------------------------------------------------------------------------
def _restore_one(client, bucket, f, dest, overwrite):
    from botocore.exceptions import ClientError

    target = dest / f["path"]
    if target.is_file():
        with open(target, "rb") as fh:
            if _sha256_stream(fh) == f["sha256"]:
                return "kept"
        if not overwrite:
            msg = f"{target} exists with other content; restore into an empty folder or pass --overwrite"
            raise AstrokitError(msg)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.restore")
    try:
        try:
            body = client.get_object(Bucket=bucket, Key=f["key"])["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidObjectState":
                msg = (f"s3://{bucket}/{f['key']} ({f['path']}) is archived in {f.get('storage_class')}; "
                       f"request a retrieval first (astrokit restore ... --retrieve-days N) and retry when done")
                raise AstrokitError(msg) from exc
            raise
        h = hashlib.sha256()
        with open(tmp, "wb") as out:
            while chunk := body.read(_CHUNK):
                h.update(chunk)
                out.write(chunk)
        if h.hexdigest() != f["sha256"]:
            msg = f"s3://{bucket}/{f['key']} ({f['path']}) is corrupted: its SHA-256 differs from the manifest"
            raise AstrokitError(msg)
        os.utime(tmp, (f["mtime"], f["mtime"]))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return "restored"


def restore(source, dest, *, backup_id="latest", overwrite=False, retrieve_days=None, workers=4, client=None,
            progress=True):
    """Restore a backup into a folder, byte-identical (each file's SHA-256 is checked before it is renamed in place).

    Files already present with the right content are kept (a rerun resumes);
    modification times are set from the manifest; the DuckDB views file is
    rebuilt afterwards when the folder is a store.

    Parameters
    ----------
    source : str
        ``s3://bucket/prefix`` of the backups.
    dest : path-like
        Folder to restore into (created).
    backup_id : str
        Backup to restore (default ``latest``).
    overwrite : bool
        Replace files of ``dest`` whose content differs (default: refuse).
    retrieve_days : int, optional
        For objects in GLACIER / DEEP_ARCHIVE: request a (Bulk) retrieval for this many days
        and stop; run the restore again once S3 has made the copies.
    workers : int
        Parallel downloads.
    client : botocore.client.S3, optional
        Client.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        ``backup_id``, ``restored``, ``kept``, ``bytes``, ``dest``, and ``retrieval_requested`` (a count)
        when a retrieval was requested.

    Raises
    ------
    AstrokitError
        If the manifest cannot be read, a file exists with other content (without ``overwrite``),
        an object is missing, archived or corrupted, or the bucket cannot be reached.
    """
    from botocore.exceptions import BotoCoreError, ClientError
    from tqdm.auto import tqdm

    bucket, _ = _target(source)
    client = client or s3_client()
    manifest = read_manifest(source, backup_id, client=client)
    dest = Path(dest).expanduser().resolve()
    if dest.exists() and not dest.is_dir():
        msg = f"restore target {dest} exists and is not a folder"
        raise AstrokitError(msg)
    for f in manifest["files"]:
        if Path(f["path"]).is_absolute() or ".." in Path(f["path"]).parts:
            msg = f"manifest {manifest['backup_id']}: unsafe path {f['path']!r}; refusing to restore"
            raise AstrokitError(msg)
    if retrieve_days:
        archived = {f["key"] for f in manifest["files"] if f.get("storage_class") in _ARCHIVED}
        try:
            for key in sorted(archived):
                client.restore_object(Bucket=bucket, Key=key,
                                      RestoreRequest={"Days": int(retrieve_days), "GlacierJobParameters":
                                                      {"Tier": "Bulk"}})
        except (ClientError, BotoCoreError) as exc:
            msg = f"s3://{bucket}: retrieval request failed ({_client_error(exc)})"
            raise AstrokitError(msg) from exc
        return {"backup_id": manifest["backup_id"], "restored": 0, "kept": 0, "bytes": 0, "dest": str(dest),
                "retrieval_requested": len(archived)}
    dest.mkdir(parents=True, exist_ok=True)
    counts = {"restored": 0, "kept": 0}
    bar = tqdm(total=manifest["bytes"], desc="restoring", unit="B", unit_scale=True, disable=not progress)
    try:
        with ThreadPoolExecutor(max_workers=max(1, int(workers))) as pool:
            futures = {pool.submit(_restore_one, client, bucket, f, dest, overwrite): f for f in manifest["files"]}
            for fut in as_completed(futures):
                counts[fut.result()] += 1
                bar.update(futures[fut]["size"])
    except ClientError as exc:
        msg = f"restore from s3://{bucket} failed: {_client_error(exc)}"
        raise AstrokitError(msg) from exc
    except BotoCoreError as exc:
        msg = f"restore from s3://{bucket} interrupted: {_client_error(exc)}; run it again to resume"
        raise AstrokitError(msg) from exc
    finally:
        bar.close()
    if (dest / "tables").is_dir():
        from astrokit.store._store import Store

        Store(dest).refresh_views()
    return {"backup_id": manifest["backup_id"], **counts, "bytes": manifest["bytes"], "dest": str(dest)}


# -- lifecycle and cost --------------------------------------------------------------------------
def set_lifecycle(to, *, glacier_after=None, deep_archive_after=None, client=None):
    """Add (or replace) the lifecycle rule that moves the backup's objects to colder storage classes.

    The rule ``astrokit-backup:<prefix>`` applies to ``<prefix>/objects/`` only
    (manifests stay in STANDARD); other rules of the bucket are kept.

    Parameters
    ----------
    to : str
        ``s3://bucket/prefix`` of the backups.
    glacier_after : int, optional
        Days after upload to move objects to GLACIER (Flexible Retrieval).
    deep_archive_after : int, optional
        Days after upload to move objects to DEEP_ARCHIVE; must exceed ``glacier_after``.

    client : botocore.client.S3, optional
        Client.

    Returns
    -------
    dict
        The rule written.

    Raises
    ------
    AstrokitError
        If neither number of days is given, they are negative or out of order, or S3 refuses the rule.

    References
    ----------
    .. [1] Amazon S3 User Guide, "Transitioning objects using Amazon S3 Lifecycle",
       https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-transition-general-considerations.html
    """
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = _target(to)
    if glacier_after is None and deep_archive_after is None:
        msg = "give --glacier-after DAYS and/or --deep-archive-after DAYS"
        raise AstrokitError(msg)
    days = [d for d in (glacier_after, deep_archive_after) if d is not None]
    if any(int(d) < 0 for d in days):
        msg = f"lifecycle days must be >= 0, got {days}"
        raise AstrokitError(msg)
    if glacier_after is not None and deep_archive_after is not None and int(deep_archive_after) <= int(glacier_after):
        msg = (f"--deep-archive-after ({deep_archive_after}) must be later than --glacier-after ({glacier_after}); "
               "GLACIER objects are billed for at least 90 days")
        raise AstrokitError(msg)
    client = client or s3_client()
    transitions = [{"Days": int(d), "StorageClass": c} for d, c in ((glacier_after, "GLACIER"),
                                                                    (deep_archive_after, "DEEP_ARCHIVE"))
                   if d is not None]
    rule_id = f"astrokit-backup:{prefix or '/'}"[:255]
    rule = {"ID": rule_id, "Status": "Enabled", "Filter": {"Prefix": _key(prefix, "objects") + "/"},
            "Transitions": transitions}
    try:
        try:
            rules = client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
                raise
            rules = []
        rules = [r for r in rules if r.get("ID") != rule_id] + [rule]
        client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
    except (ClientError, BotoCoreError) as exc:
        msg = f"s3://{bucket}: cannot set the lifecycle rule ({_client_error(exc)})"
        raise AstrokitError(msg) from exc
    return rule


def estimate_cost(objects):
    """Estimate the monthly storage cost of objects, per storage class and as if all were in each class.

    Parameters
    ----------
    objects : iterable of (int, str)
        ``(size_bytes, storage_class)`` per object.

    Returns
    -------
    dict
        ``by_class``: {class: {'objects', 'bytes', 'usd_per_month'}} for the classes present;
        ``usd_per_month``: the total now; ``if_all_in``: {class: USD per month if every
        object were in that class}; ``source``: where the prices come from.

    Raises
    ------
    AstrokitError
        If a storage class has no known price.

    Notes
    -----
    The estimate follows S3's storage billing: per GB-month (GB = 2**30 bytes)
    at `STORAGE_PRICES`; STANDARD_IA and GLACIER_IR bill at least 128 KB per
    object; GLACIER and DEEP_ARCHIVE add 32 KB per object at the class price
    plus 8 KB at the STANDARD price. Requests, retrievals, minimum storage
    durations (30/90/90/180 days) and transfer are not included.

    References
    ----------
    .. [1] Amazon S3 pricing, https://aws.amazon.com/s3/pricing/ (see `PRICES_SOURCE`).
    """
    objects = list(objects)

    def cost(size, cls):
        if cls not in STORAGE_PRICES:
            msg = f"no price for storage class {cls!r}; known: {', '.join(STORAGE_PRICES)}"
            raise AstrokitError(msg)
        billed = max(size, _MIN_OBJECT_BYTES.get(cls, 0))
        extra_class, extra_standard = _ARCHIVE_OVERHEAD.get(cls, (0, 0))
        return ((billed + extra_class) * STORAGE_PRICES[cls] + extra_standard * STORAGE_PRICES["STANDARD"]) / _GB

    by_class = {}
    for size, cls in objects:
        row = by_class.setdefault(cls, {"objects": 0, "bytes": 0, "usd_per_month": 0.0})
        row["objects"] += 1
        row["bytes"] += int(size)
        row["usd_per_month"] += cost(int(size), cls)
    return {"by_class": by_class, "usd_per_month": sum(r["usd_per_month"] for r in by_class.values()),
            "if_all_in": {c: sum(cost(int(s), c) for s, _ in objects) for c in STORAGE_PRICES},
            "source": PRICES_SOURCE}


def storage_report(to, *, client=None):
    """Estimate the monthly storage cost of the backup objects under ``s3://bucket/prefix`` (see `estimate_cost`).

    Parameters
    ----------
    to : str
        ``s3://bucket/prefix`` of the backups.
    client : botocore.client.S3, optional
        Client.

    Returns
    -------
    dict
        `estimate_cost` of every object under the prefix (content objects and manifests).

    Raises
    ------
    AstrokitError
        If the bucket cannot be listed.
    """
    bucket, prefix = _target(to)
    client = client or s3_client()
    listing = _list(client, bucket, _key(prefix, "") + "/" if prefix else "")
    return estimate_cost((v["size"], v["storage_class"]) for v in listing.values())
