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


def submit_order(browser, demo, relay, order: Path, *, choices: dict[str, str],
                 fields: dict[str, str]) -> str:  # fmt: skip
    """The head of unit submits an order; returns how the request page names its kind."""
    head, page = sign_in_to_console(browser, demo, relay, "head1", "/admin/designations/new")
    for selector, value in choices.items():
        page.select_option(selector, value)
    for selector, value in fields.items():
        page.fill(selector, value)
    page.set_input_files("#order_file", str(order))
    page.click("#submit-designation")
    page.wait_for_selector("#submitted")
    assert page.inner_text("#request-status") == "รอการพิจารณา"
    kind = page.inner_text("#order-kind")
    head.close()
    return kind


def approve_first_in_queue(browser, demo, relay, order_number: str) -> None:
    """The treasury office of the province approves the oldest request of its queue."""
    treasury, page = sign_in_to_console(browser, demo, relay, "treasury1", "/admin/designations")
    page.click("#queue tr.request a")
    assert order_number in page.content()
    page.fill("#reason", "ตรวจสอบคำสั่งแล้ว")
    page.click("#approve")
    page.wait_for_selector("#request-status")
    assert page.inner_text("#request-status") == "อนุมัติแล้ว"
    treasury.close()


def sign_in_after_a_role_change(browser, demo, relay, rp_server, username: str, scope: str):
    """An application's sign-in: the phone, then the new password the Ministry's rule asks
    for after a role change, then the tokens."""
    context = browser.new_context()
    page = context.new_page()
    url, verifier, _ = authorize_url(demo["idp"], rp_server, scope=scope)
    page.goto(url)
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    number = int(page.inner_text("#match-number"))
    pushed = relay.wait_for_push(f"phone-{username}")
    relay.approve(f"phone-{username}", pushed["id"], number)
    page.wait_for_selector("#new_password")
    page.fill("#current_password", PASSWORD)
    page.fill("#new_password", NEW_PASSWORD)
    page.fill("#confirm_password", NEW_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#rp")
    tokens = redeem(demo["idp"], rp_server, page.url, verifier)
    context.close()
    return tokens


def test_designation_approved_then_new_password_then_the_role(browser, demo, relay, rp_server,
                                                              tmp_path: Path):  # fmt: skip
    today = thai_date(datetime.now(UTC)).isoformat()
    order = tmp_path / "คำสั่งแต่งตั้ง.pdf"
    order.write_bytes(ORDER)

    # The head of unit: somchai acts for prasert as payment approver (approval 2).
    submit_order(browser, demo, relay, order, choices={"#role": "approve-2"},
                 fields={"#username": "somchai", "#valid_from": today, "#substitute_for": "prasert",
                         "#order_number": "คส. 45/2569", "#order_date": today})  # fmt: skip

    approve_first_in_queue(browser, demo, relay, "คส. 45/2569")

    # somchai signs in to an application: phone, then a new password, then the role.
    scope = "openid role:approve-2"
    tokens = sign_in_after_a_role_change(browser, demo, relay, rp_server, "somchai", scope)
    assert tokens["scope"] == "openid role:approve-2"
    roles = id_token_claims(demo["idp"], tokens)["gfms_roles"]
    assert len(roles) == 1
    assert (roles[0]["unit"], roles[0]["role"]) == ("0000000001", "approve-2")
    assert roles[0]["substitute_for"]  # prasert's sub


def test_an_order_moves_approve_1_to_approve_2_and_the_next_token_carries_only_approve_2(
    browser, demo, relay, rp_server, tmp_path: Path
):
    today = thai_date(datetime.now(UTC))
    thai_today = f"{today.day}/{today.month}/{today.year + 543}"  # as the order is dated
    order = tmp_path / "คำสั่งเปลี่ยนหน้าที่.pdf"
    order.write_bytes(ORDER)

    # The head of unit: malee gives up approval 1 and takes approval 2 from today.
    kind = submit_order(
        browser, demo, relay, order,
        choices={"#kind": "change", "#ends_role": "approve-1", "#role": "approve-2"},
        fields={"#username": "malee", "#valid_from": thai_today, "#order_number": "คส. 46/2569",
                "#order_date": thai_today},
    )  # fmt: skip
    assert kind == "เปลี่ยนหน้าที่"

    approve_first_in_queue(browser, demo, relay, "คส. 46/2569")

    # malee asks for both approval roles; the token carries only the one she holds now.
    scope = "openid role:approve-1 role:approve-2"
    tokens = sign_in_after_a_role_change(browser, demo, relay, rp_server, "malee", scope)
    assert tokens["scope"] == "openid role:approve-2"
    roles = id_token_claims(demo["idp"], tokens)["gfms_roles"]
    assert roles == [{"unit": "0000000001", "role": "approve-2"}]
