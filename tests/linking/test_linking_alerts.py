"""Known solar-system objects in the 51 real ZTF alert packets (DATA.md)."""

# ruff: noqa: D103  (test names say what they check)

import numpy as np
import pytest

from astrokit.datasets import get_path
from astrokit.exceptions import DataError
from astrokit.linking import alert_history, solar_system_alerts

pytestmark = pytest.mark.realdata


def test_the_one_alert_matched_to_a_known_asteroid():
    sso = solar_system_alerts(get_path("ztf_alerts"))
    assert len(sso) == 1
    row = sso[0]
    assert row["ssnamenr"] == "301791" and row["object_id"] == "ZTF19abrljdq"
    assert row["ssdistnr"] == pytest.approx(23.0) and row["ssmagnr"] == pytest.approx(21.0)
    assert row["mag_offset"] == pytest.approx(row["magpsf"] - 21.0) and row["mag_offset"] < -6
    # one detection with a position in the packet: no motion can be measured
    assert row["n_detections"] == 1 and row["n_previous"] == 10 and np.isnan(row["rate"])


def test_alert_history_has_the_limits_and_the_detection():
    history = alert_history(get_path("ztf_alerts"), "ZTF19abrljdq")
    assert len(history) == 11 and list(history["mjd"]) == sorted(history["mjd"])
    assert history["detected"].sum() == 1 and history["detected"][-1]
    assert np.all(np.isnan(history["ra"][:-1])) and np.all(history["mag"][:-1] > 18)
    with pytest.raises(DataError, match="no alert of object"):
        alert_history(get_path("ztf_alerts"), "ZTF00nothing")


def test_solar_system_alerts_of_a_file_that_is_not_alerts(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(DataError, match="bad.parquet"):
        solar_system_alerts(bad)
