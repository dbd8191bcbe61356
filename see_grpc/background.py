"""One-off work started in a thread at start-up, whose result (or error) whoever needs it waits for."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")


def in_background(name: str, work: Callable[[], T]) -> Future[T]:
    """`work()` in a daemon thread; the future is running from the start, so a waiter that gives up (a timeout)
    cannot cancel it for the others."""
    future = Future[T]()
    future.set_running_or_notify_cancel()
    threading.Thread(target=_settle, args=(future, work), name=name, daemon=True).start()
    return future


def _settle(future: Future[T], work: Callable[[], T]) -> None:
    try:
        future.set_result(work())
    except BaseException as exc:  # the waiters see it, nobody else would
        future.set_exception(exc)
