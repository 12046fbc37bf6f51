"""Real Chromium on the demo (issue 7, "Done when"): somchai records a travel-expense request
in the GFMS portal, malee approves the withdrawal confirming on her phone, prasert the payment
on his; the exported bundle verifies offline; then the helpdesk suspends malee's phone and her
portal session ends."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

from tests.browser.demo_stack import PASSWORD
from tests.browser.demo_stack import confirm_on_phone
from tests.browser.demo_stack import suspend_phone_at_helpdesk
from tests.servers import ROOT

pytestmark = pytest.mark.browser


def sign_in_to_portal(browser, demo, relay, username: str):
    context = browser.new_context()
    page = context.new_page()
    page.goto(demo["portal"])
    page.click("#login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    confirm_on_phone(page, relay, username)
    page.wait_for_selector("#roles")
    return context, page


def approve(page, relay, username: str, document_url: str, action: str) -> dict:
    page.goto(document_url)
    page.click(f"#{action}")
    # Same IdP session: no password, only the confirmation of this one transaction.
    pushed = confirm_on_phone(page, relay, username)
    page.wait_for_selector("#status")
    return pushed


def test_a_request_recorded_approved_twice_on_the_phones_and_archived(
    browser, demo, relay, tmp_path
):
    portal = demo["portal"]

    somchai, page = sign_in_to_portal(browser, demo, relay, "somchai")
    assert page.locator('#roles li[data-role="recorder"]').count() == 1
    page.click("#new-document")
    page.select_option("#type", "travel")
    page.fill("#amount", "18,450.50")
    page.fill("#payee", "นายสมชาย ใจดี")
    page.fill("#description", "เดินทางไปราชการ เชียงใหม่ 3 วัน")
    receipt = tmp_path / "receipt.pdf"
    receipt.write_bytes(b"%PDF-1.4\n% hotel and train receipts\n")
    page.set_input_files("#files", str(receipt))
    page.click("#save")
    page.wait_for_selector("#number")
    document_url = page.url.split("?")[0]
    number = page.inner_text("#number")
    assert "18,450.50 บาท" in page.inner_text("#amount")
    assert page.get_attribute("#status", "data-status") == "recorded"
    somchai.close()

    malee, malee_page = sign_in_to_portal(browser, demo, relay, "malee")
    pushed = approve(malee_page, relay, "malee", document_url, "approve-1")
    details = pushed["authorization_details"][0]
    assert details["document_number"] == number
    assert details["amount"]["value"] == "18450.50"
    assert malee_page.get_attribute("#status", "data-status") == "withdrawal_approved"

    prasert, prasert_page = sign_in_to_portal(browser, demo, relay, "prasert")
    approve(prasert_page, relay, "prasert", document_url, "approve-2")
    assert prasert_page.get_attribute("#status", "data-status") == "payment_approved"
    assert prasert_page.locator("#signatures li").count() == 2
    with prasert_page.expect_download() as download:
        prasert_page.click("#export")
    bundle = tmp_path / "bundle.json"
    download.value.save_as(bundle)
    prasert.close()

    # Offline: the file, and the IdP's published keys fetched from the IdP beforehand.
    jwks = tmp_path / "jwks.json"
    jwks.write_text(requests.get(f"{demo['idp']}/jwks.json", timeout=10).text)
    done = subprocess.run([sys.executable, "-m", "gfms_portal", "verify", str(bundle),
                           "--jwks", str(jwks)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("OK")
    tampered = tmp_path / "tampered.json"
    tampered.write_text(bundle.read_text().replace("18450.50", "98450.50", 1))
    done = subprocess.run([sys.executable, "-m", "gfms_portal", "verify", str(tampered),
                           "--jwks", str(jwks)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert done.stdout.strip().endswith("FAIL")

    # The helpdesk suspends malee's phone: her portal session ends.
    malee_page.goto(f"{portal}/documents")
    assert malee_page.locator(f'#documents tr[data-number="{number}"]').count() == 1
    helpdesk = browser.new_context()
    suspend_phone_at_helpdesk(helpdesk.new_page(), demo["idp"], relay, "malee")
    helpdesk.close()
    deadline = time.monotonic() + 20
    while True:
        malee_page.goto(f"{portal}/documents")
        if malee_page.locator("#login").count() == 1:
            break
        assert time.monotonic() < deadline, "the portal session outlived the suspension"
        time.sleep(0.5)
    malee.close()
