"""Real Chromium on the demo: the pages a Thai civil servant reads, in Thai, drawn with the
shipped Sarabun font (the machine has no Thai font of its own); with ``UPDATE_SCREENSHOTS=1``
kept as screenshots under docs/screenshots/ for docs/features.md."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.browser.demo_stack import PASSWORD

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
MONTHS = r"ม\.ค\.|ก\.พ\.|มี\.ค\.|เม\.ย\.|พ\.ค\.|มิ\.ย\.|ก\.ค\.|ส\.ค\.|ก\.ย\.|ต\.ค\.|พ\.ย\.|ธ\.ค\."
THAI_TIME = re.compile(rf"\d{{1,2}} (?:{MONTHS}) 25\d\d \d\d\.\d\d น\.")


def drawn_in_sarabun(page) -> bool:
    """The Thai text on the page was drawn with the shipped font: it loaded, and it has the
    glyphs of the page's Thai."""
    return bool(page.evaluate(
        """async () => {
            await document.fonts.ready;
            const loaded = [...document.fonts].some(
                f => f.family.replaceAll('"', '') === 'Sarabun' && f.status === 'loaded');
            return loaded && document.fonts.check('16px Sarabun', 'เข้าสู่ระบบ');
        }"""
    ))  # fmt: skip


def keep(page, name: str) -> None:
    """Taken every run (a page that cannot be drawn fails here); kept under docs/screenshots/
    only when asked (``UPDATE_SCREENSHOTS=1``), so a test run leaves the tree as it was."""
    assert drawn_in_sarabun(page), f"{name}: Thai was not drawn with Sarabun"
    shot = page.screenshot(full_page=True)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / f"{name}.png").write_bytes(shot)


def sign_in(browser, demo, relay, username: str, next_page: str, *, shoot: bool = False):
    context = browser.new_context(locale="th-TH", viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.goto(f"{demo['idp']}/signin?next={next_page}")
    if shoot:
        keep(page, "login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    number = int(page.inner_text("#match-number"))
    if shoot:
        keep(page, "confirmation")
    pushed = relay.wait_for_push(f"phone-{username}")
    relay.approve(f"phone-{username}", pushed["id"], number)
    page.wait_for_url(f"{demo['idp']}{next_page}")
    return context, page


def test_the_pages_in_thai_with_the_shipped_font(browser, demo, relay):
    context, page = sign_in(browser, demo, relay, "somchai", "/account", shoot=True)
    assert THAI_TIME.search(page.inner_text("body")), "the account page shows Thai time"
    keep(page, "account")
    context.close()

    context, page = sign_in(browser, demo, relay, "helpdesk1", "/helpdesk")
    keep(page, "helpdesk")
    page.fill("#q", "somchai")
    page.click("#find")
    page.wait_for_selector("#events")
    text = page.inner_text("body")
    assert THAI_TIME.search(text)
    assert "login.password" not in text
    assert "เหตุการณ์ด้านความปลอดภัยอื่น" not in text  # every event has its own sentence
    keep(page, "helpdesk-user")
    context.close()
