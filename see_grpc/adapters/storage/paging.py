"""Keyset paging: the page token is the opaque, url-safe encoding of the last row's (create_time, id)."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from see_grpc.adapters.storage.tables import as_utc
from see_grpc.errors import FieldViolation, InvalidArgumentError
from see_grpc.service.ports import MAX_PAGE_SIZE

S = TypeVar("S", bound=Select[Any])


def encode_token(create_time: datetime, key: str) -> str:
    raw = json.dumps([as_utc(create_time).isoformat(), key]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> tuple[datetime, str]:
    try:
        when, key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(key, str):
            raise TypeError("the key of a page token is a string")
        return as_utc(datetime.fromisoformat(when)), key
    except (ValueError, TypeError) as exc:  # binascii, unicode and JSON errors are all ValueErrors
        description = "not a token this service issued; pass next_page_token of the previous response unchanged"
        raise InvalidArgumentError(
            f"page_token is not valid: {description}", violations=[FieldViolation("page_token", description)]
        ) from exc


def keyset(
    stmt: S,
    time_col: InstrumentedAttribute[datetime],
    key_col: InstrumentedAttribute[str],
    *,
    page_size: int,
    page_token: str,
    newest_first: bool = False,
) -> S:
    """Order by (time, key), start after the token's row and fetch one extra row to learn if a next page exists."""
    if page_token:
        stmt = stmt.where(_after(time_col, key_col, *decode_token(page_token), newest_first=newest_first))
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
