import os
import shutil

import pytest

from astrokit.datasets import FILES, GROUPS, PACKAGES, fetch, get_files, get_folder, get_path, sha256_file
from astrokit.datasets import _fetch as fetch_module
from astrokit.exceptions import DataError

pytestmark = pytest.mark.realdata


def test_cached_fetch_is_a_no_op(monkeypatch):
    fetch()  # whatever is missing is fetched once

    def no_download(*args, **kwargs):
        raise AssertionError("a verified cache must not download again")

    monkeypatch.setattr(fetch_module, "_download", no_download)
    fetch_module._VERIFIED.clear()  # re-hash every cached file, not only the memo
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
    with pytest.raises(KeyError, match="is a group of 24 files"):
        get_path("eso_prim")
    with pytest.raises(KeyError, match="unknown data group"):
        get_files("ztf_quadrant")


def test_groups():
    assert {g: len(k) for g, k in GROUPS.items()} == {"hst_acs": 3, "ais_series": 50, "eso_prim": 24}
    assert not set(GROUPS) & set(FILES)
    for keys in GROUPS.values():
        assert len({FILES[k].package for k in keys}) == 1
        assert len({os.path.dirname(FILES[k].member) for k in keys}) == 1
    ais = [FILES[k].member.rsplit("/", 1)[1] for k in GROUPS["ais_series"]]
    assert ais == [f"infile{i}.fits" for i in range(50)]  # epoch order, not string order
    assert all("origin unverified" in FILES[k].description for k in GROUPS["ais_series"])
    assert {p.kind for p in PACKAGES.values()} == {"wheel", "sdist", "deb"}


def test_sdist_ztf_quadrant(tmp_path):
    paths = fetch(["ztf_quadrant", "ztf_quadrant_mask"], dest=tmp_path, progress=False)
    from astropy.io import fits

    header = fits.getheader(paths["ztf_quadrant"])
    assert (header["NAXIS1"], header["NAXIS2"]) == (3072, 3080)
    assert header["FILTERID"] == 2 and abs(header["OBSMJD"] - 59116.43) < 0.01
    assert sha256_file(paths["ztf_quadrant_mask"]) == FILES["ztf_quadrant_mask"].sha256


@pytest.fixture(scope="module")
def drizzle_deb(tmp_path_factory):
    """The real python-drizzle-testdata .deb, downloaded once with apt-get (SHA-256 checked)."""
    work = tmp_path_factory.mktemp("deb")
    return fetch_module._download("python-drizzle-testdata", work, work / "cache")


def _no_download(*args, **kwargs):
    raise AssertionError("the archive placed in <cache>/archives must be used")


@pytest.mark.parametrize("dpkg", [True, False], ids=["dpkg", "python-ar-tar"])
def test_debian_package(drizzle_deb, tmp_path, monkeypatch, dpkg):
    assert drizzle_deb.name == "python-drizzle-testdata_1.13.4-1_all.deb"
    assert shutil.which("dpkg")
    (tmp_path / "archives").mkdir()
    shutil.copy(drizzle_deb, tmp_path / "archives")  # placed by hand: used instead of downloading
    monkeypatch.setattr(fetch_module, "_apt_download", _no_download)
    if not dpkg:
        which = shutil.which
        monkeypatch.setattr(fetch_module.shutil, "which", lambda name: None if name == "dpkg" else which(name))
    files = get_files("hst_acs", dest=tmp_path)
    assert [p.name for p in files] == ["j8bt06nyq_flt.fits", "input1.fits", "input3.fits"]
    for key, path in zip(GROUPS["hst_acs"], files):
        assert sha256_file(path) == FILES[key].sha256


def test_debian_corruption_and_folder(drizzle_deb, tmp_path, monkeypatch):
    (tmp_path / "archives").mkdir()
    shutil.copy(drizzle_deb, tmp_path / "archives")
    monkeypatch.setattr(fetch_module, "_apt_download", _no_download)
    folder = get_folder("hst_acs", dest=tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["input1.fits", "input3.fits", "j8bt06nyq_flt.fits"]
    cached = get_path("hst_input3", dest=tmp_path)
    cached.write_bytes(b"SIMPLE  =                    T")  # corrupted in place (the folder's hard link too)
    (folder / "stray.fits").write_bytes(b"not ours")
    folder = get_folder("hst_acs", dest=tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["input1.fits", "input3.fits", "j8bt06nyq_flt.fits"]
    for key in GROUPS["hst_acs"]:
        name = FILES[key].member.rsplit("/", 1)[1]
        assert sha256_file(folder / name) == sha256_file(get_path(key, dest=tmp_path)) == FILES[key].sha256


def test_without_apt_get(tmp_path, monkeypatch):
    which = shutil.which
    monkeypatch.setattr(fetch_module.shutil, "which", lambda name: None if name == "apt-get" else which(name))
    with pytest.raises(DataError, match=r"apt-get not found: .*eso-midas-testdata=22\.02pl1\.0-2.*archives"):
        get_folder("eso_prim", dest=tmp_path)


def test_eso_folder_is_the_whole_prim_folder():
    folder = get_folder("eso_prim")
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 24 and "ISAAC.2006-04-13T06:32:38.944.fits" in names and "dss_test1.fits" in names
    assert all(n.endswith(".fits") for n in names)
