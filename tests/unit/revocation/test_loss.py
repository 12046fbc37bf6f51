"""The day of a loss as the API and the pages take it, and the letter's last day counted
from it (กค ๐๔๐๒.๒/ว ๒๔ ข้อ ๔: three working days from the day the phone was lost)."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime

import pytest

from idp.revocation.loss import InvalidLossTimeError
from idp.revocation.loss import Loss
from idp.revocation.loss import validate_loss_form
from idp.revocation.loss import validate_lost_at
from idp.revocation.working_days import WorkingCalendar

# Tuesday 24 November 2026, 10.00 in Bangkok.
TUESDAY = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
AT_1830 = datetime(2026, 11, 20, 11, 30, tzinfo=UTC)


def test_a_phone_lost_on_friday_and_reported_on_tuesday_is_due_on_wednesday():
    loss = validate_lost_at("2026-11-20", now=TUESDAY)
    assert loss == Loss(day=date(2026, 11, 20))
    # Monday, Tuesday, Wednesday: the letter is still on time when reported on Tuesday.
    assert loss.letter_due(WorkingCalendar(), 3) == date(2026, 11, 25)


def test_a_loss_before_a_long_weekend_skips_it():
    # Friday 4 December 2026, evening: Father's Day (Saturday 5) is given back on Monday 7,
    # and Thursday 10 is Constitution Day.
    loss = validate_lost_at("2026-12-04T18:30", now=datetime(2026, 12, 8, 2, 0, tzinfo=UTC))
    assert loss.day == date(2026, 12, 4)
    assert loss.moment == datetime(2026, 12, 4, 11, 30, tzinfo=UTC)  # Thai time without offset
    assert loss.letter_due(WorkingCalendar(), 3) == date(2026, 12, 11)


def test_a_moment_with_an_offset_is_read_in_thailand():
    # 20.00 UTC on Friday is 03.00 on Saturday in Bangkok: a Saturday loss, due Wednesday.
    loss = validate_lost_at("2026-11-20T20:00:00Z", now=TUESDAY)
    assert loss.day == date(2026, 11, 21)
    assert loss.letter_due(WorkingCalendar(), 3) == date(2026, 11, 25)


def test_no_lost_at_means_now():
    loss = validate_lost_at(None, now=TUESDAY)
    assert (loss.day, loss.moment) == (date(2026, 11, 24), TUESDAY)


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-25",  # tomorrow
        "2026-11-24T12:00",  # later today, Thai time
        "2026-11-24T06:00:00Z",  # later today, in UTC
        "2569-11-20",  # a Buddhist-era year is not ISO 8601 (and lies in the future)
        "20/11/2026",
        "yesterday",
        "2026-02-30",
        "1999-12-31",
        "",
        42,
        ["2026-11-20"],
    ],
)
def test_lost_at_refuses_what_is_not_a_past_iso_date(value):
    with pytest.raises(InvalidLossTimeError):
        validate_lost_at(value, now=TUESDAY)


@pytest.mark.parametrize(
    ("day", "at", "expected"),
    [
        ("20/11/2569", "", Loss(day=date(2026, 11, 20))),
        ("๒๐/๑๑/๒๕๖๙", "", Loss(day=date(2026, 11, 20))),
        (
            "2026-11-20",
            "18.30",
            Loss(date(2026, 11, 20), AT_1830),
        ),
        (
            "20/11/2569",
            "๑๘:๓๐",
            Loss(date(2026, 11, 20), AT_1830),
        ),
        ("", "", Loss(day=date(2026, 11, 24), moment=TUESDAY)),
    ],
)
def test_the_pages_take_either_era_and_an_optional_time(day, at, expected):
    assert validate_loss_form(day, at, now=TUESDAY) == expected


@pytest.mark.parametrize(
    ("day", "at"),
    [("25/11/2569", ""), ("24/11/2569", "23.00"), ("20/11/2569", "25.00"), ("", "18.30"),
     ("31/02/2569", ""), ("soon", "")],
)  # fmt: skip
def test_the_pages_refuse_a_future_or_impossible_loss(day, at):
    with pytest.raises(InvalidLossTimeError):
        validate_loss_form(day, at, now=TUESDAY)
