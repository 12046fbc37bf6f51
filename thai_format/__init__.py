"""Dates and times as Thai government pages write them, shared by the IdP and the portal.

A neutral package: it imports neither ``idp`` nor ``gfms_portal`` (they are separate
processes that only talk HTTP), only the standard library.

- Dates in Thai carry the Buddhist-era year (BE = CE + 543): ``2 ธ.ค. 2569``.
- Times are Thailand's time (Asia/Bangkok, UTC+7, no daylight saving) written with a full
  stop, as the Royal Institute's usage has it: ``09.30 น.``.
- Dates typed by people may use either era and Thai digits: ``2/12/2569``, ``๒/๑๒/๒๕๖๙``,
  ``2026-12-02``.
"""

from __future__ import annotations

import re
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from datetime import timezone

# Thailand keeps UTC+7 all year; a fixed offset avoids needing the tz database on a bare machine.
BANGKOK = timezone(timedelta(hours=7), "ICT")
BE_OFFSET = 543
# A year above this is read as Buddhist era (BE 2400 is CE 1857: no order is dated so).
_BE_THRESHOLD = 2400

MONTHS_TH_SHORT = ("ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.", "ก.ค.", "ส.ค.", "ก.ย.",
                   "ต.ค.", "พ.ย.", "ธ.ค.")  # fmt: skip
MONTHS_TH = ("มกราคม", "กุมภาพันธ์", "มีนาคม", "เมษายน", "พฤษภาคม", "มิถุนายน", "กรกฎาคม",
             "สิงหาคม", "กันยายน", "ตุลาคม", "พฤศจิกายน", "ธันวาคม")  # fmt: skip
MONTHS_EN_SHORT = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                   "Dec")  # fmt: skip
_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
_DATE_DMY = re.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})")
_DATE_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")


def in_thailand(moment: datetime) -> datetime:
    """The same instant on Thailand's clock; a naive value is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(BANGKOK)


def format_date(day: date | datetime | None, lang: str, *, long: bool = False) -> str:
    """``2 ธ.ค. 2569`` in Thai (``2 ธันวาคม 2569`` when long), ``2 Dec 2026`` otherwise.

    A datetime is first moved to Thailand's clock, so a late UTC evening is the next day.
    """
    if day is None:
        return ""
    if isinstance(day, datetime):
        day = in_thailand(day).date()
    if lang == "th":
        months = MONTHS_TH if long else MONTHS_TH_SHORT
        return f"{day.day} {months[day.month - 1]} {day.year + BE_OFFSET}"
    return f"{day.day} {MONTHS_EN_SHORT[day.month - 1]} {day.year}"


def format_time(moment: datetime | None, lang: str) -> str:
    """``09.30 น.`` in Thai, ``09:30`` otherwise; always Thailand's time."""
    if moment is None:
        return ""
    local = in_thailand(moment)
    if lang == "th":
        return f"{local:%H}.{local:%M} น."
    return f"{local:%H:%M}"


def format_datetime(moment: datetime | None, lang: str) -> str:
    """``2 ธ.ค. 2569 09.30 น.`` in Thai, ``2 Dec 2026 09:30 (Thai time)`` otherwise."""
    if moment is None:
        return ""
    if lang == "th":
        return f"{format_date(moment, lang)} {format_time(moment, lang)}"
    return f"{format_date(moment, lang)} {format_time(moment, lang)} (ICT)"


def parse_date(text: str) -> date:
    """A date typed in either era, with Arabic or Thai digits.

    Accepts ``YYYY-MM-DD`` and ``D/M/YYYY`` (also with ``.`` or ``-``); a year above 2400 is
    Buddhist era. Raises ``ValueError`` on anything else or on a day that does not exist.
    """
    value = text.strip().translate(_THAI_DIGITS)
    if match := _DATE_ISO.fullmatch(value):
        year, month, day = (int(part) for part in match.groups())
    elif match := _DATE_DMY.fullmatch(value):
        day, month, year = (int(part) for part in match.groups())
    else:
        raise ValueError(f"not a date: {text!r}")
    if year > _BE_THRESHOLD:
        year -= BE_OFFSET
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise ValueError(f"not a date: {text!r}") from exc
