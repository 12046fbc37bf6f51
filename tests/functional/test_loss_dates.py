"""The day of the loss, asked wherever a loss is reported (admin API, helpdesk console, the
user's own page) and kept on the case: the letter's three working days count from it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import select

from idp.mfa.models import Device
from idp.revocation.models import LostDeviceCase
from idp.revocation.working_days import WorkingCalendar
from idp.roles.periods import thai_date
from tests.factories import PASSWORD
from tests.functional.test_admin_api import call
from tests.functional.test_admin_console import console
from tests.functional.test_helpdesk_console import MALEE_ID
from tests.functional.test_helpdesk_console import stack as helpdesk_stack  # noqa: F401
from tests.functional.test_lost_phones import helpdesk_token
from tests.push_stack import Stack
from tests.push_stack import push_stack
from tests.rp import form_fields


@pytest.fixture
def stack(settings, deps, tmp_path) -> Iterator[Stack]:
    with push_stack(settings, deps, tmp_path, users=("malee",)) as running:
        yield running


def set_clock(stack: Stack, moment: datetime) -> None:
    stack.deps.clock.advance((moment - stack.deps.clock.now()).total_seconds())


def suspend(stack: Stack, **body: object):
    return call(stack, helpdesk_token(stack), "POST", "/users/malee/suspend-phone",
                json={"reason": "lost", **body})  # fmt: skip


def test_a_phone_lost_on_friday_and_reported_on_tuesday_is_still_on_time(stack):
    set_clock(stack, datetime(2026, 11, 24, 3, 0, tzinfo=UTC))  # Tuesday, 10.00 in Bangkok
    answer = suspend(stack, lost_at="2026-11-20")
    assert answer.status_code == 201, answer.text
    case = answer.json()
    assert (case["lost_at"], case["letter_due"]) == ("2026-11-20", "2026-11-25")
    assert (case["overdue"], case["overdue_when_reported"]) == (False, False)
    with stack.deps.sessions() as session:
        stored = session.get(LostDeviceCase, case["id"])
        assert (stored.lost_on, stored.lost_at) == (date(2026, 11, 20), None)


def test_a_loss_before_a_long_weekend_counts_past_it(stack):
    # Lost on Friday 4 December 2026 at 18.30; Father's Day is given back on Monday 7 and
    # Constitution Day falls on Thursday 10; reported on Tuesday 8.
    set_clock(stack, datetime(2026, 12, 8, 2, 0, tzinfo=UTC))
    case = suspend(stack, lost_at="2026-12-04T18:30").json()
    assert case["lost_at"] == "2026-12-04T18:30:00+07:00"
    assert case["letter_due"] == "2026-12-11"
    assert case["overdue"] is False


def test_a_case_reported_after_its_last_day_opens_overdue(stack):
    set_clock(stack, datetime(2026, 11, 24, 3, 0, tzinfo=UTC))
    case = suspend(stack, lost_at="2026-11-16T08:00:00+07:00").json()
    assert case["letter_due"] == "2026-11-19"
    assert (case["overdue"], case["overdue_when_reported"]) == (True, True)
    listed = call(stack, helpdesk_token(stack), "GET", "/cases", params={"overdue": "1"})
    assert [c["id"] for c in listed.json()["cases"]] == [case["id"]]


def test_without_lost_at_the_loss_is_now(stack):
    case = suspend(stack).json()
    today = thai_date(stack.deps.clock.now())
    assert case["lost_at"].startswith(today.isoformat())
    assert case["letter_due"] == WorkingCalendar().add_working_days(today, 3).isoformat()


@pytest.mark.parametrize("lost_at", ["tomorrow", "2569-11-20", "20/11/2026", 20261120, "later"])
def test_a_future_or_malformed_lost_at_is_refused_and_suspends_nothing(stack, lost_at):
    if lost_at == "tomorrow":
        lost_at = (thai_date(stack.deps.clock.now()) + timedelta(days=1)).isoformat()
    if lost_at == "later":
        lost_at = (stack.deps.clock.now() + timedelta(hours=1)).isoformat()
    answer = suspend(stack, lost_at=lost_at)
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_lost_at")
    with stack.deps.sessions() as session:
        assert set(session.scalars(select(Device.status))) == {"active"}
        assert session.scalar(select(LostDeviceCase)) is None


def test_the_helpdesk_and_the_user_give_the_day_on_their_pages(helpdesk_stack):  # noqa: F811
    stack = helpdesk_stack
    yesterday = thai_date(stack.deps.clock.now()) - timedelta(days=1)
    buddhist_era = f"{yesterday.day}/{yesterday.month}/{yesterday.year + 543}"
    mine = console(stack, "malee", "/account")
    assert 'id="lost-on"' in mine.page.text
    future = mine.go(f"{stack.idp}/account/report-lost-phone", "POST", data={
        **form_fields(mine.page.text), "password": PASSWORD, "citizen_id": MALEE_ID,
        "lost_on": f"{yesterday.day}/{yesterday.month}/{yesterday.year + 544}"})  # fmt: skip
    assert future.status_code == 400
    assert 'id="report-error"' in future.text
    reported = mine.go(f"{stack.idp}/account/report-lost-phone", "POST", data={
        **form_fields(mine.page.text), "password": PASSWORD, "citizen_id": MALEE_ID,
        "lost_on": buddhist_era, "lost_time": "21.15"})  # fmt: skip
    assert 'id="reported"' in reported.text
    with stack.deps.sessions() as session:
        case = session.scalar(select(LostDeviceCase))
        assert case.lost_on == yesterday
        assert case.lost_at.astimezone(UTC).hour == 14  # 21.15 in Bangkok
        assert case.letter_due == WorkingCalendar().add_working_days(yesterday, 3)

    helpdesk = console(stack, "helpdesk1", "/helpdesk")
    page = helpdesk.go(f"{stack.idp}/helpdesk/users/somchai")
    assert 'id="lost-on"' in page.text


def test_the_openapi_document_describes_lost_at(app):
    document = app.test_client().get("/api/admin/v1/openapi.json").get_json()
    operation = document["paths"]["/users/{username}/suspend-phone"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert "lost_at" in body["properties"]
    case = document["components"]["schemas"]["Case"]["properties"]
    assert {"lost_at", "letter_due", "overdue_when_reported"} <= set(case)
