import pytest

from astrokit.datasets import FILES, fetch, sha256_file
from astrokit.datasets import _fetch as fetch_module

pytestmark = pytest.mark.realdata


def test_cached_fetch_is_a_no_op(monkeypatch):
    fetch()  # whatever is missing is fetched once

    def no_download(*args, **kwargs):
        raise AssertionError("a verified cache must not download again")

    monkeypatch.setattr(fetch_module, "_download", no_download)
    paths = fetch(progress=False)
    assert set(paths) == set(FILES)
    for key, path in paths.items():
        assert sha256_file(path) == FILES[key].sha256


def test_corrupted_cache_file_is_refetched(tmp_path):
    path = fetch(["ccd_raw"], dest=tmp_path, progress=False)["ccd_raw"]
    path.write_bytes(path.read_bytes()[:1000])  # truncated / corrupted
    again = fetch(["ccd_raw"], dest=tmp_path, progress=False)["ccd_raw"]
    assert sha256_file(again) == FILES["ccd_raw"].sha256


def test_unknown_key():
    with pytest.raises(KeyError, match="unknown data keys"):
        fetch(["hubble_deep_field"])
