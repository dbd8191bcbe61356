"""Keyset paging: the page token is the opaque, url-safe encoding of where the next page starts.

Lists of rows continue after the last row's (create_time, id); a backtest's trades continue at a trade index and an
optimization's trials after a sort key. Every token also carries its scope: which list it pages (strategies,
backtests, ...) with the filters it was issued for, or the backtest or optimization whose trades or trials it pages.
A token used with another scope is refused, as AIP-158 asks, rather than silently continuing another list at a
position that means nothing there.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from see_grpc.adapters.storage.tables import as_utc
from see_grpc.errors import FieldViolation, InvalidArgumentError
from see_grpc.service.ports import MAX_PAGE_SIZE, Page

S = TypeVar("S", bound=Select[Any])
R = TypeVar("R")
T = TypeVar("T")
K = TypeVar("K")


def _pack(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _unpack(token: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def _bad_token(description: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"page_token is not valid: {description}", violations=[FieldViolation("page_token", description)]
    )


NOT_OURS = "not a token this service issued; pass next_page_token of the previous response unchanged"
OTHER_FILTERS = (
    "it was issued for another list (other filters, or another backtest or optimization); keep the request the same "
    "while paging, or start without a token"
)
# Every number a token carries (a trade index, a walk-forward window, a trial number or rank) is an int32 of the API.
MAX_TOKEN_NUMBER = 2**31 - 1
# What a forged token may hold that the decoders below turn into a refusal rather than a 500: binascii, unicode and
# JSON errors are ValueErrors, a wrong shape is a TypeError, a date out of datetime's range an OverflowError.
_MALFORMED = (ValueError, TypeError, OverflowError)


def token_number(value: Any, lowest: int = 0, highest: int = MAX_TOKEN_NUMBER) -> int:
    """A whole number of a decoded token, as the service writes them: JSON true, floats (NaN and the infinities
    json.loads accepts) and numbers outside [lowest, highest] are refused with a TypeError."""
    if type(value) is not int or not lowest <= value <= highest:
        raise TypeError(f"a page token number is a whole number from {lowest} to {highest}")
    return value


def encode_token(create_time: datetime, key: str, scope: Sequence[str]) -> str:
    return _pack([as_utc(create_time).isoformat(), key, *scope])


def decode_token(token: str, scope: Sequence[str]) -> tuple[datetime, str]:
    """The (time, key) a list continues after; refused if it was issued for another scope."""
    try:
        when, key, *issued = _unpack(token)
        if not isinstance(when, str) or not isinstance(key, str):
            raise TypeError("a page token is a time and a key, both strings")
        if "\x00" in key:  # PostgreSQL text holds no NUL
            raise ValueError("a page token's key holds a NUL")
        key.encode()  # a lone surrogate (UnicodeEncodeError), which no database driver can send
        after = as_utc(datetime.fromisoformat(when)), key
    except _MALFORMED as exc:
        raise _bad_token(NOT_OURS) from exc
    _require_scope(issued, scope)
    return after


def encode_position(index: int, scope: Sequence[str]) -> str:
    return _pack([index, *scope])


def decode_position(token: str, scope: Sequence[str]) -> int:
    """The index a token continues at; refused if it was issued for another scope."""
    try:
        first, *issued = _unpack(token)
        index = token_number(first)
    except _MALFORMED as exc:
        raise _bad_token(NOT_OURS) from exc
    _require_scope(issued, scope)
    return index


def encode_key(key: Sequence[int | str], scope: Sequence[str]) -> str:
    return _pack([list(key), *scope])


def decode_key(token: str, scope: Sequence[str], parse: Callable[[list[Any]], K]) -> K:
    """The sort key a token continues after, parsed (parse raises ValueError, TypeError or OverflowError for a bad
    one, token_number checks its whole numbers); refused if it was issued for another scope."""
    try:
        key, *issued = _unpack(token)
        if not isinstance(key, list):
            raise TypeError("a key token is a sort key and its scope")
        parsed = parse(key)
    except _MALFORMED as exc:
        raise _bad_token(NOT_OURS) from exc
    _require_scope(issued, scope)
    return parsed


def _require_scope(issued: list[Any], scope: Sequence[str]) -> None:
    if issued != list(scope):  # a forged scope of other types is simply another scope
        raise _bad_token(OTHER_FILTERS)


def page_of(
    rows: Sequence[R],
    page_size: int,
    convert: Callable[[R], T],
    key: Callable[[T], tuple[datetime, str]],
    scope: Sequence[str],
) -> Page[T]:
    """A page from a keyset() query's rows (one more than the page when a next page exists); `scope`: the
    filters of the query, as keyset() was given them."""
    items = [convert(row) for row in rows[: clamp(page_size)]]
    return Page(items, encode_token(*key(items[-1]), scope) if len(rows) > len(items) else "")


def keyset(
    stmt: S,
    time_col: InstrumentedAttribute[datetime],
    key_col: InstrumentedAttribute[str],
    *,
    page_size: int,
    page_token: str,
    scope: Sequence[str],
    newest_first: bool = False,
) -> S:
    """Order by (time, key), start after the token's row and fetch one extra row to learn if a next page exists;
    `scope`: the filters of the query (a token issued for others is refused)."""
    if page_token:
        after = decode_token(page_token, scope)
        stmt = stmt.where(_after(time_col, key_col, *after, newest_first=newest_first))
    order = (time_col.desc(), key_col.desc()) if newest_first else (time_col, key_col)
    return stmt.order_by(*order).limit(clamp(page_size) + 1)


def clamp(page_size: int) -> int:
    return max(1, min(page_size, MAX_PAGE_SIZE))


def _after(
    time_col: InstrumentedAttribute[datetime],
    key_col: InstrumentedAttribute[str],
    when: datetime,
    key: str,
    *,
    newest_first: bool,
) -> ColumnElement[bool]:
    # Spelled out rather than a row-value comparison so the bind values take the columns' types (UTC on SQLite).
    if newest_first:
        return or_(time_col < when, and_(time_col == when, key_col < key))
    return or_(time_col > when, and_(time_col == when, key_col > key))
