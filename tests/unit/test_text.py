"""Messages quote a caller's value by a short prefix at most."""

from __future__ import annotations

import pytest

from see_grpc.text import QUOTE_LIMIT, quoted

pytestmark = pytest.mark.unit


def test_a_short_string_is_its_repr() -> None:
    assert quoted("EUR/USD") == "'EUR/USD'"
    assert quoted("1h\x00") == "'1h\\x00'"  # a NUL is shown escaped, never sent raw


def test_a_long_string_is_cut_before_repr_and_says_its_length() -> None:
    assert quoted("a" * 1_000_000) == f"{'a' * QUOTE_LIMIT!r}... (1000000 characters)"


def test_other_values_are_cut_after_repr() -> None:
    assert quoted(12.5) == "12.5"
    nested = {"x": list(range(1_000))}
    text = quoted(nested)
    assert text.startswith(repr(nested)[:QUOTE_LIMIT]) and text.endswith(f"({len(repr(nested))} characters)")
    assert len(text) < QUOTE_LIMIT + 30
