"""How messages show a caller's value (a short prefix, so a huge or hostile value is never echoed back whole), and
what a caller may see of a message (no server folders or service addresses)."""

from __future__ import annotations

import re

QUOTE_LIMIT = 40


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`repr` of the value, cut to its first `limit` characters (saying how long it was) when longer.

    A string is cut before `repr`, so the quote stays a valid literal; any other value is cut after.
    """
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


# What a caller may see of an error message. The log keeps it whole, under the request id (CallTracker.fail).
# Short: a status message travels in gRPC trailers, and one over their size limit reaches the client as
# RESOURCE_EXHAUSTED instead of the real error.
MAX_MESSAGE_CHARS = 1000
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
# Absolute paths of two or more segments, not preceded by a word character ("EUR/USD") and not API routes.
_SERVER_PATH = re.compile(r"(?<![\w.~-])(?!/api/|/health)/[\w.~+@-]+(?:/[\w.~+@-]+)+/?")


def public_text(text: str) -> str:
    """An error message fit for the caller: no server folders or service addresses, and short."""
    text = _SERVER_PATH.sub(_last_segment, _URL.sub("<address>", text))
    return text if len(text) <= MAX_MESSAGE_CHARS else f"{text[:MAX_MESSAGE_CHARS]}... (cut)"


def _last_segment(path: re.Match[str]) -> str:
    return ".../" + path.group().rstrip("/").rsplit("/", 1)[-1]
