"""`astrokit equipment list|stats` (issue 21): every camera and telescope of real catalogs, specs vs WCS scale."""

import json

import pytest

from astrokit.catalog import equipment_list, equipment_stats, ingest, plate_scale
from astrokit.cli import main
from astrokit.datasets import get_folder, sample_frames_dir


def test_plate_scale_formula():
    # a 3.76 um pixel on a 2032 mm focal length: 0.3817 "/px (206265 * 3.76e-3 / 2032)
    assert plate_scale(3.76, 2032) == pytest.approx(0.38167, abs=1e-5)
    assert plate_scale(3.76, 2032, binning=2) == pytest.approx(2 * plate_scale(3.76, 2032))
    assert plate_scale(None, 2032) != plate_scale(None, 2032)  # NaN: unknown
    assert plate_scale(3.76, 0) != plate_scale(3.76, 0)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    from astrokit.store import Store

    root = tmp_path_factory.mktemp("equipment") / "store"
    root.mkdir()
    store = Store(root)
    with pytest.warns(UserWarning):  # the ESO folder holds spectra and tables: recorded, with warnings
        ingest([sample_frames_dir(), get_folder("eso_prim")], store, progress=False)
    return store


@pytest.mark.realdata
def test_stats_list_every_camera_and_telescope_with_counts_and_integration(catalog, capsys):
    frames = catalog.sql("""select coalesce(telescope, 'unknown') t, coalesce(instrument, 'unknown') c,
                                   count(*) n, coalesce(sum(exptime) filter (where imagetyp = 'light'), 0) s
                            from frames where status = 'ok' group by all""").to_pylist()
    assert len({r["t"] for r in frames}) >= 3 and len({r["c"] for r in frames}) >= 3  # GOTO, SAAO, ESO's
    stats = equipment_stats(catalog).to_pylist()
    for r in frames:
        rows = [s for s in stats if (s["telescope"], s["camera"]) == (r["t"], r["c"])]
        assert sum(s["n_frames"] for s in rows) == r["n"]
        assert sum(s["integration_s"] for s in rows) == pytest.approx(r["s"])
    assert main(["equipment", "stats", "--store", str(catalog.root), "--format", "json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert len(printed) == len(stats) and {"telescope", "camera", "band", "integration_h"} <= set(printed[0])


@pytest.mark.realdata
def test_list_derives_the_pixel_scale_and_sets_it_beside_the_wcs(catalog, tmp_path, capsys):
    goto = catalog.sql("select telescope, instrument, median(pixel_scale) p from frames "
                       "where telescope like 'GOTO%' group by all").to_pylist()[0]
    spec = tmp_path / "equipment.toml"
    spec.write_text(f'[camera_specs."{goto["instrument"]}"]\npixel_size_um = 6.0\nwidth_px = 8176\n'
                    f'height_px = 6132\n[telescope_specs."{goto["telescope"]}"]\nfocal_length_mm = 1000.0\n'
                    'aperture_mm = 400.0\n')
    pieces, pairs = equipment_list(catalog, equipment=spec)
    kinds = {(r["kind"], r["name"]) for r in pieces.to_pylist()}
    assert ("camera", goto["instrument"]) in kinds and ("telescope", goto["telescope"]) in kinds
    cam = next(r for r in pieces.to_pylist() if r["name"] == goto["instrument"])
    assert cam["sensor_width_mm"] == pytest.approx(49.056) and cam["n_frames"] >= 2
    tel = next(r for r in pieces.to_pylist() if r["name"] == goto["telescope"])
    assert tel["focal_ratio"] == pytest.approx(2.5)
    (pair,) = [r for r in pairs.to_pylist() if r["telescope"] == goto["telescope"]]
    assert pair["pixel_scale_derived"] == pytest.approx(plate_scale(6.0, 1000.0))
    assert pair["pixel_scale_wcs"] == pytest.approx(goto["p"])
    assert pair["ratio"] == pytest.approx(goto["p"] / plate_scale(6.0, 1000.0))
    others = [r for r in pairs.to_pylist() if r["telescope"] != goto["telescope"]]
    assert others and all(r["pixel_scale_derived"] is None for r in others)  # no specs given for them
    assert main(["equipment", "list", "--equipment", str(spec), "--store", str(catalog.root)]) == 0
    out = capsys.readouterr().out
    assert goto["instrument"] in out and "pixel_scale_derived" in out
