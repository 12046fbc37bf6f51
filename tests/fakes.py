"""Test doubles for things outside our control: the passage of time."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta


class FakeClock:
    """A clock that moves only when told to (never sleep to wait for an expiry)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC).replace(microsecond=0)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
