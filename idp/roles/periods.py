"""Periods of designation, by Thai calendar date: an order designates a person "from" one day
"until" another, both days included, in Thailand's time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from datetime import datetime
from zoneinfo import ZoneInfo

THAILAND = ZoneInfo("Asia/Bangkok")


def thai_date(moment: datetime) -> date:
    """The date in Thailand at ``moment`` (an order's day starts at midnight in Bangkok)."""
    return moment.astimezone(THAILAND).date()


@dataclass(frozen=True)
class Period:
    start: date
    end: date | None  # open-ended until ended

    def overlaps(self, other: Period) -> bool:
        return (other.end is None or self.start <= other.end) and (
            self.end is None or other.start <= self.end
        )

    def contains(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)

    def within(self, other: Period) -> bool:
        """Every day of this period is a day of ``other``."""
        return other.start <= self.start and (
            other.end is None or (self.end is not None and self.end <= other.end)
        )
