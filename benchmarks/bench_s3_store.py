"""Side by side: the same store operations on a local folder and on S3 (moto's server on 127.0.0.1); backups.

The rows are the real photometry of the GOTO frame (DATA.md), written as N units of
work (one Parquet object each, as the photometry stage writes one per frame); the
artifacts are the real 13.7 MB GOTO FITS frames. For each operation the script
prints the time on a folder store, on an S3 store and their ratio, then the
throughput of `astrokit backup`, `backup verify` and `restore` of the folder store.

moto runs on loopback and keeps objects in memory: the S3 figures measure the
cost of the S3 API path (HTTP requests, pyarrow S3 filesystem, boto3), not the
latency or bandwidth of a real S3 region. Pass ``--endpoint-url`` (and AWS
credentials) to measure a real service instead.

Run from the repository root::

    python benchmarks/bench_s3_store.py [--units 20] [--endpoint-url URL --bucket NAME]
"""

import argparse
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _moto():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}"


def _timed(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--units", type=int, default=20, help="units of work (Parquet objects) to write")
    p.add_argument("--endpoint-url", default=None, help="an S3 service instead of a local moto server")
    p.add_argument("--bucket", default=None, help="existing bucket (with --endpoint-url)")
    args = p.parse_args()

    proc = None
    if args.endpoint_url is None:
        for k, v in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                     "AWS_DEFAULT_REGION": "us-east-1"}.items():
            os.environ.setdefault(k, v)
        proc, args.endpoint_url = _moto()
    os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    work = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    os.environ["ASTROKIT_S3_CACHE"] = str(work / "s3cache")
    try:
        import boto3
        import pyarrow.compute as pc

        from astrokit.datasets import sample_frames_dir
        from astrokit.pipeline import run_ingest, run_photometry
        from astrokit.store import Store, backup, restore, verify_backup

        bucket = args.bucket or f"bench-{os.getpid()}"
        client = boto3.client("s3")
        if args.bucket is None:
            client.create_bucket(Bucket=bucket)
        frames = sample_frames_dir()
        seed = Store(work / "seed")
        run_ingest(seed, [frames], progress=False)
        run_photometry(seed, progress=False)
        eid = seed.sql("select exposure_id, count(*) n from sources group by 1 order by n desc limit 1").to_pylist()
        rows = seed.read("sources").filter(pc.field("exposure_id") == eid[0]["exposure_id"])
        fits_bytes = [(frames / f).read_bytes() for f in ("goto_1.fits", "goto_2.fits")]

        local, s3 = Store(work / "local"), Store(f"s3://{bucket}/bench")
        results = []

        def side_by_side(name, fn, repeat=3):
            t_local, _ = _timed(lambda: fn(local), repeat)
            t_s3, _ = _timed(lambda: fn(s3), repeat)
            results.append((name, t_local, t_s3))

        side_by_side(f"write {args.units} units x {rows.num_rows} sources",
                     lambda st: [st.write("sources", rows, key=f"u{i:03d}") for i in range(args.units)])
        side_by_side("read the sources table", lambda st: st.read("sources"))
        side_by_side("sql: median fwhm per unit",
                     lambda st: st.sql("select exposure_id, median(fwhm) from sources group by 1"))
        def put_artifacts(st):  # delete first: artifacts are content-addressed and never written twice
            for b in fits_bytes:
                digest = hashlib.sha256(b).hexdigest()
                st.delete_file(f"artifacts/sha256/{digest[:2]}/{digest}.fits")
                st.put_artifact(b, "fits")

        def lock_cycle(st):
            with st.lock():
                pass

        side_by_side("delete + put 2 x 13.7 MB FITS artifacts", put_artifacts, repeat=2)
        side_by_side("run lock take + release", lock_cycle)

        print(f"\nstore operations (best of 3; units of {rows.num_rows} real GOTO sources; S3 = {args.endpoint_url})")
        print(f"{'operation':42s} {'folder s':>9s} {'S3 s':>9s} {'S3/folder':>9s}")
        for name, a, b in results:
            print(f"{name:42s} {a:9.3f} {b:9.3f} {b / a:9.1f}x")

        # backups of the folder store, with the raw frames
        shutil.copytree(seed.root, work / "tobackup")
        src = Store(work / "tobackup")
        to = f"s3://{bucket}/backups"
        t0 = time.perf_counter()
        first = backup(src, to, include_raw=True, progress=False)
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        second = backup(src, to, include_raw=True, progress=False)
        t_second = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = verify_backup(to, progress=False)
        t_verify = time.perf_counter() - t0
        t0 = time.perf_counter()
        restore(to, work / "restored", progress=False)
        t_restore = time.perf_counter() - t0
        mb = first["bytes"] / 1e6
        print(f"\nbackup of a store with the 3 raw frames: {first['files']} files, {mb:.1f} MB")
        print(f"{'first backup (hash + upload)':42s} {t_first:9.2f} s  {mb / t_first:7.1f} MB/s")
        print(f"{'second backup (nothing changed)':42s} {t_second:9.2f} s  uploaded {second['uploaded']} objects")
        print(f"{'verify (re-read + SHA-256 every object)':42s} {t_verify:9.2f} s  {mb / t_verify:7.1f} MB/s, "
              f"{len(report['problems'])} problems")
        print(f"{'restore (download + SHA-256)':42s} {t_restore:9.2f} s  {mb / t_restore:7.1f} MB/s")
        print(f"\nload average at the end: {os.getloadavg()}")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
