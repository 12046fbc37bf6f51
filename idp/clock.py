"""Where "now" comes from: the system clock in production, a fake one in tests."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Return the current time, timezone-aware in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def epoch(moment: datetime) -> int:
    """Return whole seconds since 1970 (the NumericDate of RFC 7519 §2)."""
    return int(moment.timestamp())
