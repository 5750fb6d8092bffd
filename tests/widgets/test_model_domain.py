"""A model's validation domain: the scanner shows the survey's rb/drb, warns and does not sort by a score from
outside the domain; ``astrokit summary`` shows rb/drb beside ours. Real ZTF alerts, real models, real headers."""

import json
import shutil

import pytest
from astropy.io import fits

from astrokit.cli import main
from astrokit.datasets import get_path
from astrokit.inference import (
    candidate_instrument,
    default_model_path,
    in_domain,
    list_models,
    model_domain,
    model_metrics,
    normalise_instrument,
)
from astrokit.store import Store
from astrokit.widgets import CandidateScanner, score_domains
from astrokit.widgets._scanner import survey_score_text
from astrokit.widgets._testing import make_demo_store

GOTO_DECAM = {"origins": ["difference", "injected"], "instruments": ["GOTO", "decam"]}
ZTF_ALERTS = {"origins": ["alert"], "instruments": ["ZTF"]}


def _register(models_dir, version, validated_on):
    """Register the shipped model file as ``real_bogus/<version>`` with the given validation domain."""
    folder = models_dir / "real_bogus" / version
    folder.mkdir(parents=True)
    shutil.copy(default_model_path(), folder / "model.keras")
    metrics = json.loads(default_model_path().with_name("metrics.json").read_text())
    metrics.update(version=version, validated_on=validated_on)
    (folder / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture(scope="module")
def alert_store(tmp_path_factory):
    """The 51 sample ZTF alerts, scored by one model file registered twice: for GOTO/DECam, and for ZTF alerts."""
    from astrokit.alerts import ingest_alerts
    from astrokit.pipeline import run_inference

    store = Store(tmp_path_factory.mktemp("domain") / "store")
    ingest_alerts([get_path("ztf_alerts")], store)
    _register(store.models_dir, "v0001", GOTO_DECAM)
    _register(store.models_dir, "v0002", ZTF_ALERTS)
    for version in ("v0001", "v0002"):
        run_inference(store, model=f"real_bogus:{version}", progress=False)
    return store


@pytest.mark.parametrize(("key", "expected"), [("goto_science", "GOTO"), ("ztf_quadrant", "ZTF"),
                                               ("hst_acs_flt", "ACS"), ("ccd_raw", "SAAO")])
def test_instrument_names_from_real_headers(key, expected):
    """TELESCOP/INSTRUME of real frames ('GOTO-N'/'UT2', 'Palomar 48-inch'/'ZTF/MOSAIC', ...) name one instrument."""
    header = fits.getheader(get_path(key))
    assert normalise_instrument(header.get("TELESCOP"), header.get("INSTRUME")) == expected


def test_domain_parsing_and_decision():
    """validated_on is normalised; origins, instruments, aliases, '*', unknown domains and malformed values."""
    assert normalise_instrument(instrument="DECam") == normalise_instrument("CTIO 4.0-m telescope") == "DECam"
    assert normalise_instrument() is None and normalise_instrument(instrument="  Seestar S50 ") == "Seestar S50"
    assert candidate_instrument(origin="alert", object_id="ZTF18abcdefg") == "ZTF"
    assert candidate_instrument(origin="pipeline", object_id="ZTF18abcdefg") is None  # not an alert: no survey
    domain = model_domain({"validated_on": GOTO_DECAM})
    assert domain == {"origins": ["pipeline", "injected"], "instruments": ["GOTO", "DECam"]}
    assert model_domain({"roc_auc": 0.9}) is None and model_domain(None) is None
    assert in_domain(domain, "pipeline", "GOTO-N") == (True, None)
    assert in_domain(domain, "difference", "goto")[0]
    inside, note = in_domain(domain, "alert", "ZTF")
    assert not inside and "not validated on ZTF alerts" in note and "GOTO, DECam" in note
    inside, note = in_domain(domain, "pipeline", "ACS")
    assert not inside and "candidates of ACS frames" in note
    assert not in_domain(domain, "pipeline", None)[0]  # an unknown instrument is not in a list of instruments
    assert in_domain({"origins": ["pipeline"], "instruments": ["*"]}, "pipeline", None) == (True, None)
    inside, note = in_domain(None, "alert", "ZTF")
    assert not inside and "ZTF alerts" in note and "unknown" in note
    for bad in ({"origins": "alert"}, {"origins": ["sky"]}, ["alert"], {"origins": [""], "instruments": []},
                {"origins": [], "sites": []}):
        with pytest.raises(ValueError, match="validated_on"):
            model_domain({"validated_on": bad})
    assert survey_score_text(0.52, 0.961) == "rb 0.52 · drb 0.96"
    assert survey_score_text(None, float("nan")) == ""


def test_registry_reports_the_domain(alert_store):
    """list_models and `astrokit model list` state each version's domain; scores map to their model's metrics."""
    rows = {r["version"]: r for r in list_models(alert_store.models_dir)}
    assert rows["v0002"]["validated_on"] == ZTF_ALERTS
    assert rows["v0001"]["validated_on"]["origins"] == ["pipeline", "injected"]
    domains = score_domains(alert_store.read("scores"), models_dir=alert_store.models_dir)
    assert domains == {("real_bogus", "v0001"): rows["v0001"]["validated_on"], ("real_bogus", "v0002"): ZTF_ALERTS}
    assert model_metrics(alert_store.models_dir, "real_bogus", "v0009") is None


def test_save_model_normalises_and_checks_the_domain(alert_store, tmp_path):
    """save_model writes validated_on normalised, and refuses a malformed one before writing anything."""
    from astrokit.inference import load_model, save_model

    model, metrics = load_model(alert_store.models_dir, "real_bogus", "v0002")
    metrics["validated_on"] = {"origins": ["alerts"], "instruments": ["ztf", "Palomar 48-inch"]}
    version = save_model(model, metrics, models_dir=tmp_path / "models")
    saved = json.loads((tmp_path / "models" / "real_bogus" / version / "metrics.json").read_text())
    assert saved["validated_on"] == ZTF_ALERTS
    metrics["validated_on"] = {"origins": ["ZTF"]}
    with pytest.raises(ValueError, match="unknown origin"):
        save_model(model, metrics, models_dir=tmp_path / "other")
    assert not (tmp_path / "other").exists()


def test_model_list_cli(alert_store, capsys):
    """`astrokit model list` has a validated_on column."""
    assert main(["model", "list", "--store", str(alert_store.root)]) == 0
    out = capsys.readouterr().out
    assert "validated_on" in out and "alert: ZTF" in out and "pipeline,injected: GOTO,DECam" in out


def test_scanner_out_of_domain_alerts(alert_store):
    """Scores of a model validated on GOTO/DECam: rb/drb shown, a note, and the queue ordered by ZTF's drb."""
    scanner = CandidateScanner(alert_store, user="ada", model_version="v0001").load()
    q = scanner.queue
    assert scanner.n_queue == 51 and (q["instrument"] == "ZTF").all()
    assert scanner.sort_in_force == "survey" and "not by score" in scanner.sort_note
    assert q["survey_drb"].is_monotonic_decreasing and not q["score_in_domain"].any()
    assert q["score_note"].str.contains("not validated on ZTF alerts").all()
    _ = scanner.widget
    info = scanner._w_info.value
    row = scanner.current
    assert survey_score_text(row["survey_rb"], row["survey_drb"]) in info and "drb" in info
    assert "astrokit-domain-note" in info and "not validated on ZTF alerts" in info
    assert "not by score" in scanner._w_sort_note.value and "survey" in scanner._w_progress.value
    # asked for explicitly, the score orders the queue; the note stays on each candidate
    scanner.set_filters(sort="score")
    assert scanner.sort_in_force == "score" and scanner.sort_note == ""
    assert scanner.queue["real_bogus"].is_monotonic_decreasing and "not validated" in scanner._w_info.value


def test_scanner_in_domain_alerts(alert_store):
    """Scores of a model validated on ZTF alerts: no note, and the queue is ordered by score."""
    scanner = CandidateScanner(alert_store, user="ada", model_version="v0002").load()
    assert scanner.sort_in_force == "score" and scanner.sort_note == ""
    assert scanner.queue["real_bogus"].is_monotonic_decreasing and scanner.queue["score_in_domain"].all()
    assert scanner.queue["score_note"].isna().all()
    _ = scanner.widget
    assert "drb" in scanner._w_info.value and "astrokit-domain-note" not in scanner._w_info.value
    assert scanner._w_sort_note.value == ""
    # both models' scores, latest per candidate (v0002, in domain): by score too
    assert CandidateScanner(alert_store, user="ada").load().sort_in_force == "score"


def test_shipped_model_domain_is_read(alert_store, tmp_path):
    """Scores of the shipped model are checked against its own metrics.json (unknown domain -> outside)."""
    from astrokit.alerts import ingest_alerts
    from astrokit.pipeline import run_inference

    store = Store(tmp_path / "store")
    ingest_alerts([get_path("ztf_alerts")], store)
    run_inference(store, progress=False)  # no registry: the shipped model
    scanner = CandidateScanner(store, user="ada").load()
    version = scanner.queue["model_version"].iloc[0]
    assert version.startswith("default-")
    inside, note = in_domain(model_domain(model_metrics(None, "real_bogus", version)), "alert", "ZTF")
    assert (scanner.queue["score_in_domain"] == inside).all()
    assert scanner.sort_in_force == ("score" if inside else "survey")
    assert (scanner.queue["score_note"] == note).all() if note else scanner.queue["score_note"].isna().all()


def test_pipeline_candidates_take_the_instrument_of_their_frame(tmp_path):
    """A candidate's instrument comes from its science frame's header (differences -> frames)."""
    from astrokit.catalog import ingest

    store = make_demo_store(tmp_path / "store", n=3, validated_on={"origins": ["injected"], "instruments": ["DECam"]})
    ingest([get_path("goto_science")], store, progress=False)
    science = store.sql("select exposure_id from frames").column(0)[0].as_py()
    store.write("differences", [{"difference_id": "demo", "science_id": science, "method": "zogy"}], key="demo")
    scanner = CandidateScanner(store, user="ada").load()
    assert (scanner.queue["instrument"] == "GOTO").all()
    assert scanner.sort_in_force == "s_corr" and scanner.queue["s_corr"].abs().is_monotonic_decreasing
    assert scanner.queue["score_note"].str.contains("injected candidates on GOTO frames").all()
    make_demo_store(store, n=3, validated_on={"origins": ["injected"], "instruments": ["GOTO"]})
    scanner.load()
    assert scanner.sort_in_force == "score" and scanner.queue["score_in_domain"].all()


def test_summary_shows_the_survey_scores(alert_store, capsys):
    """`astrokit summary`: alerts with real_bogus, survey_rb and survey_drb side by side, and per model."""
    assert main(["summary", "--store", str(alert_store.root)]) == 0
    out = capsys.readouterr().out
    assert "== alerts (ours vs the survey's rb/drb) ==" in out and "== alerts by model ==" in out
    section = out.split("== alerts (ours vs the survey's rb/drb) ==")[1].split("==")[0]
    header = section.strip().splitlines()[0].split()
    assert header[:5] == ["candidate_id", "object_id", "real_bogus", "survey_rb", "survey_drb"]
    assert "(10 rows)" in section and "alert-" in section
    by_model = out.split("== alerts by model ==")[1].split("==")[0]
    assert "mean_survey_drb" in by_model and "v0001" in by_model and "v0002" in by_model
