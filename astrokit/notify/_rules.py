"""Notification rules: a small, safe expression language translated to a SQL condition (pure, no I/O)."""

import re

from astrokit.exceptions import AstrokitError

__all__ = ["RULE_COLUMNS", "rule_to_sql"]

#: Columns a rule may use (candidates joined with their score), with their SQL expressions.
RULE_COLUMNS = {
    "real_bogus": "s.real_bogus", "s_corr": "c.s_corr", "mag": "c.mag", "mag_err": "c.mag_err",
    "flux": "c.flux", "flux_err": "c.flux_err", "ra": "c.ra", "dec": "c.dec", "mjd": "c.mjd", "band": "c.band",
    "origin": "c.origin", "is_positive": "c.is_positive", "flags": "c.flags", "survey_drb": "c.survey_drb",
    "survey_rb": "c.survey_rb",
}

_FUNCTIONS = {"abs": "abs"}
_TOKEN = re.compile(r"""\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)|(?P<string>'[^']*'|"[^"]*")
                        |(?P<op>>=|<=|==|!=|<>|[<>=(),-])|(?P<name>[A-Za-z_][A-Za-z0-9_]*))""", re.VERBOSE)
_WORDS = {"and": "AND", "or": "OR", "not": "NOT", "true": "TRUE", "false": "FALSE", "in": "IN"}


def rule_to_sql(rule):
    """Translate a notification rule to a SQL condition over ``candidates c`` joined with ``scores s``.

    The language: numbers, quoted strings, the columns of `RULE_COLUMNS`,
    comparisons (``< <= > >= == != =``), ``and``/``or``/``not``, parentheses,
    ``in (...)``, unary minus and ``abs()``. Anything else is rejected, so a
    rule can never inject SQL.

    Parameters
    ----------
    rule : str
        E.g. ``"real_bogus >= 0.9 and abs(s_corr) >= 8 and band in ('g', 'r')"``.

    Returns
    -------
    str
        The SQL condition.

    Raises
    ------
    AstrokitError
        If the rule has an unknown name or character (the message lists the columns).
    """
    out, pos, depth = [], 0, 0
    text = rule.strip()
    if not text:
        msg = "empty notification rule"
        raise AstrokitError(msg)
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            msg = f"rule {rule!r}: cannot read {text[pos:pos + 12]!r}; use columns {', '.join(RULE_COLUMNS)}"
            raise AstrokitError(msg)
        pos = m.end()
        if m.group("number"):
            out.append(m.group("number"))
        elif m.group("string"):
            out.append("'" + m.group("string")[1:-1].replace("'", "''") + "'")
        elif m.group("op"):
            op = {"==": "=", "!=": "<>"}.get(m.group("op"), m.group("op"))
            depth += {"(": 1, ")": -1}.get(op, 0)
            if depth < 0:
                msg = f"rule {rule!r}: unbalanced parentheses"
                raise AstrokitError(msg)
            out.append(op)
        else:
            name = m.group("name")
            low = name.lower()
            if low in _WORDS:
                out.append(_WORDS[low])
            elif name in RULE_COLUMNS:
                out.append(RULE_COLUMNS[name])
            elif name in _FUNCTIONS:
                out.append(_FUNCTIONS[name])
            else:
                msg = f"rule {rule!r}: unknown name {name!r}; use columns {', '.join(RULE_COLUMNS)} and abs()"
                raise AstrokitError(msg)
    if depth:
        msg = f"rule {rule!r}: unbalanced parentheses"
        raise AstrokitError(msg)
    return " ".join(out)
