"""How messages show a caller's value: a short prefix, so a huge or hostile value is never echoed back whole."""

from __future__ import annotations

QUOTE_LIMIT = 40


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`repr` of the value, cut to its first `limit` characters (saying how long it was) when longer.

    A string is cut before `repr`, so the quote stays a valid literal; any other value is cut after.
    """
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"
