"""Post new candidates that pass a rule to a webhook, with retries; remember what was sent."""

import hashlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import datetime, timezone

from astrokit.exceptions import AstrokitError
from astrokit.notify._rules import rule_to_sql

__all__ = ["check_webhook_url", "notify_candidates", "post_json"]

_FIELDS = ("candidate_id", "origin", "alert_id", "object_id", "ra", "dec", "mjd", "band", "mag", "mag_err", "s_corr",
           "flux", "flux_err", "is_positive", "flags", "real_bogus", "model_name", "model_version")


def check_webhook_url(url):
    """Check that ``url`` is an ``http://`` or ``https://`` URL with a host.

    Parameters
    ----------
    url : str
        Webhook endpoint.

    Returns
    -------
    str
        ``url``, unchanged.

    Raises
    ------
    AstrokitError
        If the scheme is not http or https (``file://``, ``ftp://``...) or the host is missing.
    """
    parts = urllib.parse.urlsplit(str(url))
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        msg = f"webhook URL {url!r} must be http:// or https:// with a host name (e.g. https://example.org/hook)"
        raise AstrokitError(msg)
    return url


def post_json(url, payload, *, retries=3, backoff=1.0, timeout=10.0):
    """POST ``payload`` as JSON to ``url``, retrying on network errors and 5xx answers.

    Parameters
    ----------
    url : str
        ``http://`` or ``https://`` endpoint.
    payload : dict
        JSON-serialisable message.
    retries : int
        Re-attempts after the first failure.
    backoff : float
        Seconds before the first retry, doubled each time.
    timeout : float
        Seconds to wait for each answer.

    Returns
    -------
    int
        The HTTP status of the accepted attempt (2xx).

    Raises
    ------
    AstrokitError
        If every attempt failed, or the server answered 4xx (not retried); the
        message gives the last status or error.
    """
    check_webhook_url(url)
    body = json.dumps(payload, default=str).encode()
    last = None
    for attempt in range(int(retries) + 1):
        if attempt:
            time.sleep(float(backoff) * 2 ** (attempt - 1))
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - scheme checked
                return response.status
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
            if exc.code < 500:
                break
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
    msg = f"webhook {url}: {last} (after {attempt + 1} attempts)"
    raise AstrokitError(msg)


def _clean(value):
    if isinstance(value, float) and value != value:  # NaN -> null
        return None
    return value


def notify_candidates(store, *, rule, url, retries=3, backoff=1.0, timeout=10.0, dry_run=False, max_failures=3):
    """Post one JSON message per candidate that passes ``rule`` and was not yet sent to ``url`` for this rule.

    A candidate's score is its latest one. Each message sent is recorded in
    the append-only ``notifications`` table, so a re-run sends only new
    candidates; a message that still fails after the retries is recorded as
    failed and tried again on the next run. After ``max_failures`` consecutive
    failed messages the endpoint is taken as down (a circuit breaker, Nygard
    2007, *Release It!*): the run stops posting, and the candidates not tried
    are left for the next run (reported in ``deferred``, nothing recorded).

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    rule : str
        Condition over candidate and score columns (see `astrokit.notify.rule_to_sql`).
    url : str
        Webhook endpoint.
    retries, backoff, timeout
        See `post_json`.
    dry_run : bool
        Return the candidates that would be sent, send nothing.
    max_failures : int
        Consecutive failed messages after which the run stops posting (>= 1).

    Returns
    -------
    dict
        ``sent``, ``failed``, ``deferred`` (lists of candidate_id) and ``errors``
        (one line each; the circuit breaker's reason last when it opened).

    Raises
    ------
    AstrokitError
        If the rule is invalid, ``url`` is not an http(s) URL, or ``max_failures`` < 1;
        nothing is sent or recorded then.
    """
    check_webhook_url(url)
    if int(max_failures) < 1:
        msg = f"max_failures must be >= 1, got {max_failures}"
        raise AstrokitError(msg)
    condition = rule_to_sql(rule)
    rule_id = hashlib.sha1(f"{rule.strip()}|{url}".encode()).hexdigest()[:16]
    query = f"""
        with latest as (
            select * from scores qualify row_number() over (partition by candidate_id order by scored_at desc) = 1)
        select {", ".join(("c." if f not in ("real_bogus", "model_name", "model_version") else "s.") + f
                          for f in _FIELDS)}
        from candidates c join latest s using (candidate_id)
        where ({condition})
          and c.candidate_id not in (select candidate_id from notifications where rule_id = ? and status = 'sent')
        order by c.candidate_id"""
    rows = store.sql(query, [rule_id]).to_pylist()
    report = {"sent": [], "failed": [], "deferred": [], "errors": []}
    if dry_run:
        report["would_send"] = [r["candidate_id"] for r in rows]
        return report
    consecutive = 0
    for i, row in enumerate(rows):
        if consecutive >= int(max_failures):
            report["deferred"] = [r["candidate_id"] for r in rows[i:]]
            report["errors"].append(f"webhook {url}: {consecutive} consecutive failures, stopped; "
                                    f"{len(report['deferred'])} candidates left for the next run")
            break
        message = {k: _clean(v) for k, v in row.items()}
        message["rule"] = rule
        status, error = "sent", None
        try:
            post_json(url, message, retries=retries, backoff=backoff, timeout=timeout)
            report["sent"].append(row["candidate_id"])
            consecutive = 0
        except AstrokitError as exc:
            consecutive += 1
            status, error = "failed", str(exc)
            report["failed"].append(row["candidate_id"])
            report["errors"].append(error)
        store.append("notifications", [{"notification_id": uuid.uuid4().hex, "candidate_id": row["candidate_id"],
                                        "rule_id": rule_id, "rule": rule, "url": url, "status": status,
                                        "error": error, "sent_at": datetime.now(timezone.utc)}])
    return report
