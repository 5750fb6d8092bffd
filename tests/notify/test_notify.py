import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from astrokit.cli import main
from astrokit.exceptions import AstrokitError
from astrokit.notify import notify_candidates, post_json, rule_to_sql


class _Hook:
    """A webhook receiver on 127.0.0.1 that records bodies; it can fail the first N requests with 503."""

    def __init__(self, fail_first=0):
        self.received, self.fail_left = [], fail_first
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.fail_left > 0:
                    hook.fail_left -= 1
                    self.send_response(503)
                else:
                    hook.received.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def hook():
    h = _Hook()
    yield h
    h.close()


@pytest.fixture()
def scored_store(tmp_store):
    now = datetime.now(timezone.utc)
    cands = [{"candidate_id": f"c{i}", "origin": "pipeline", "s_corr": s, "mag": 18.0 + i, "ra": 10.0, "dec": 1.0,
              "band": b, "is_positive": True, "flags": 0}
             for i, (s, b) in enumerate([(12.0, "r"), (-9.0, "g"), (6.0, "r"), (20.0, "i")])]
    tmp_store.write("candidates", cands, key="test")
    scores = [{"candidate_id": f"c{i}", "model_name": "real_bogus", "model_version": "v1", "real_bogus": rb,
               "scored_at": now} for i, rb in enumerate([0.95, 0.97, 0.99, 0.2])]
    tmp_store.write("scores", scores, key="v1")
    return tmp_store


def test_rule_translation_is_safe():
    assert rule_to_sql("real_bogus >= 0.9 and abs(s_corr) >= 8") == "s.real_bogus >= 0.9 AND abs ( c.s_corr ) >= 8"
    assert "c.band IN ( 'g' , 'r' )" in rule_to_sql("band in ('g', 'r')")
    for bad in ("real_bogus >= 0.9; drop table x", "exposure >= 1", "(s_corr > 1", "s_corr > 1)", ""):
        with pytest.raises(AstrokitError):
            rule_to_sql(bad)


def test_webhook_gets_exactly_the_passing_candidates_once(scored_store, hook):
    rule = "real_bogus >= 0.9 and abs(s_corr) >= 8"
    report = notify_candidates(scored_store, rule=rule, url=hook.url, backoff=0.01)
    assert sorted(report["sent"]) == ["c0", "c1"] and not report["failed"]
    assert sorted(m["candidate_id"] for m in hook.received) == ["c0", "c1"]
    assert all(m["rule"] == rule and m["model_version"] == "v1" for m in hook.received)
    again = notify_candidates(scored_store, rule=rule, url=hook.url, backoff=0.01)
    assert again["sent"] == [] and len(hook.received) == 2  # nothing new: nothing sent twice


def test_retries_on_server_errors(scored_store):
    flaky = _Hook(fail_first=2)
    try:
        report = notify_candidates(scored_store, rule="s_corr > 15", url=flaky.url, retries=3, backoff=0.01)
        assert report["sent"] == ["c3"] and [m["candidate_id"] for m in flaky.received] == ["c3"]
    finally:
        flaky.close()


def test_unreachable_hook_is_recorded_and_retried_next_time(scored_store, hook):
    dead = "http://127.0.0.1:9/hook"  # discard port: nothing listens
    report = notify_candidates(scored_store, rule="s_corr > 15", url=dead, retries=1, backoff=0.01, timeout=2)
    assert report["failed"] == ["c3"] and "after 2 attempts" in report["errors"][0]
    status = scored_store.sql("select status from notifications").column("status").to_pylist()
    assert status == ["failed"]
    with pytest.raises(AstrokitError, match="http://"):
        post_json("ftp://example.invalid", {})


def test_cli_dry_run(scored_store, hook, capsys):
    assert main(["notify", "--store", str(scored_store.root), "--rule", "real_bogus > 0.96", "--url", hook.url,
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would send 2 candidates" in out and hook.received == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x", "http://", "hook.example.org",
                                 "javascript:alert(1)"])
def test_non_http_url_is_refused_before_any_work(scored_store, url, capsys):
    with pytest.raises(AstrokitError, match="http:// or https://"):
        notify_candidates(scored_store, rule="s_corr > 0", url=url)
    assert scored_store.sql("select count(*) as n from notifications").column("n")[0].as_py() == 0
    assert main(["notify", "--store", str(scored_store.root), "--rule", "s_corr > 0", "--url", url]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("astrokit: error: webhook URL")


def test_circuit_breaker_stops_after_consecutive_failures(scored_store, capsys):
    dead = "http://127.0.0.1:9/hook"  # discard port: nothing listens
    report = notify_candidates(scored_store, rule="s_corr > -100", url=dead, retries=0, backoff=0.0, timeout=2,
                               max_failures=2)
    assert len(report["failed"]) == 2 and len(report["deferred"]) == 2
    assert "2 consecutive failures, stopped" in report["errors"][-1]
    recorded = scored_store.sql("select candidate_id, status from notifications").to_pylist()
    assert sorted(r["candidate_id"] for r in recorded) == sorted(report["failed"])  # deferred ones: not recorded
    code = main(["notify", "--store", str(scored_store.root), "--rule", "s_corr > -100", "--url", dead,
                 "--retries", "0", "--max-failures", "1"])
    captured = capsys.readouterr()
    assert code == 1 and "left for the next run 3" in captured.out
    assert "notifications failed" in captured.err


def test_cli_exits_nonzero_when_a_message_failed(scored_store, hook, capsys):
    flaky = _Hook(fail_first=100)  # answers 503 to everything
    try:
        code = main(["notify", "--store", str(scored_store.root), "--rule", "s_corr > 15", "--url", flaky.url,
                     "--retries", "0"])
    finally:
        flaky.close()
    assert code == 1 and "1 notifications failed" in capsys.readouterr().err
