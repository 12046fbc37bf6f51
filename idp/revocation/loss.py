"""When a phone was lost, and when the head of unit's letter is therefore due.

The Ministry's letter (กค ๐๔๐๒.๒/ว ๒๔, ข้อ ๔) counts the 3 working days "นับจากวันที่โทรศัพท์
ที่เชื่อมต่อกับ Soft Token สูญหาย": from the day of the loss, not from the day it was reported.
A phone lost on Friday and reported on Tuesday has its letter due on Wednesday.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta

from idp.errors import IdpError
from idp.revocation.working_days import WorkingCalendar
from idp.roles.periods import thai_date
from thai_format import BANGKOK
from thai_format import parse_date

# A client's clock a little ahead of ours is not a loss in the future.
_CLOCK_SKEW = timedelta(minutes=2)
_TIME = re.compile(r"([01]?\d|2[0-3])[:.]([0-5]\d)")


class InvalidLossTimeError(IdpError):
    code = "invalid_lost_at"
    message = (
        "lost_at must be an ISO 8601 date or date-time (Thai time when it has no offset), "
        "not in the future."
    )


@dataclass(frozen=True)
class Loss:
    """The day of the loss (Thai calendar) and, when known, the moment."""

    day: date
    moment: datetime | None = None

    def letter_due(self, calendar: WorkingCalendar, letter_days: int) -> date:
        """The last day for the letter: ``letter_days`` working days after the loss day."""
        return calendar.add_working_days(self.day, letter_days)


def loss_now(now: datetime) -> Loss:
    """A loss reported without a date: it happened now, as far as anyone knows."""
    return Loss(day=thai_date(now), moment=now)


def validate_lost_at(value: object, *, now: datetime) -> Loss:
    """``lost_at`` of the admin API: ``2026-11-27`` or ``2026-11-27T18:30`` (Thai time) or
    with an offset (``…+07:00``, ``…Z``); absent means now.

    Raises:
        InvalidLossTimeError: not such a string, or a moment after ``now``.
    """
    if value is None:
        return loss_now(now)
    if not isinstance(value, str) or not 10 <= len(value.strip()) <= 40:
        raise InvalidLossTimeError()
    text = value.strip()
    try:
        if len(text) == 10:
            return _checked(Loss(day=date.fromisoformat(text)), now)
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidLossTimeError() from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BANGKOK)
    return _checked(Loss(day=thai_date(moment), moment=moment), now)


def validate_loss_form(day_text: str, time_text: str, *, now: datetime) -> Loss:
    """The pages' two fields: a date as people type it (either era, Thai digits) and an
    optional time (``18.30`` or ``18:30``, Thai time); an empty date means now.

    Raises:
        InvalidLossTimeError
    """
    day_text, time_text = day_text.strip()[:20], time_text.strip()[:8]
    if not day_text:
        if time_text:
            raise InvalidLossTimeError()
        return loss_now(now)
    try:
        day = parse_date(day_text)
    except ValueError as exc:
        raise InvalidLossTimeError() from exc
    if not time_text:
        return _checked(Loss(day=day), now)
    match = _TIME.fullmatch(time_text.translate(str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")))
    if match is None:
        raise InvalidLossTimeError()
    at = time(int(match.group(1)), int(match.group(2)), tzinfo=BANGKOK)
    return _checked(Loss(day=day, moment=datetime.combine(day, at)), now)


def _checked(loss: Loss, now: datetime) -> Loss:
    if loss.day > thai_date(now) or (loss.moment is not None and loss.moment > now + _CLOCK_SKEW):
        raise InvalidLossTimeError()
    if loss.day.year < 2000:
        raise InvalidLossTimeError()
    return loss
