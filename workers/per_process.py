"""One object a process, made on first use: a forked child makes its own instead of
using its parent's sockets and threads."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    def __init__(self, make: Callable[[], T], close: Callable[[T], None]) -> None:
        self._make = make
        self._close = close
        self._value: T | None = None
        self._pid = -1

    def get(self) -> T:
        if self._value is None or self._pid != os.getpid():
            self._value = self._make()
            self._pid = os.getpid()
        return self._value

    def reset(self) -> None:
        """Close the object if this process made it (a parent's is not ours to close)."""
        if self._value is not None and self._pid == os.getpid():
            self._close(self._value)
        self._value = None
