"""The portal writes Thai dates and times as the IdP does (issue 18), through thai_format."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

from gfms_portal.i18n import format_date


def test_thai_time_with_a_full_stop_and_the_buddhist_era():
    moment = datetime(2026, 12, 2, 3, 59, tzinfo=UTC)
    assert format_date(moment, "th") == "2 ธ.ค. 2569 10.59 น."
    assert format_date(moment, "en") == "2 Dec 2026 10:59 (ICT)"


def test_a_late_utc_evening_is_the_next_day_in_thailand():
    # SQLite hands back naive values: they are UTC.
    naive = datetime(2026, 12, 31, 18, 5)  # noqa: DTZ001 - what SQLite returns
    assert format_date(naive, "th") == "1 ม.ค. 2570 01.05 น."
