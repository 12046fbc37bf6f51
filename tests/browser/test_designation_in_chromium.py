"""Real Chromium on the demo: the head of unit designates a substitute with the written order
(a PDF), the treasury office approves, and the designated person must change their password at
the next sign-in, after which the token carries the new role."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from pathlib import Path

import pytest

from idp.roles.periods import thai_date
from tests.browser.demo_stack import PASSWORD
from tests.browser.demo_stack import authorize_url
from tests.browser.demo_stack import id_token_claims
from tests.browser.demo_stack import redeem

pytestmark = pytest.mark.browser

ORDER = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
NEW_PASSWORD = "Chao-Phraya-River-2569"


def sign_in_to_console(browser, demo, relay, username: str, page_path: str):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{demo['idp']}/signin?next={page_path}")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    number = int(page.inner_text("#match-number"))
    pushed = relay.wait_for_push(f"phone-{username}")
    relay.approve(f"phone-{username}", pushed["id"], number)
    page.wait_for_url(f"{demo['idp']}{page_path}")
    return context, page


def test_designation_approved_then_new_password_then_the_role(browser, demo, relay, rp_server,
                                                              tmp_path: Path):  # fmt: skip
    today = thai_date(datetime.now(UTC)).isoformat()
    order = tmp_path / "คำสั่งแต่งตั้ง.pdf"
    order.write_bytes(ORDER)

    # The head of unit: somchai acts for prasert as payment approver (approval 2).
    head, page = sign_in_to_console(browser, demo, relay, "head1", "/admin/designations/new")
    page.fill("#username", "somchai")
    page.select_option("#role", "approve-2")
    page.fill("#valid_from", today)
    page.fill("#substitute_for", "prasert")
    page.fill("#order_number", "คส. 45/2569")
    page.fill("#order_date", today)
    page.set_input_files("#order_file", str(order))
    page.click("#submit-designation")
    page.wait_for_selector("#submitted")
    assert page.inner_text("#request-status") == "รอการพิจารณา"
    head.close()

    # The treasury office of the province approves it from its queue.
    treasury, page = sign_in_to_console(browser, demo, relay, "treasury1", "/admin/designations")
    page.click("#queue tr.request a")
    assert "คส. 45/2569" in page.content()
    page.fill("#reason", "ตรวจสอบคำสั่งแล้ว")
    page.click("#approve")
    page.wait_for_selector("#request-status")
    assert page.inner_text("#request-status") == "อนุมัติแล้ว"
    treasury.close()

    # somchai signs in to an application: phone, then a new password, then the role.
    context = browser.new_context()
    page = context.new_page()
    url, verifier, _ = authorize_url(demo["idp"], rp_server, scope="openid role:approve-2")
    page.goto(url)
    page.fill("#username", "somchai")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    number = int(page.inner_text("#match-number"))
    pushed = relay.wait_for_push("phone-somchai")
    relay.approve("phone-somchai", pushed["id"], number)
    page.wait_for_selector("#new_password")
    page.fill("#current_password", PASSWORD)
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm_password", NEW_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#rp")
    tokens = redeem(demo["idp"], rp_server, page.url, verifier)
    assert tokens["scope"] == "openid role:approve-2"
    roles = id_token_claims(demo["idp"], tokens)["gfms_roles"]
    assert len(roles) == 1
    assert (roles[0]["unit"], roles[0]["role"]) == ("0000000001", "approve-2")
    assert roles[0]["substitute_for"]  # prasert's sub
    context.close()
