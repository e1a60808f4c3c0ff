"""A rate limit as an operator writes it: `300/second`, `20/minute`, `1000/hour`, or `off`."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {"second": 1, "minute": 60, "hour": 3600}
_RATE = re.compile(r"\s*(\d+)\s*/\s*(second|minute|hour)\s*")


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """'300/second', '20/minute', '1000/hour'; 'off' (or '0') for no limit."""
        if text.strip().lower() in ("off", "0"):
            return None
        match = _RATE.fullmatch(text)
        if not match or int(match.group(1)) < 1:
            raise ValueError(f"expected N/second, N/minute, N/hour or off, got {text!r}")
        return cls(int(match.group(1)), _UNITS[match.group(2)])

    def __str__(self) -> str:
        unit = next(name for name, seconds in _UNITS.items() if seconds == self.seconds)
        return f"{self.count}/{unit}"
