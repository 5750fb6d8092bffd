import os
import shutil
import time
from datetime import datetime, timezone

import pytest

from astrokit.cli import main
from astrokit.exceptions import AstrokitError
from astrokit.pipeline import cleanup, store_lock


@pytest.fixture()
def store_with_artifacts(tmp_store):
    old = tmp_store.put_artifact(b"old difference image", "fits")
    new = tmp_store.put_artifact(b"new difference image", "fits")
    ten_days_ago = time.time() - 10 * 86400
    os.utime(old, (ten_days_ago, ten_days_ago))
    now = datetime.now(timezone.utc)
    tmp_store.append("labels", [{"label_id": "a", "candidate_id": "c", "label": "real", "created_at": now}])
    crashed = tmp_store.table_dir("labels") / ".x.parquet.deadbeef.tmp"
    crashed.write_bytes(b"half a file")
    os.utime(crashed, (ten_days_ago, ten_days_ago))
    (tmp_store.runs_dir / "r1").mkdir(parents=True)
    notebook = tmp_store.runs_dir / "r1" / "ingest.ipynb"
    notebook.write_text("{}")
    os.utime(notebook, (ten_days_ago, ten_days_ago))
    return tmp_store, old, new, crashed, notebook


def test_older_than_removes_only_intermediate_files(store_with_artifacts):
    store, old, new, crashed, notebook = store_with_artifacts
    dry = cleanup(store, older_than_days=7, dry_run=True)
    assert {p for p, _ in dry["removed"]} == {str(old), str(crashed)} and old.exists()
    report = cleanup(store, older_than_days=7)
    assert {p for p, _ in report["removed"]} == {str(old), str(crashed)}
    assert not old.exists() and not crashed.exists()
    assert new.exists() and notebook.exists()
    assert store.sql("select count(*) n from labels").column("n")[0].as_py() == 1  # tables untouched


def test_min_free_space_already_met_removes_nothing(store_with_artifacts):
    store = store_with_artifacts[0]
    free_gb = shutil.disk_usage(store.root).free / 1e9
    assert cleanup(store, min_free_gb=free_gb / 2)["removed"] == []


def test_never_during_a_run(store_with_artifacts):
    store, old = store_with_artifacts[:2]
    with store_lock(store):
        with pytest.raises(AstrokitError, match="holds the lock"):
            cleanup(store, older_than_days=0)
    assert old.exists()


def test_cli(store_with_artifacts, capsys):
    store = store_with_artifacts[0]
    assert main(["cleanup", "--store", str(store.root), "--older-than", "7", "--dry-run"]) == 0
    assert "would remove 2 files" in capsys.readouterr().out
    assert main(["cleanup", "--store", str(store.root)]) == 1
    assert "--older-than" in capsys.readouterr().err
