"""How messages show a caller's value: a short prefix, so a huge or hostile value is never echoed back whole."""

from __future__ import annotations

QUOTE_LIMIT = 40


def quoted(value: str, limit: int = QUOTE_LIMIT) -> str:
    """`repr` of the value, cut to its first `limit` characters (saying how long it was) when longer."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"
