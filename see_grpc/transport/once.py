"""Encode a stream's message once for all its subscribers.

A stream servicer hands every subscriber of an event the same message object (see servicers/execution.py), so the
wire form is cached by identity: a thousand subscribers cost one encoding and a thousand dictionary look-ups.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

M = TypeVar("M")
T = TypeVar("T")


class EncodedOnce(Generic[M, T]):
    """The encodings of the last `size` messages, by identity (each entry keeps its message alive, so an id is not
    reused while it is cached)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._encoded: OrderedDict[int, tuple[M, T]] = OrderedDict()

    def get(self, message: M) -> T | None:
        hit = self._encoded.get(id(message))
        return hit[1] if hit is not None and hit[0] is message else None

    def put(self, message: M, encoded: T) -> T:
        self._encoded[id(message)] = (message, encoded)
        if len(self._encoded) > self._size:
            self._encoded.popitem(last=False)
        return encoded

    def encoder(self, encode: Callable[[M], T]) -> Callable[[M], T]:
        """`encode`, answered from the cache when the same message comes again."""

        def encoded(message: M) -> T:
            hit = self.get(message)
            return hit if hit is not None else self.put(message, encode(message))

        return encoded
