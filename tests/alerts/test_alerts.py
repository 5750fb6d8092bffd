import numpy as np
import pyarrow.parquet as pq
import pytest

from astrokit.alerts import ingest_alerts, read_alerts
from astrokit.datasets import get_path
from astrokit.exceptions import DataError
from astrokit.io import decode_cutout

pytestmark = pytest.mark.realdata


def test_real_ztf_alerts_become_candidates(tmp_store):
    path = get_path("ztf_alerts")
    assert ingest_alerts([path], tmp_store) == 51
    assert ingest_alerts([path], tmp_store) == 51  # rerun replaces, never duplicates
    rows = tmp_store.read("candidates").to_pylist()
    assert len(rows) == 51
    packets = pq.read_table(path, columns=["candid", "candidate"]).to_pylist()
    by_id = {p["candid"]: p["candidate"] for p in packets}
    for r in rows:
        c = by_id[r["alert_id"]]
        assert r["origin"] == "alert" and r["band"] == "r"
        assert r["survey_drb"] == pytest.approx(c["drb"], rel=1e-6)
        assert r["mag"] == pytest.approx(c["magpsf"], rel=1e-6)
        assert r["mjd"] == pytest.approx(c["jd"] - 2400000.5)
        for col in ("cutout_science", "cutout_reference", "cutout_difference"):
            stamp = decode_cutout(r[col])
            assert stamp.shape == (63, 63) and stamp.dtype == np.float32
            assert np.isfinite(stamp).mean() > 0.5


def test_not_alerts(tmp_path):
    bad = tmp_path / "x.parquet"
    bad.write_text("nope")
    with pytest.raises(DataError, match="x.parquet"):
        read_alerts(bad)
