from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime

import pytest

from thai_format import format_date
from thai_format import format_datetime
from thai_format import format_time
from thai_format import parse_date


def test_format_date_uses_the_buddhist_era_in_thai():
    assert format_date(date(2026, 12, 2), "th") == "2 ธ.ค. 2569"
    assert format_date(date(2026, 12, 2), "th", long=True) == "2 ธันวาคม 2569"
    assert format_date(date(2026, 12, 2), "en") == "2 Dec 2026"
    assert format_date(None, "th") == ""


def test_format_date_of_a_moment_is_the_day_in_thailand():
    late_utc = datetime(2026, 12, 1, 18, 30, tzinfo=UTC)  # 01.30 on 2 December in Bangkok
    assert format_date(late_utc, "th") == "2 ธ.ค. 2569"


def test_format_time_writes_thai_time_with_a_full_stop():
    moment = datetime(2026, 12, 2, 2, 30, tzinfo=UTC)
    assert format_time(moment, "th") == "09.30 น."
    assert format_time(moment, "en") == "09:30"
    assert format_datetime(moment, "th") == "2 ธ.ค. 2569 09.30 น."
    assert format_datetime(moment, "en") == "2 Dec 2026 09:30 (ICT)"


def test_a_naive_moment_is_taken_as_utc():
    assert format_time(datetime(2026, 12, 2, 2, 30), "th") == "09.30 น."  # noqa: DTZ001


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-02", date(2026, 12, 2)),
        ("2/12/2569", date(2026, 12, 2)),
        ("02.12.2026", date(2026, 12, 2)),
        ("๒/๑๒/๒๕๖๙", date(2026, 12, 2)),
        (" 2569-12-02 ", date(2026, 12, 2)),
    ],
)
def test_parse_date_accepts_either_era_and_thai_digits(text, expected):
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", ["", "2/13/2569", "31/2/2026", "yesterday", "2026-12-02\n1"])
def test_parse_date_refuses_what_is_not_a_date(text):
    with pytest.raises(ValueError, match="date"):
        parse_date(text)
