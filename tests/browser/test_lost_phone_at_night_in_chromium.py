"""Real Chromium: at night, the helpdesk suspends a caller's phone in one step (no call-back is
possible then, and none is asked for); the next morning's head of unit opens the case and
downloads the letter to CGD, whose Thai text carries the case's facts."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from idp.accounts.models import User
from idp.audit.service import NO_CONTEXT
from idp.revocation.models import LostDeviceCase
from idp.roles.authority import SYSTEM
from idp.roles.authority import grant_admin_role
from idp.roles.models import AdminRole
from tests.browser.demo_stack import PASSWORD
from tests.browser.demo_stack import confirm_on_phone
from tests.browser.test_thai_screenshots_in_chromium import keep
from tests.functional.test_admin_console import UNIT
from tests.functional.test_admin_console import set_up_office
from tests.push_stack import Stack
from tests.push_stack import push_stack

pytestmark = pytest.mark.browser

STAFF = ("head1", "treasury1", "treasury2", "malee", "helpdesk1")
_ARABIC = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")


@pytest.fixture
def stack(settings, deps, tmp_path) -> Iterator[Stack]:
    # The staff sign in when their shift starts; the clock then moves to the night, so their
    # sessions may idle that long (the phones keep real time and sign only at sign-in).
    with push_stack(settings, deps, tmp_path, users=STAFF, session_idle_timeout=86400,
                    session_max_age=2 * 86400) as running:  # fmt: skip
        set_up_office(running.deps)
        with running.deps.sessions.begin() as session:
            people = {u.username: u for u in session.scalars(select(User))}
            grant_admin_role(session, SYSTEM, people["helpdesk1"], AdminRole.HELPDESK,
                             now=running.deps.clock.now(), actor="test",
                             audit=NO_CONTEXT)  # fmt: skip
            people["malee"].unit_code = UNIT
            people["malee"].given_name_th, people["malee"].family_name_th = "มาลี", "ศรีสุข"
            people["head1"].given_name_th, people["head1"].family_name_th = "ประเสริฐ", "ผู้นำ"
        yield running


def night_after(moment: datetime) -> datetime:
    """23.40 in Bangkok: the coming night's, or tonight's if it is night already."""
    thai = moment.astimezone(UTC) + timedelta(hours=7)
    if thai.hour >= 22 or thai.hour < 5:
        return moment
    return datetime(thai.year, thai.month, thai.day, 16, 40, tzinfo=UTC)


def signed_in(browser, stack: Stack, username: str, target: str):
    context = browser.new_context(
        accept_downloads=True, locale="th-TH", viewport={"width": 1100, "height": 800}
    )
    page = context.new_page()
    page.goto(f"{stack.idp}/signin?next={target}")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    confirm_on_phone(page, stack.nexus, username)
    page.wait_for_url(f"{stack.idp}{target}")
    return context, page


def test_a_night_suspension_in_one_step_and_the_letter_in_the_morning(browser, stack, tmp_path):
    desk_context, desk = signed_in(browser, stack, "helpdesk1", "/helpdesk")
    head_context, head = signed_in(browser, stack, "head1", "/admin/cases")

    night = night_after(stack.deps.clock.now())
    stack.deps.clock.advance((night - stack.deps.clock.now()).total_seconds())
    # malee calls: her phone was taken from her bag on the way home. Nobody can call her
    # unit back at this hour; the helpdesk suspends at once, ticking nothing.
    desk.fill("#q", "malee")
    desk.click("#find")
    desk.wait_for_selector("#devices")
    assert desk.locator("input[type=checkbox]:checked").count() == 0
    desk.select_option("#reason", "stolen")
    desk.click("#suspend-phone")
    desk.wait_for_selector("#done")
    assert "ระงับโทรศัพท์แล้ว" in desk.inner_text("#done")
    assert desk.locator('#devices tr.device[data-status="suspended"]').count() == 1
    with stack.deps.sessions() as session:
        case = session.scalar(select(LostDeviceCase))
        assert case.verified == []  # recorded: nothing could be verified
        assert (case.reported_at.astimezone(UTC) + timedelta(hours=7)).hour in (
            22,
            23,
            0,
            1,
            2,
            3,
            4,
        )
    desk_context.close()

    # The head of unit opens the case and downloads the letter, ready to sign.
    head.goto(f"{stack.idp}/admin/cases")
    head.click("a.open-case")
    head.wait_for_selector("#letter-pdf")
    assert "น." in head.inner_text("#case")  # the report's Thai time
    assert "gfmiscc@gfmis.go.th" in head.inner_text("#send-channels")
    keep(head, "case")  # the case page in Thai, for docs/features.md
    with head.expect_download() as download:
        head.click("#letter-pdf")
    saved = tmp_path / "letter.pdf"
    download.value.save_as(saved)
    text = pdf_text(saved)
    lost = (night + timedelta(hours=7)).date()
    months = ("มกราคม", "กุมภาพันธ์", "มีนาคม", "เมษายน", "พฤษภาคม", "มิถุนายน", "กรกฎาคม",
              "สิงหาคม", "กันยายน", "ตุลาคม", "พฤศจิกายน", "ธันวาคม")  # fmt: skip
    for fact in (
        "เรียน ผู้อำนวยการกองระบบการคลังภาครัฐ กรมบัญชีกลาง",
        "มาลี ศรีสุข",
        "(รหัสผู้ใช้งาน malee)",
        f"ได้ถูกโจรกรรม เมื่อวันที่ {lost.day} {months[lost.month - 1]} {lost.year + 543}",
        f"(เลขที่เรื่อง {case.id})",
        "(ประเสริฐ ผู้นำ)",
    ):
        assert unicodedata.normalize("NFKC", fact) in text, fact
    head_context.close()


def pdf_text(path: Path) -> str:
    pages = PdfReader(path).pages
    text = " ".join(page.extract_text() for page in pages)
    text = unicodedata.normalize("NFKC", text).translate(_ARABIC).replace("\u200b", "")
    return " ".join(text.split())
