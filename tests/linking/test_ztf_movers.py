"""Moving objects on real ZTF detections of known asteroids (fink-fat month 03, DATA.md): small slices, seconds.

The slice is RA 150-165 deg of March 2021 (about 32,000 detections, 21 nights); ``ssnamenr`` (the MPC
designation ZTF associated) is the truth. Objects leave the slice across its edges, so the figures
across nights are below those of the whole month (benchmarks/bench_link_ztf.py).
"""

# ruff: noqa: D103  (test names say what they check)

import pickle

import numpy as np
import pandas as pd
import pytest

from astrokit.cli import main
from astrokit.datasets import FILES, get_path, sha256_file
from astrokit.datasets._fetch import PICKLE_COLUMNS, _pickle_as_parquet, converted_path
from astrokit.exceptions import DataError
from astrokit.linking import (
    TRACK_COLUMNS,
    as_detections,
    link_detections,
    link_intranight,
    link_nights,
    linking_scores,
    observer_states,
    propagate_two_body,
    sky_vectors,
    tracklet_motion,
    ztf_movers,
)
from astrokit.linking._heliolinc import GM_SUN, heliocentric_states

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def month03():
    return ztf_movers("03")


@pytest.fixture(scope="module")
def slice03(month03):
    return month03[(month03["ra"] > 150) & (month03["ra"] < 165)].reset_index(drop=True)


@pytest.fixture(scope="module")
def linked03(slice03):
    return link_detections(slice03, observatory="palomar")  # ZTF's site


def test_fetch_serves_the_verified_pickle_as_parquet():
    assert sha256_file(get_path("ztf_movers_03")) == FILES["ztf_movers_03"].sha256  # the pickle, verified
    path = converted_path("ztf_movers_03")
    assert path.suffix == ".parquet" and path.stem == FILES["ztf_movers_03"].sha256
    with pytest.raises(KeyError, match="not a converted"):
        converted_path("ccd_raw")
    frame = pd.read_parquet(path)
    assert list(frame.columns) == [*PICKLE_COLUMNS[:3], "mjd", *PICKLE_COLUMNS[3:]]
    assert len(frame) == 204893 and frame["nid"].nunique() == 21
    assert np.allclose(frame["mjd"], frame["jd"] - 2400000.5)
    assert frame["ssnamenr"].isna().sum() == 1937 and not (frame["ssnamenr"] == "null").any()


def test_a_pickle_whose_sha256_differs_is_never_unpickled(tmp_path):
    spec = FILES["ztf_movers_04"]
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    source = tmp_path / spec.package / spec.member
    source.parent.mkdir(parents=True)
    source.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(DataError, match="not unpickled"):
        _pickle_as_parquet("ztf_movers_04", tmp_path)
    assert not marker.exists() and not (tmp_path / "converted").exists()


def test_reserved_months_are_refused():
    with pytest.raises(DataError, match="reserved"):
        ztf_movers("06")
    assert not any(f.member.endswith(("month=06", "month=07")) for f in FILES.values())


def test_tracklets_and_tracks_on_the_slice(linked03):
    linked, tracks = linked03
    scores = linking_scores(linked)
    # measured 0.998 / 0.987 and 0.856 / 0.993 (edges of the slice cut tracks across nights)
    assert scores["intra_completeness"] >= 0.99 and scores["intra_purity"] >= 0.98
    assert scores["cross_completeness"] >= 0.83 and scores["cross_purity"] >= 0.98
    assert scores["intra_findable"] > 8000 and scores["cross_findable"] > 800


def test_both_methods_across_nights_on_the_slice(slice03, linked03):
    det = as_detections(slice03)
    tracklet, _ = link_intranight(det)
    quadratic = link_nights(det, tracklet, method="quadratic")
    linked = det.assign(tracklet_id=np.where(tracklet >= 0, tracklet.astype(str), None),
                        track_id=np.where(quadratic >= 0, quadratic.astype(str), None))
    s = linking_scores(linked)
    heliolinc = linking_scores(linked03[0])
    # measured 0.817 / 0.977 (quadratic) against 0.856 / 0.993 (HelioLinC from Palomar, the default method)
    assert s["cross_completeness"] >= 0.78 and s["cross_purity"] >= 0.95
    assert heliolinc["cross_purity"] > s["cross_purity"]
    with pytest.raises(ValueError, match="heliolinc"):
        link_nights(det, tracklet, method="thor")


def test_the_tracks_table(linked03):
    linked, tracks = linked03
    assert list(tracks.columns) == [c for c, _, _ in TRACK_COLUMNS]
    assert set(tracks["track_id"]) == set(linked["track_id"].dropna())
    assert (tracks["n_nights"] >= 3).all() and (tracks["max_residual"] <= 2.0).all()
    assert np.allclose(tracks["arc"], tracks["mjd_last"] - tracks["mjd_first"]) and (tracks["arc"] <= 31).all()
    # every link spans at most the 15-day window: no gap longer than that between a track's nights
    on = linked[linked["track_id"].notna()]
    gaps = on.groupby(["track_id", "night"])["mjd"].min().groupby("track_id").apply(lambda s: np.diff(s).max())
    assert gaps.max() <= 15.0 and (tracks["arc"] > 15).any()
    assert np.allclose(tracks["rate"], np.hypot(tracks["ra_rate"], tracks["dec_rate"]))
    # main-belt rates, mostly moving west (retrograde) near opposition in March
    assert 20 < tracks["rate"].median() < 40
    assert ((tracks["position_angle"] > 180) & (tracks["position_angle"] < 360)).mean() > 0.8
    # a track's detections are those of its tracklets: every tracked detection has a tracklet
    assert linked.loc[linked["track_id"].notna(), "tracklet_id"].notna().all()


def test_tracklets_are_straight_lines_at_main_belt_rates(linked03):
    linked, _ = linked03
    codes, uniques = pd.factorize(linked["tracklet_id"])
    fit = tracklet_motion(codes, linked["mjd"].to_numpy(), sky_vectors(linked["ra"], linked["dec"]))
    truth = linked.groupby(codes)["truth"].agg(lambda s: s.notna().all() and s.nunique() == 1)
    truth = truth[truth.index >= 0].to_numpy()
    assert truth.mean() > 0.98
    three = (fit["n"] >= 3).to_numpy()
    assert three.sum() > 100 and np.percentile(fit["rms_residual"][three], 95) < 0.5
    assert (fit["rate"] <= 360).all() and 20 < np.median(fit["rate"][truth]) < 40
    assert (fit["arc"] >= 30 / 3600).all()  # min_dt: 30 s


def test_stationary_sources_are_not_linked(slice03):
    night = slice03[slice03["night"] == slice03["night"].min()].head(200)
    star = pd.DataFrame({"id": [f"star{k}" for k in range(4)], "ra": 155.0 + np.array([0, 1, -1, 0.5]) * 3e-5,
                         "dec": 10.0, "mjd": night["mjd"].min() + np.array([0.0, 0.02, 0.04, 0.06]),
                         "mag": 18.0, "mag_err": 0.05, "band": "r", "night": night["night"].iloc[0]})
    det = as_detections(pd.concat([night.drop(columns=["truth", "object_id"]), star], ignore_index=True))
    label, stationary = link_intranight(det)
    is_star = det["id"].str.startswith("star").to_numpy()
    assert stationary[is_star].all() and (label[is_star] == -1).all()
    assert not stationary[~is_star].any()


def test_cli_link_writes_detections_and_tracks(tmp_path, slice03, capsys):
    src = tmp_path / "det.csv"
    small = slice03[slice03["night"].isin(sorted(slice03["night"].unique())[:6])]
    small.drop(columns=["truth", "object_id", "night"]).assign(jd=lambda d: d["mjd"] + 2400000.5).drop(
        columns=["mjd"]).to_csv(src, index=False)
    assert main(["link", str(src), "--out", str(tmp_path / "out.csv"), "--format", "csv"]) == 0
    linked = pd.read_csv(tmp_path / "out.csv")
    tracks = pd.read_csv(tmp_path / "out.tracks.csv")
    assert len(linked) == len(small) and {"tracklet_id", "track_id", "stationary"} <= set(linked.columns)
    assert linked["tracklet_id"].notna().sum() > 0.4 * len(linked)
    assert set(tracks["track_id"]) == set(linked["track_id"].dropna()) and len(tracks) > 0
    assert "tracklets" in capsys.readouterr().out


def test_cli_link_bad_input_exits_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"id": [1, 2], "dec": [0.0, 0.1], "mjd": [1.0, 1.1], "mag": 18, "mag_err": 0.1,
                  "band": "r"}).to_csv(bad, index=False)
    assert main(["link", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "['ra']" in err
    (tmp_path / "x.fits").write_bytes(b"SIMPLE")
    assert main(["link", str(tmp_path / "x.fits")]) == 2
    assert "use .parquet or .csv" in capsys.readouterr().err
    assert main(["link", str(tmp_path / "missing.parquet")]) == 2


def test_heliolinc_recovers_a_circular_orbit_seen_from_the_earth():
    r, t = 2.5, 59300.0 + np.array([0.0, 1.0, 4.0, 9.0])
    omega = np.sqrt(GM_SUN / r**3)

    def state(tt):
        a = omega * (tt - 59300.0) + 0.3
        return (r * np.column_stack([np.cos(a), np.sin(a), np.zeros_like(a)]),
                r * omega * np.column_stack([-np.sin(a), np.cos(a), np.zeros_like(a)]))

    x, v = state(t)
    obs, obs_v = observer_states(t)
    assert np.allclose(np.linalg.norm(obs, axis=1), 0.99, atol=0.02)  # the Earth in March-April
    assert np.allclose(np.linalg.norm(obs_v, axis=1), 0.0172, atol=0.0005)  # ~30 km/s
    rel, rel_v = x - obs, v - obs_v
    u = rel / np.linalg.norm(rel, axis=1, keepdims=True)
    udot = (rel_v - (rel_v * u).sum(axis=1, keepdims=True) * u) / np.linalg.norm(rel, axis=1, keepdims=True)
    hx, hv, ok = heliocentric_states(u, udot, obs, obs_v, r, 0.0)
    assert ok.all() and np.allclose(hx, x, atol=1e-9) and np.allclose(hv, v, atol=1e-9)
    px, pv = propagate_two_body(hx, hv, 9.0 - (t - 59300.0))
    assert np.abs(px - state(np.array([59309.0]))[0]).max() < 1e-8  # all four land on the epoch's position
    # at a wrong distance they spread, the more the farther: 0.0015 AU at 3.0 AU (half the default eps,
    # so that a coarse grid of distances finds every object), 0.004 AU at 4.0 AU
    spread = []
    for wrong in (3.0, 4.0):
        wx, wv, _ = heliocentric_states(u, udot, obs, obs_v, wrong, 0.0)
        spread.append(np.ptp(propagate_two_body(wx, wv, 9.0 - (t - 59300.0))[0], axis=0).max())
    assert 1e-3 < spread[0] < 3e-3 < spread[1]


def test_link_stage_tracks_the_store_candidates_across_nights(tmp_path, month03):
    from astrokit.pipeline import run_link
    from astrokit.store import Store

    d = month03[(month03["ra"] > 150) & (month03["ra"] < 155)]
    store = Store(tmp_path / "store")
    store.write("candidates", [{"candidate_id": f"ztf-{r.id}", "alert_id": r.id, "ra": r.ra, "dec": r.dec,
                                "mjd": r.mjd, "band": r.band, "mag": r.mag, "mag_err": r.mag_err,
                                "is_positive": True, "origin": "alert"} for r in d.itertuples()], key="alerts")
    report = run_link(store, stack=False, progress=False)
    rows = store.read("tracklets").to_pandas()
    assert report["failed"] == 0 and report["tracks"] == len(rows) > 100 and set(rows["method"]) == {"track"}
    truth = dict(zip("ztf-" + d["id"], d["truth"], strict=True))
    pure = [len({truth[c] for c in ids}) == 1 for ids in rows["candidate_ids"]]
    assert np.mean(pure) >= 0.97  # measured 0.994
    assert (rows["n_epochs"] >= 6).all() and (rows["rms_residual"] < 2).all()
    assert all(len(m) == n for m, n in zip(rows["mjds"], rows["n_epochs"], strict=True))
    again = run_link(store, stack=False, progress=False)
    assert again["tracks"] == report["tracks"] and store.keys("tracklets") == ["link-across-nights"]


def test_the_tracklet_viewer_shows_tracks_across_nights(tmp_path, month03):
    from astrokit.pipeline import run_link
    from astrokit.store import Store
    from astrokit.widgets import TrackletViewer

    d = month03[(month03["ra"] > 150) & (month03["ra"] < 152)]
    store = Store(tmp_path / "store")
    empty = TrackletViewer(store, method="track").load()
    assert "the link stage has not run" in empty.summary_html()
    store.write("candidates", [{"candidate_id": f"ztf-{r.id}", "alert_id": r.id, "ra": r.ra, "dec": r.dec,
                                "mjd": r.mjd, "band": r.band, "mag": r.mag, "mag_err": r.mag_err,
                                "is_positive": True, "origin": "alert"} for r in d.itertuples()], key="alerts")
    run_link(store, stack=False, progress=False)
    viewer = TrackletViewer(store, method="track").load()
    track = viewer.current
    assert track is not None and track["method"] == "track"
    nights = len({int(np.floor(m)) for m in track["mjds"]})
    assert nights >= 3 and f"on {nights} nights over" in viewer.summary_html()
    cutouts_row, sky = viewer.figure().children  # each detection of the track, in time order
    assert len(cutouts_row.children) == track["n_epochs"] and "arcsec/h" in sky.title.text
