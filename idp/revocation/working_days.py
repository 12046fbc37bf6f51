"""Thai civil-service working days, for "the head of unit's letter within 3 working days".

Weekends, public holidays with their substitution days, government-only holidays (Royal
Ploughing Day) and the cabinet's special holidays the ``holidays`` package knows; the cabinet
declares more during the year, so settings add days off (and may declare a listed day a
working day). Counting starts on the next working day after the event (the event's day is
day 0), as Thai administrative practice counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from datetime import timedelta

import holidays
from holidays.constants import GOVERNMENT
from holidays.constants import PUBLIC


class WorkingCalendar:
    def __init__(
        self, *, extra_days_off: Iterable[date] = (), extra_working_days: Iterable[date] = ()
    ):
        self._off = frozenset(extra_days_off)
        self._on = frozenset(extra_working_days)
        self._years: dict[int, holidays.HolidayBase] = {}

    def _holidays(self, year: int) -> holidays.HolidayBase:
        if year not in self._years:
            self._years[year] = holidays.country_holidays(
                "TH", years=year, categories=(PUBLIC, GOVERNMENT)
            )
        return self._years[year]

    def is_working_day(self, day: date) -> bool:
        if day in self._on:
            return True
        return day.weekday() < 5 and day not in self._off and day not in self._holidays(day.year)

    def add_working_days(self, start: date, count: int) -> date:
        """The ``count``-th working day after ``start`` (``start`` itself is day 0)."""
        day, left = start, count
        while left > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        return day

    def holiday_name(self, day: date) -> str | None:
        if day in self._off:
            return "วันหยุดราชการเพิ่มเติม"
        name = self._holidays(day.year).get(day)
        return str(name) if name else None
