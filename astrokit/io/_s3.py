"""Objects in S3-compatible storage: listing, and local copies for readers that need a file (boto3)."""

import os
from pathlib import Path

from astrokit.exceptions import DataError

__all__ = ["is_s3", "split_s3", "s3_client", "s3_endpoint_url", "s3_region", "s3_filesystem", "list_s3", "local_copy",
           "s3_cache_dir"]


def is_s3(path):
    """Return whether ``path`` is an ``s3://`` URI.

    Parameters
    ----------
    path : str or path-like
        A path or URI.

    Returns
    -------
    bool
    """
    return str(path).startswith("s3://")


def split_s3(uri):
    """Split ``s3://bucket/key`` into ``(bucket, key)``.

    Parameters
    ----------
    uri : str
        The URI.

    Returns
    -------
    tuple of str

    Raises
    ------
    DataError
        If the URI has no bucket.
    """
    rest = str(uri)[len("s3://"):]
    bucket, _, key = rest.partition("/")
    if not bucket:
        msg = f"{uri}: an S3 URI is s3://BUCKET/KEY"
        raise DataError(msg)
    return bucket, key


def s3_endpoint_url(endpoint_url=None):
    """Return the S3 endpoint: ``endpoint_url``, else ``$AWS_ENDPOINT_URL_S3`` or ``$AWS_ENDPOINT_URL``, else None.

    None means AWS itself.

    Parameters
    ----------
    endpoint_url : str, optional
        An explicit endpoint (``http://127.0.0.1:9000`` for a local MinIO or moto server).

    Returns
    -------
    str or None
    """
    return endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_region():
    """Return the AWS region: ``$AWS_REGION`` or ``$AWS_DEFAULT_REGION``, else ``us-east-1`` (the S3 default).

    Returns
    -------
    str
    """
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def s3_client(endpoint_url=None):
    """Return a boto3 S3 client; credentials come from the standard AWS environment and profiles.

    Parameters
    ----------
    endpoint_url : str, optional
        An S3-compatible service (MinIO, moto, Ceph...); default `s3_endpoint_url` (``$AWS_ENDPOINT_URL``) or AWS.

    Returns
    -------
    botocore.client.S3
        With a connect timeout of 5 s, a read timeout of 6 s (``$ASTROKIT_S3_READ_TIMEOUT``) and 3
        attempts in all, so a frozen endpoint fails in under 30 s.
    """
    import boto3
    from botocore.config import Config

    # a frozen endpoint fails within ~30 s: 5 s to connect, 6 s per read, 3 attempts in all (AWS SDK "standard"
    # retry mode); $ASTROKIT_S3_READ_TIMEOUT raises the read timeout for slow links
    read_timeout = float(os.environ.get("ASTROKIT_S3_READ_TIMEOUT", "6"))
    config = Config(connect_timeout=5, read_timeout=read_timeout, retries={"total_max_attempts": 3, "mode": "standard"})
    return boto3.client("s3", endpoint_url=s3_endpoint_url(endpoint_url), config=config)


def s3_filesystem(endpoint_url=None):
    """Return a `pyarrow.fs.S3FileSystem` for AWS or an S3-compatible service.

    Credentials come from the AWS SDK's default chain (``$AWS_ACCESS_KEY_ID``
    / ``$AWS_SECRET_ACCESS_KEY`` / ``$AWS_SESSION_TOKEN``, ``$AWS_PROFILE``
    and ``~/.aws/credentials``, instance roles), the region from `s3_region`.
    Each object is written with one request (a PUT, or a multipart upload
    completed in one step for large objects), so readers never see a partial
    object.

    Parameters
    ----------
    endpoint_url : str, optional
        ``http(s)://host:port`` of an S3-compatible service; default `s3_endpoint_url`.

    Returns
    -------
    pyarrow.fs.S3FileSystem

    References
    ----------
    .. [1] Apache Arrow, "Filesystem Interface: S3",
       https://arrow.apache.org/docs/python/filesystems.html#s3
    """
    from pyarrow import fs

    endpoint = s3_endpoint_url(endpoint_url)
    kwargs = {"region": s3_region(), "connect_timeout": 5.0, "request_timeout": 20.0,
              "retry_strategy": fs.AwsStandardS3RetryStrategy(max_attempts=3)}
    if endpoint:
        scheme, _, host = endpoint.partition("://")
        kwargs.update(endpoint_override=host.rstrip("/") or endpoint, scheme=scheme if host else "https")
    return fs.S3FileSystem(**kwargs)


def list_s3(uri, *, client=None):
    """List the objects under an ``s3://bucket/prefix`` (recursively), skipping hidden names and folders.

    Parameters
    ----------
    uri : str
        ``s3://bucket/prefix`` (a prefix ending in ``/`` is a folder; otherwise it may also name one object).
    client : botocore.client.S3, optional
        Client (default `s3_client`).

    Returns
    -------
    list of tuple
        ``(uri, size_bytes, mtime)`` per object, ``mtime`` the LastModified time in Unix seconds.

    Raises
    ------
    DataError
        If the bucket cannot be listed (missing, no permission, endpoint unreachable).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    client = client or s3_client()
    bucket, prefix = split_s3(uri)
    out = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/") or any(part.startswith(".") for part in key.split("/")):
                    continue
                out.append((f"s3://{bucket}/{key}", int(obj["Size"]), obj["LastModified"].timestamp()))
    except (ClientError, BotoCoreError) as exc:
        msg = f"{uri}: cannot list the bucket ({str(exc).splitlines()[0]})"
        raise DataError(msg) from exc
    return sorted(out)


def s3_cache_dir():
    """Return the folder of local copies of S3 objects: ``$ASTROKIT_S3_CACHE`` or ``~/.cache/astrokit/s3``.

    Returns
    -------
    pathlib.Path
    """
    return Path(os.environ.get("ASTROKIT_S3_CACHE") or Path.home() / ".cache" / "astrokit" / "s3").expanduser()


def local_copy(uri, *, client=None, size=None, mtime=None):
    """Return a local file with the content of an S3 object, downloading it when the cached copy is stale.

    The copy lives under `s3_cache_dir` as ``<bucket>/<key>``; it is
    re-downloaded when its size or the object's LastModified time differ.
    Downloads go to a temporary name and are renamed when complete.

    Parameters
    ----------
    uri : str
        ``s3://bucket/key``.
    client : botocore.client.S3, optional
        Client (default `s3_client`).
    size, mtime : int and float, optional
        The object's size and LastModified (Unix seconds), when already known from a listing.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    DataError
        If the object cannot be read.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    client = client or s3_client()
    bucket, key = split_s3(uri)
    target = s3_cache_dir() / bucket / key
    try:
        if size is None or mtime is None:
            head = client.head_object(Bucket=bucket, Key=key)
            size, mtime = int(head["ContentLength"]), head["LastModified"].timestamp()
        if target.is_file() and target.stat().st_size == size and target.stat().st_mtime == mtime:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        client.download_file(bucket, key, str(tmp))
        os.utime(tmp, (mtime, mtime))
        os.replace(tmp, target)
    except (ClientError, BotoCoreError) as exc:
        msg = f"{uri}: cannot read the object ({str(exc).splitlines()[0]})"
        raise DataError(msg) from exc
    return target
