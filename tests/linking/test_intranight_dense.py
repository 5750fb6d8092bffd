"""Intra-night pairs and triplets of a dense field: binned pair search and chunked triplets give the full result."""

import numpy as np
import pandas as pd

from astrokit.linking import _nightly
from astrokit.linking._nightly import _ARCSEC, _line_residual, _night_pairs, _triplets, link_intranight, sky_vectors


def _dense_field(n_static=1500, n_epochs=8, n_movers=10, seed=3):
    rng = np.random.default_rng(seed)
    times = 60000.0 + np.sort(rng.uniform(0, 0.25, n_epochs))
    rows = [pd.DataFrame({"ra": 150 + rng.uniform(0, 0.5, n_static // n_epochs),
                          "dec": 2 + rng.uniform(0, 0.5, n_static // n_epochs), "mjd": t,
                          "mag": rng.uniform(18, 21, n_static // n_epochs), "band": "g"}) for t in times]
    hours = (times - times[0]) * 24
    for _ in range(n_movers):
        rate, angle = rng.uniform(10, 60) / 3600.0, rng.uniform(0, 2 * np.pi)
        rows.append(pd.DataFrame({"ra": 150.1 + rng.uniform(0, 0.3) + rate * np.cos(angle) * hours,
                                  "dec": 2.1 + rng.uniform(0, 0.3) + rate * np.sin(angle) * hours,
                                  "mjd": times, "mag": 20.0, "band": "r"}))
    det = pd.concat(rows, ignore_index=True)
    det["night"] = 0
    return det


def test_binned_pair_search_finds_every_pair_a_brute_force_search_finds():
    det = _dense_field(n_static=600)
    p, t = sky_vectors(det["ra"].to_numpy(), det["dec"].to_numpy()), det["mjd"].to_numpy()
    got = _night_pairs(p, t, max_rate=360.0, min_dt=30 / 86400, pos_err=0.3)
    i, j = np.triu_indices(len(t), 1)
    swap = t[i] > t[j]
    i, j = np.where(swap, j, i), np.where(swap, i, j)
    dt = (t[j] - t[i]) * 24
    sep = np.linalg.norm(p[i] - p[j], axis=1) / _ARCSEC
    ok = (dt >= 30 / 3600) & (sep <= 360.0 * dt + 0.9)
    want = np.column_stack([i[ok], j[ok]])
    want = want[np.lexsort((want[:, 1], want[:, 0]))]
    assert len(want) > 1000
    np.testing.assert_array_equal(got, want)


def test_triplets_by_chunks_are_the_full_join(monkeypatch):
    det = _dense_field(n_static=600)
    p, t = sky_vectors(det["ra"].to_numpy(), det["dec"].to_numpy()), det["mjd"].to_numpy()
    pairs = _night_pairs(p, t, max_rate=360.0, min_dt=30 / 86400, pos_err=0.3)
    # the reference: the whole join at once (pandas keeps the left order, then the right order per key)
    join = pd.DataFrame({"a": pairs[:, 0], "b": pairs[:, 1]}).merge(
        pd.DataFrame({"b": pairs[:, 0], "c": pairs[:, 1]}), on="b").to_numpy()
    res = _line_residual(t[join], p[join])
    keep = res <= 1.0
    monkeypatch.setattr(_nightly, "_TRIPLET_CHUNK", 997)  # many chunks, some cut inside one b's pairs
    tri, got_res = _triplets(pairs, t, p, 1.0)
    assert len(join) > 20 * 997 and keep.sum() > 10
    np.testing.assert_array_equal(tri, join[keep])
    np.testing.assert_array_equal(got_res, res[keep])


def test_dense_night_links_its_movers():
    det = _dense_field()
    label, stationary = link_intranight(det)
    movers = det.index[det["band"] == "r"].to_numpy().reshape(10, -1)
    # each mover's detections are one tracklet of its own
    for rows in movers:
        assert len(set(label[rows])) == 1 and label[rows[0]] >= 0
    assert len({label[rows[0]] for rows in movers}) == 10
    assert not stationary[movers.ravel()].any()
