"""The IdP's pages as a Thai civil servant reads them: Buddhist-era dates and Thailand's time
(09.30 น.), and no code shown alone — event names, case reasons, role and alert keys, and
people's ids become sentences and names."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from idp.accounts.models import User
from idp.audit.alerts import raise_alert
from idp.audit.service import NO_CONTEXT
from idp.audit.service import record
from idp.roles.authority import SYSTEM
from idp.roles.authority import grant_admin_role
from idp.roles.designations import assign_directly
from idp.roles.models import AdminRole
from idp.web.event_texts import EVENT_LABELS
from idp.web.role_texts import ALERT_LABELS
from tests.functional.test_admin_api import call
from tests.functional.test_admin_api import token_of
from tests.functional.test_admin_console import UNIT
from tests.functional.test_admin_console import console
from tests.functional.test_admin_console import set_up_office
from tests.functional.test_helpdesk_console import STAFF
from tests.push_stack import Stack
from tests.push_stack import push_stack

# 2 Dec 2026, 02.30 UTC: 09.30 in Bangkok.
MOMENT = datetime(2026, 12, 2, 2, 30, tzinfo=UTC)


class VisibleText(HTMLParser):
    """What a reader sees: text outside scripts and styles, without attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self._hidden += tag in ("script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in ("script", "style")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def visible(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return " ".join(parser.parts)


def raw_codes(text: str, subs: set[str]) -> list[str]:
    """Codes a person should never have to read."""
    found = [code for code in (*EVENT_LABELS, *ALERT_LABELS) if code in text]
    found += re.findall(r"\b(?:lost|stolen|compromised|approve-[12]|recorder)\b", text)
    found += [sub for sub in subs if sub in text]
    found += re.findall(r"\b20\d\d-\d\d-\d\d\b|\bUTC\b|\b\d\d:\d\d\b", text)  # CE dates, UTC
    return found


@pytest.fixture
def stack(settings, deps, tmp_path) -> Iterator[Stack]:
    with push_stack(settings, deps, tmp_path, users=STAFF) as running:
        set_up_office(running.deps)
        with running.deps.sessions.begin() as session:
            people = {u.username: u for u in session.scalars(select(User))}
            malee, prasert = people["malee"], people["prasert"]
            malee.unit_code = UNIT
            now = running.deps.clock.now()
            grant_admin_role(session, SYSTEM, people["helpdesk1"], AdminRole.HELPDESK, now=now,
                             actor="test", audit=NO_CONTEXT)  # fmt: skip
            assign_directly(session, unit_code=UNIT, user=prasert, role="approve-2",
                            valid_from=now.date(), now=now, actor="test", reason="seed",
                            audit=NO_CONTEXT)  # fmt: skip
            record(session, "login.failed", now=MOMENT, outcome="failure", user=malee.sub)
            raise_alert(session, "mfa.reported_not_me", user_id=malee.id, now=MOMENT,
                        client="gfms-portal")  # fmt: skip
            raise_alert(session, "separation_of_duties", user_id=prasert.id, now=MOMENT,
                        unit=UNIT, roles=["approve-1", "approve-2"])  # fmt: skip
        helpdesk = token_of(running, "helpdesk1")
        suspended = call(running, helpdesk, "POST", "/users/malee/suspend-phone",
                         json={"reason": "lost"})  # fmt: skip
        assert suspended.status_code == 201, suspended.text
        yield running


def subs_of(stack: Stack) -> set[str]:
    with stack.deps.sessions() as session:
        return set(session.scalars(select(User.sub)))


@pytest.mark.parametrize(
    ("username", "path"),
    [
        ("helpdesk1", "/helpdesk"),
        ("helpdesk1", "/helpdesk/users/malee"),
        ("helpdesk1", "/admin/cases"),
        ("prasert", "/account"),
        ("prasert", "/account/roles"),
    ],
)
def test_pages_show_sentences_names_and_thai_dates_never_codes(stack, username, path):
    login = console(stack, username, "/helpdesk" if username == "helpdesk1" else "/account")
    page = login.go(f"{stack.idp}{path}")
    assert page.status_code == 200
    text = visible(page.text)
    assert raw_codes(text, subs_of(stack)) == []
    assert re.search(r"\d{1,2} (?:ม\.ค\.|ก\.พ\.|มี\.ค\.|เม\.ย\.|พ\.ค\.|มิ\.ย\.|ก\.ค\.|ส\.ค\.|"
                     r"ก\.ย\.|ต\.ค\.|พ\.ย\.|ธ\.ค\.) 25\d\d", text)  # fmt: skip


def test_the_helpdesk_reads_the_events_and_alerts_as_sentences_in_thai_time(stack):
    text = visible(console(stack, "helpdesk1", "/helpdesk").page.text)

    assert "2 ธ.ค. 2569 09.30 น." in text
    assert "ผู้อนุมัติเบิกเงิน" in text  # approve-1, as the letter names it
    login = console(stack, "helpdesk1", "/helpdesk")
    person = visible(login.go(f"{stack.idp}/helpdesk/users/malee").text)
    assert "เข้าสู่ระบบไม่สำเร็จ" in person  # login.failed
    assert "สูญหาย" in person  # the case's reason


def test_the_checker_finds_a_raw_code():
    """The test above could fail: a page showing codes is caught."""
    shown = visible("<td>login.failed</td><td>lost</td><td>2026-12-02 02:30 UTC</td>")
    assert set(raw_codes(shown, set())) == {"login.failed", "lost", "2026-12-02", "UTC", "02:30"}
