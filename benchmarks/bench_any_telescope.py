"""The main job on frames of other instruments (issue 14): recovery, false-candidate rate and time per stage.

Run from the repository root::

    python benchmarks/bench_any_telescope.py [--instruments GOTO,ZTF,...] [--no-wcs] [--seed 14] [--keep DIR]

For each instrument of ``astrokit.datasets.GALLERY`` (GOTO, ZTF quadrant, DECam/DES,
raw SAAO, HST ACS, the AIS series, an ESO ISAAC frame) the real frame becomes a folder
of "real sky, synthetic epoch" FITS files in the instrument's own header conventions
(`make_gallery_epochs`: the original as the reference, three epochs on three later
nights with shift, rotation, seeing, noise and injected point sources; the AIS series
gives four real epochs, origin unverified), and ``astrokit run --data DIR --store S``
processes it with every stage. Printed per instrument:

- the exit code and how many stages were ok;
- fakes with S/N >= 10 in the science epochs, how many are recovered among positive
  candidates scored real_bogus >= 0.5 (matched within max(1.5 px, 1.5 FWHM)), and the
  recovery (acceptance: >= 90 %);
- unmatched positive candidates scored >= 0.5, the area searched and their rate per Mpx
  (acceptance: <= 10);
- astrokit's wall time per stage (s) and for the whole command. There is no reference
  tool that runs this whole job, so no ratio is printed; the stage times are the anchor
  for later runs.

``--no-wcs`` adds the same GOTO, ZTF and DECam frames with their WCS removed (solved
by astrometry.net or aligned to a frame that has one).
"""

import argparse
import os
import platform
import tempfile
from pathlib import Path

from astrokit.datasets import GALLERY, gallery_table, run_gallery

STRIPPED = [name for name, spec in GALLERY.items() if "nowcs" in spec]  # GOTO, ZTF, DECam


def main():
    """Build each instrument's folder, run the main job on it and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instruments", default=",".join(GALLERY), help="comma-separated GALLERY names")
    parser.add_argument("--no-wcs", action="store_true", help="also the GOTO, ZTF and DECam frames without WCS")
    parser.add_argument("--seed", type=int, default=14, help="seed of the synthetic epochs")
    parser.add_argument("--keep", default=None, help="folder to keep the epochs and stores in (default: temporary)")
    args = parser.parse_args()
    names = [n.strip() for n in args.instruments.split(",") if n.strip()]
    jobs = [(n, False) for n in names] + ([(n, True) for n in STRIPPED if n in names] if args.no_wcs else [])

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("data: real frames (DATA.md); real sky, synthetic epochs (AIS: real epochs, origin unverified)")
    with tempfile.TemporaryDirectory(prefix="bench_any_telescope_") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        rows = []
        for name, stripped in jobs:
            result = run_gallery(name, root / ("nowcs" if stripped else "wcs"), seed=args.seed, nowcs=stripped)
            rows.append((name + (" (no WCS)" if stripped else ""), result))
            print(f"  {name}{' (no WCS)' if stripped else ''}: done in {result['elapsed']:.0f} s "
                  f"({GALLERY[name]['what']})", flush=True)
    print()
    print("acceptance (issue 14): recovery >= 90 % of fakes with S/N >= 10 at real_bogus >= 0.5; <= 10 false/Mpx")
    for line in gallery_table(rows):
        print(line)


if __name__ == "__main__":
    main()
