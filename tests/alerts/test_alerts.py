"""Alert packets -> candidates: the real ZTF sample packets as Parquet and Avro, through the library and the CLI."""

import gzip
import os
import tarfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from astrokit.alerts import ingest_alerts, read_alert_packets, read_alerts
from astrokit.cli import main
from astrokit.exceptions import AstrokitError, DataError
from astrokit.io import decode_cutout
from astrokit.store import Store

pytestmark = pytest.mark.realdata

STAMPS = ("cutout_science", "cutout_reference", "cutout_difference")


def test_real_ztf_alerts_become_candidates(tmp_store, alerts_parquet):
    assert ingest_alerts([alerts_parquet], tmp_store) == 51
    assert ingest_alerts([alerts_parquet], tmp_store) == 51  # rerun replaces, never duplicates
    rows = tmp_store.read("candidates").to_pylist()
    assert len(rows) == 51
    packets = pq.read_table(alerts_parquet, columns=["candid", "candidate"]).to_pylist()
    by_id = {p["candid"]: p["candidate"] for p in packets}
    for r in rows:
        c = by_id[r["alert_id"]]
        assert r["origin"] == "alert" and r["band"] == "r"
        assert r["survey_drb"] == pytest.approx(c["drb"], rel=1e-6)
        assert r["mag"] == pytest.approx(c["magpsf"], rel=1e-6)
        assert r["mjd"] == pytest.approx(c["jd"] - 2400000.5)
        for col in STAMPS:
            stamp = decode_cutout(r[col])
            assert stamp.shape == (63, 63) and stamp.dtype == np.float32
            assert np.isfinite(stamp).mean() > 0.5


def test_avro_packets_give_the_same_candidates_as_parquet(alerts_parquet, alerts_avro):
    with open(alerts_avro, "rb") as fh:
        assert fh.read(4) == b"Obj\x01"  # a real Avro container, not Parquet under another name
    from_parquet, from_avro = read_alerts(alerts_parquet), read_alerts(alerts_avro)
    assert len(from_avro) == len(from_parquet) == 51
    for a, b in zip(from_avro, from_parquet):
        assert a.keys() == b.keys()
        for k in a:
            if k in STAMPS:
                np.testing.assert_array_equal(decode_cutout(a[k]), decode_cutout(b[k]))
            elif isinstance(a[k], float):
                assert a[k] == pytest.approx(b[k], rel=1e-12, nan_ok=True), k
            else:
                assert a[k] == b[k], k
    prv = read_alert_packets(alerts_avro, ["candid", "prv_candidates"])
    assert sum(len(p["prv_candidates"] or []) for p in prv) > 0  # the history travels with the packets


def test_cli_ingests_parquet_then_avro_of_the_same_packets_without_duplicates(tmp_path, alerts_parquet,
                                                                               alerts_avro, capsys):
    store = tmp_path / "store"
    assert main(["alerts", "ingest", str(alerts_parquet), "--store", str(store)]) == 0
    assert "ingested 51 alert candidates from 1 file" in capsys.readouterr().out
    assert main(["alerts", "ingest", str(alerts_parquet), "--store", str(store)]) == 0  # rerun
    assert main(["alerts", "ingest", str(alerts_avro), "--store", str(store)]) == 0  # same packets, in Avro
    n = Store(store).sql("select count(*) n, count(distinct candidate_id) d, count(distinct alert_id) a, "
                         "count(cutout_difference) c from candidates where origin = 'alert'").to_pylist()[0]
    assert n == {"n": 51, "d": 51, "a": 51, "c": 51}
    assert (store / "astrokit.duckdb").is_file()  # views refreshed for DuckDB users
    assert (store / ".astrokit-run.lock").read_text() == str(os.getpid())  # the run lock was taken...
    with Store(store).lock():  # ... and released
        pass


def test_cli_ingests_a_folder_of_single_packet_avro_files_and_a_tar_archive(tmp_path, alerts_avro_folder, capsys):
    files = sorted(alerts_avro_folder.glob("*.avro"))
    assert len(files) == 51
    archive = tmp_path / "ztf_public_20190801.tar.gz"  # the ZTF public archive's layout: a tarball of .avro
    with tarfile.open(archive, "w:gz") as tar:
        for f in files[:10]:
            tar.add(f, arcname=f.name)
    assert len(read_alert_packets(archive)) == 10
    store = tmp_path / "store"
    assert main(["alerts", "ingest", str(archive), str(alerts_avro_folder), "--store", str(store)]) == 0
    assert "from 52 files" in capsys.readouterr().out
    assert Store(store).sql("select count(*) n from candidates").to_pylist()[0]["n"] == 51


def _packets(table):
    return table.to_pylist()


def _truncated_parquet(path, table, write_avro):
    pq.write_table(table, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _truncated_avro(path, table, write_avro):
    write_avro(path, table.schema, _packets(table))
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])


def _bad_stamp_avro(path, table, write_avro):
    packets = _packets(table)
    packets[7]["cutoutTemplate"]["stampData"] = gzip.compress(b"SIMPLE  =                    T")[:-8]  # cut gzip
    write_avro(path, table.schema, packets)


def _fits_garbage_stamp_parquet(path, table, write_avro):
    packets = _packets(table)
    packets[3]["cutoutDifference"]["stampData"] = b"not a FITS image at all"
    pq.write_table(pa.Table.from_pylist(packets, schema=table.schema), path)


def _missing_column_parquet(path, table, write_avro):
    pq.write_table(table.drop_columns(["cutoutDifference"]), path)


def _missing_field_avro(path, table, write_avro):
    table = table.drop_columns(["candidate"])
    write_avro(path, table.schema, _packets(table))


def _no_ra_parquet(path, table, write_avro):
    packets = _packets(table)
    packets[5]["candidate"]["ra"] = None
    pq.write_table(pa.Table.from_pylist(packets), path)  # schema inferred: ra nullable


def _text_file(path, table, write_avro):
    path.write_text("objectId,candid\nZTF19abc,123\n")


CORRUPT = {  # name -> (maker, words the one-line error must contain besides the file name)
    "truncated.parquet": (_truncated_parquet, ["not a readable file of alert packets"]),
    "truncated.avro": (_truncated_avro, ["not a readable file of alert packets"]),
    "bad_stamp.avro": (_bad_stamp_avro, ["packet 7 (candid", "cutoutTemplate"]),
    "garbage_stamp.parquet": (_fits_garbage_stamp_parquet, ["packet 3 (candid", "cutoutDifference"]),
    "no_cutout_column.parquet": (_missing_column_parquet, ["missing alert columns", "cutoutDifference"]),
    "no_candidate.avro": (_missing_field_avro, ["packet 0 (candid", "missing alert fields", "candidate"]),
    "no_ra.parquet": (_no_ra_parquet, ["packet 5 (candid", "ra"]),
    "alerts.csv.parquet": (_text_file, ["neither Parquet nor an Avro container"]),
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_a_corrupt_packet_file_is_a_one_line_error_and_nothing_is_written(name, tmp_path, alerts_table,
                                                                          alerts_parquet, avro_writer, capsys):
    make, words = CORRUPT[name]
    bad = tmp_path / name
    make(bad, alerts_table, avro_writer)
    store = tmp_path / "store"
    # the good file first: it is checked, but not written either, since a later file is bad
    assert main(["alerts", "ingest", str(alerts_parquet), str(bad), "--store", str(store)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"astrokit: error: {bad}"), err
    for word in words:
        assert word in err, err
    assert not store.exists()  # nothing written: not even the store folder
    with pytest.raises(DataError, match=name):
        ingest_alerts([bad], Store(store))
    assert not store.exists()


def test_a_corrupt_file_leaves_an_existing_store_unchanged(tmp_path, alerts_table, alerts_parquet, alerts_avro,
                                                          avro_writer):
    store = Store(tmp_path / "store")
    assert ingest_alerts([alerts_avro], store) == 51
    before = sorted((p.relative_to(store.root), p.stat().st_mtime_ns) for p in store.root.rglob("*"))
    bad = tmp_path / "bad_stamp.avro"
    _bad_stamp_avro(bad, alerts_table, avro_writer)
    assert main(["alerts", "ingest", str(alerts_parquet), str(bad), "--store", str(store.root)]) == 1
    after = sorted((p.relative_to(store.root), p.stat().st_mtime_ns) for p in store.root.rglob("*"))
    assert after == before


def test_alerts_ingest_waits_for_no_running_pipeline(tmp_path, alerts_parquet, capsys):
    store = Store(tmp_path / "store")
    with store.lock():
        assert main(["alerts", "ingest", str(alerts_parquet), "--store", str(store.root)]) == 1
        assert "holds the lock" in capsys.readouterr().err
        with pytest.raises(AstrokitError, match="holds the lock"):
            ingest_alerts([alerts_parquet], store, lock=True)
    assert store.keys("candidates") == []


def test_missing_paths_and_empty_folders(tmp_path, capsys):
    assert main(["alerts", "ingest", str(tmp_path / "nope.avro"), "--store", str(tmp_path / "s")]) == 1
    assert "nope.avro: no such alert file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["alerts", "ingest", str(tmp_path / "empty"), "--store", str(tmp_path / "s")]) == 1
    assert "no alert files" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_not_alerts(tmp_path):
    bad = tmp_path / "x.parquet"
    bad.write_text("nope")
    with pytest.raises(DataError, match="x.parquet"):
        read_alerts(bad)


def test_alerts_ingest_into_an_s3_store(s3_bucket, alerts_avro, capsys):
    uri = f"s3://{s3_bucket}/night"
    assert main(["alerts", "ingest", str(alerts_avro), "--store", uri]) == 0
    assert main(["alerts", "ingest", str(alerts_avro), "--store", uri]) == 0
    assert Store(uri).sql("select count(*) n, count(distinct alert_id) d from candidates").to_pylist() == [
        {"n": 51, "d": 51}]
