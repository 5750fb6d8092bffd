"""Post new candidates that pass a rule to a webhook, with retries; remember what was sent."""

import hashlib
import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone

from astrokit.exceptions import AstrokitError
from astrokit.notify._rules import rule_to_sql

__all__ = ["notify_candidates", "post_json"]

_FIELDS = ("candidate_id", "origin", "alert_id", "object_id", "ra", "dec", "mjd", "band", "mag", "mag_err", "s_corr",
           "flux", "flux_err", "is_positive", "flags", "real_bogus", "model_name", "model_version")


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
    if not url.startswith(("http://", "https://")):
        msg = f"webhook URL {url!r} must start with http:// or https://"
        raise AstrokitError(msg)
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


def notify_candidates(store, *, rule, url, retries=3, backoff=1.0, timeout=10.0, dry_run=False):
    """Post one JSON message per candidate that passes ``rule`` and was not yet sent to ``url`` for this rule.

    A candidate's score is its latest one. Each message sent is recorded in
    the append-only ``notifications`` table, so a re-run sends only new
    candidates; a message that still fails after the retries is recorded as
    failed and tried again on the next run.

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

    Returns
    -------
    dict
        ``sent``, ``failed`` (lists of candidate_id) and ``errors`` (one line each).

    Raises
    ------
    AstrokitError
        If the rule is invalid.
    """
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
    report = {"sent": [], "failed": [], "errors": []}
    if dry_run:
        report["would_send"] = [r["candidate_id"] for r in rows]
        return report
    for row in rows:
        message = {k: _clean(v) for k, v in row.items()}
        message["rule"] = rule
        status, error = "sent", None
        try:
            post_json(url, message, retries=retries, backoff=backoff, timeout=timeout)
            report["sent"].append(row["candidate_id"])
        except AstrokitError as exc:
            status, error = "failed", str(exc)
            report["failed"].append(row["candidate_id"])
            report["errors"].append(error)
        store.append("notifications", [{"notification_id": uuid.uuid4().hex, "candidate_id": row["candidate_id"],
                                        "rule_id": rule_id, "rule": rule, "url": url, "status": status,
                                        "error": error, "sent_at": datetime.now(timezone.utc)}])
    return report
