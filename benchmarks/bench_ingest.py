"""Ingest throughput against ccdproc's ImageFileCollection, on the same folder in the same run.

Run from the repository root::

    python benchmarks/bench_ingest.py [--n 2000] [--folder DIR] [--no-ifc]

The folder is built from the real headers of the sample data (DATA.md): the
GOTO frame's 424-card header (TAN-SIP WCS) and the raw SAAO frame's 31-card
header, copied N times with varied keywords (DATE-OBS over 60 nights, OBJECT,
FILTER, IMAGETYP, EXPTIME, CCD-TEMP, CRVAL1/2) and a small 64 x 64 int16 image
(NAXIS1/2 set to match), so the run measures header work, not disk bandwidth.
All files are in one folder, because ImageFileCollection does not recurse.

Measured (wall time, best of ``--repeat``, warm page cache, one process, imports
done before the clocks start for both tools):

- astrokit first ingest into an empty store (stat, SHA-256 of every file,
  header scan, normalisation, WCS footprint, all-NaN sample, Parquet batch
  write, sessions and calibration matching), in this process;
- the same with the files read in parallel, in chunks, on ``--workers`` Dask worker processes
  (`astrokit.pipeline.map_units` on a `~distributed.LocalCluster`, as ``astrokit run ingest
  --workers N`` does; the cluster is started and its workers import astrokit before the clock starts,
  as a pipeline run has its client already);
- astrokit unchanged re-scan (walk + stat + compare with the catalog);
- ImageFileCollection(folder) (reads every header, builds its summary table),
  and its ``refresh()`` (it has no incremental mode);
- a DuckDB query over the frames view, and the number of Parquet files.
"""

import argparse
import os
import platform
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from astrokit.datasets import get_path

_OBJECTS = ["M31", "M42", "NGC7000", "IC1396", "Virgo_survey_T20"]
_FILTERS = ["Lum", "Red", "Green", "Blue", "Ha", "OIII"]
_TYPES = ["Light Frame"] * 7 + ["Dark Frame", "Flat Field", "Bias Frame"]


def _template(path):
    raw = Path(path).read_bytes()
    end = 0
    while True:
        block = raw[end:end + 2880]
        end += 2880
        if any(block[i:i + 3] == b"END" and not block[i + 3:i + 80].strip() for i in range(0, 2880, 80)):
            break
    cards = [raw[i:i + 80].decode("ascii") for i in range(0, end, 80)]
    cards = [c for c in cards if c.strip() and not c.startswith("END     ")]
    return cards


def _set(cards, key, value):
    card = f"{key:<8}= {value:>20}".ljust(80)[:80]
    for i, c in enumerate(cards):
        if c[:8].rstrip() == key and c[8:10] == "= ":
            cards[i] = card
            return
    cards.append(card)


def make_library(folder, n, seed=0):
    """Write ``n`` small FITS files with real headers and varied keywords into ``folder``; return the folder."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    templates = [_template(get_path("goto_reference")), _template(get_path("ccd_raw"))]
    data = (rng.normal(1000, 10, (64, 64))).astype(">i2").tobytes()
    data += b"\0" * (-len(data) % 2880)
    for i in range(n):
        cards = list(templates[i % 2])
        night = 60000 + (i * 7) % 60
        hours = 20 + (i % 9) * 0.7
        day = np.datetime64("1858-11-17") + np.timedelta64(night, "D")
        stamp = f"{day}T{int(hours) % 24:02d}:{int(hours % 1 * 60):02d}:{i % 60:02d}"
        kind = _TYPES[i % len(_TYPES)]
        for key, value in [("BITPIX", "16"), ("NAXIS", "2"), ("NAXIS1", "64"), ("NAXIS2", "64"),
                           ("DATE-OBS", f"'{stamp}'"), ("OBJECT", f"'{_OBJECTS[i % 5]}'"),
                           ("FILTER", f"'{_FILTERS[(i // 3) % 6]}'"), ("IMAGETYP", f"'{kind}'"),
                           ("EXPTIME", f"{[60.0, 120.0, 300.0][i % 3]}"), ("CCD-TEMP", f"{-10 + (i % 3) * 0.5}"),
                           ("FRAMENUM", str(i))]:
            _set(cards, key, value)
        for key in ("BZERO", "BSCALE", "MJD-OBS", "UT", "DATE", "CHECKSUM", "DATASUM"):
            cards = [c for c in cards if c[:8].rstrip() != key]
        if any(c.startswith("CRVAL1") for c in cards):
            _set(cards, "CRVAL1", f"{187.48 + rng.normal(0, 0.01):.8f}")
            _set(cards, "CRVAL2", f"{14.62 + rng.normal(0, 0.01):.8f}")
        header = "".join(cards) + "END".ljust(80)
        header += " " * (-len(header) % 2880)
        (folder / f"frame_{i:05d}.fits").write_bytes(header.encode("ascii") + data)
    return folder


def _time(func):
    t0 = time.perf_counter()
    out = func()
    return time.perf_counter() - t0, out


def _parallel_ingest(folder, tmp, workers, repeat):
    """Best time of ``repeat`` first ingests with the files read on ``workers`` Dask worker processes."""
    import functools

    from astrokit.catalog import ingest
    from astrokit.pipeline import dask_client, map_units
    from astrokit.store import Store

    with dask_client(workers=workers) as client:
        client.run(lambda: __import__("astrokit.catalog._ingest"))  # worker imports, outside the clock
        executor = functools.partial(map_units, client=client, progress=False)
        times = []
        for rep in range(repeat):
            store = Store(tmp / f"store_par{rep}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                times.append(_time(lambda store=store: ingest([folder], store, progress=False,
                                                              executor=executor))[0])
    return min(times)


def main(argv=None):
    """Build the library, run both tools, print the figures side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="number of files (default 2000)")
    parser.add_argument("--folder", default=None, help="where to build it (default a temporary folder, removed)")
    parser.add_argument("--no-ifc", action="store_true", help="skip ImageFileCollection (e.g. for 10,000 files)")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs of each (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes of the parallel run (0: none)")
    args = parser.parse_args(argv)

    from astrokit.catalog import ingest
    from astrokit.store import Store

    tmp = tempfile.mkdtemp(prefix="bench_ingest_")
    folder = Path(args.folder) if args.folder else Path(tmp) / "library"
    try:
        dt_make, _ = _time(lambda: make_library(folder, args.n))
        print(f"python {platform.python_version()}, {os.cpu_count()} CPUs; built {args.n} files in {dt_make:.1f} s "
              f"({sum(p.stat().st_size for p in folder.iterdir()) / 1e6:.1f} MB)")
        import duckdb  # noqa: F401 - imports are outside the timings, for both tools

        firsts, rescans = [], []
        for rep in range(args.repeat):  # best of --repeat, each first ingest into a fresh store
            store = Store(Path(tmp) / f"store{rep}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dt, frames = _time(lambda store=store: ingest([folder], store, progress=False))
                firsts.append(dt)
                rescans.append(_time(lambda store=store: ingest([folder], store, progress=False))[0])
        dt_first, dt_rescan = min(firsts), min(rescans)
        dt_par = _parallel_ingest(folder, Path(tmp), args.workers, args.repeat) if args.workers else None
        ok = sum(s == "ok" for s in frames.column("status").to_pylist())
        n_parquet = len([p for p in store.table_dir("frames").glob("*.parquet") if not p.name.startswith("_")])
        dt_query, stats = _time(lambda: store.sql(
            "select object, band, count(*) n, sum(exptime) s from frames where status = 'ok' group by all"))
        print(f"astrokit first ingest : {dt_first:8.2f} s  {args.n / dt_first:9.0f} files/s  ({ok} ok rows)")
        if dt_par is not None:
            print(f"astrokit, {args.workers} workers   : {dt_par:8.2f} s  {args.n / dt_par:9.0f} files/s  "
                  f"(files read on Dask workers)")
        print(f"astrokit re-scan      : {dt_rescan:8.2f} s  {args.n / dt_rescan:9.0f} files/s  (unchanged)")
        print(f"frames: {n_parquet} Parquet file(s); group-by query over the view {dt_query * 1e3:.0f} ms "
              f"({stats.num_rows} groups)")
        if not args.no_ifc:
            from ccdproc import ImageFileCollection

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ifcs = [_time(lambda: ImageFileCollection(str(folder))) for _ in range(args.repeat)]
                dt_ifc, ifc = min(ifcs, key=lambda t: t[0])
                dt_ifc2 = min(_time(ifc.refresh)[0] for _ in range(args.repeat))
            print(f"ImageFileCollection   : {dt_ifc:8.2f} s  {args.n / dt_ifc:9.0f} files/s  "
                  f"({len(ifc.summary)} rows)")
            print(f"IFC refresh()         : {dt_ifc2:8.2f} s  {args.n / dt_ifc2:9.0f} files/s")
            print(f"ratio first ingest    : astrokit is {dt_ifc / dt_first:.1f}x faster than ImageFileCollection "
                  f"(one process)")
            if dt_par is not None:
                print(f"ratio first ingest    : astrokit is {dt_ifc / dt_par:.1f}x faster than ImageFileCollection "
                      f"({args.workers} workers; goal >= 10x)")
            print(f"ratio unchanged scan  : astrokit is {dt_ifc2 / dt_rescan:.1f}x faster than IFC refresh()")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
