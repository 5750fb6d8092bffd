"""Webhook notifications: post each new candidate that passes a rule, e.g. ``real_bogus >= 0.9``."""

from astrokit.notify._rules import RULE_COLUMNS, rule_to_sql
from astrokit.notify._webhook import check_webhook_url, notify_candidates, post_json

__all__ = ["RULE_COLUMNS", "check_webhook_url", "notify_candidates", "post_json", "rule_to_sql"]
