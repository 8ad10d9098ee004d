"""Secrets resolved on first use, so a function that never needs one never reads it (and its
role need not be allowed to)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    """`load()` once, on the first `get()`; a plain value is wrapped as already loaded."""

    def __init__(self, load: Callable[[], T] | T) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._value: T | None = None
        self._loaded = not callable(load)
        if self._loaded:
            self._value = load  # type: ignore[assignment]

    def get(self) -> T:
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._value = self._load()  # type: ignore[operator]
                    self._loaded = True
        return self._value  # type: ignore[return-value]

    def map(self, transform: Callable[[T], T2]) -> Lazy[T2]:
        return Lazy(lambda: transform(self.get()))


T2 = TypeVar("T2")
