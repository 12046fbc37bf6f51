"""Real Chromium on the demo (issues 7 and 13, "Done when"): wichai submits a travel-expense
claim in the GFMS portal and signs it on his phone; somchai, the finance officer, sends it back
once, then signs it as checked; malee approves the withdrawal confirming on her phone, prasert
the payment on his; the exported bundle verifies offline against the IdP's key history; then
the helpdesk suspends malee's phone and her portal session ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.browser.demo_stack import PASSWORD
from tests.browser.demo_stack import confirm_on_phone
from tests.browser.demo_stack import suspend_phone_at_helpdesk
from tests.servers import ROOT
from tests.servers import run_cli

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
    page.wait_for_selector("#roles, #no-roles")
    return context, page


def approve(page, relay, username: str, document_url: str, action: str) -> dict:
    page.goto(document_url)
    page.click(f"#{action}")
    # Same IdP session: no password, only the confirmation of this one transaction.
    pushed = confirm_on_phone(page, relay, username)
    page.wait_for_selector("#status")
    return pushed


def test_a_claim_signed_checked_approved_twice_on_the_phones_and_archived(
    browser, demo, relay, tmp_path
):
    portal = demo["portal"]

    wichai, page = sign_in_to_portal(browser, demo, relay, "wichai")
    assert page.locator("#no-roles").count() == 1  # a civil servant with no GFMS role
    page.click("#new-claim")
    page.select_option("#type", "travel")
    page.fill("#amount", "18,450.50")
    page.fill("#payee", "นายวิชัย มีสิทธิ์")
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
    # Submitting is signing: the phone shows what he signs.
    pushed = approve(page, relay, "wichai", document_url, "claim")
    details = pushed["authorization_details"][0]
    assert details["actions"] == ["claim"]
    assert details["amount"]["value"] == "18450.50"
    assert page.get_attribute("#status", "data-status") == "submitted"

    # The finance officer sends it back once, saying why.
    somchai, officer = sign_in_to_portal(browser, demo, relay, "somchai")
    officer.goto(document_url)
    officer.fill("#reason", "กรุณาแนบใบเสร็จค่าที่พัก")
    officer.click("#send-back")
    officer.wait_for_selector("#return-reason")
    assert officer.get_attribute("#status", "data-status") == "returned"

    # The claimant reads why, adds the receipt and signs again.
    page.goto(document_url)
    assert "กรุณาแนบใบเสร็จค่าที่พัก" in page.inner_text("#return-reason")
    page.click("#edit")
    hotel = tmp_path / "hotel.pdf"
    hotel.write_bytes(b"%PDF-1.4\n% hotel receipt\n")
    page.set_input_files("#files", str(hotel))
    page.click("#save")
    page.wait_for_selector("#number")
    approve(page, relay, "wichai", document_url, "claim")
    assert page.get_attribute("#status", "data-status") == "submitted"
    wichai.close()

    # ... and the officer signs that it was checked.
    pushed = approve(officer, relay, "somchai", document_url, "check")
    assert pushed["authorization_details"][0]["actions"] == ["check"]
    assert officer.get_attribute("#status", "data-status") == "checked"
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
    assert prasert_page.locator("#signatures li").count() == 4
    with prasert_page.expect_download() as download:
        prasert_page.click("#export")
    bundle = tmp_path / "bundle.json"
    download.value.save_as(bundle)
    prasert.close()

    # Offline: the file, and the IdP's key history and issuer obtained from the IdP
    # beforehand; the client from the verifier's own settings (the demo's gfms-portal).
    jwks = tmp_path / "jwks.json"
    jwks.write_text(requests.get(f"{demo['idp']}/jwks/history.json", timeout=10).text)
    done = subprocess.run([sys.executable, "-m", "gfms_portal", "verify", str(bundle),
                           "--jwks", str(jwks), "--issuer", demo["idp"]],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("OK")
    for action in ("claim", "check", "approve-1", "approve-2"):
        assert f"{number} {action} by" in done.stdout
    tampered = tmp_path / "tampered.json"
    tampered.write_text(bundle.read_text().replace("18450.50", "98450.50", 1))
    done = subprocess.run([sys.executable, "-m", "gfms_portal", "verify", str(tampered),
                           "--jwks", str(jwks), "--issuer", demo["idp"]],
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

    # The IdP's signing keys are rotated and the old ones retired: the same bundle still
    # verifies against the key history, which keeps every key that ever signed.
    env = {**os.environ, "IDP_DATABASE_URL": f"sqlite:///{Path(demo['folder']) / 'idp.sqlite3'}",
           "IDP_ISSUER": demo["idp"]}  # fmt: skip
    env.pop("IDP_REDIS_URL", None)
    old = [k["kid"] for k in json.loads(jwks.read_text())["keys"]]
    run_cli(env, "keys", "rotate", "--force")
    for kid in old:
        run_cli(env, "keys", "retire", kid)
    history = requests.get(f"{demo['idp']}/jwks/history.json", timeout=10).json()["keys"]
    assert all(k.get("signed_until") for k in history if k["kid"] in old)
    jwks.write_text(json.dumps({"keys": history}))
    done = subprocess.run([sys.executable, "-m", "gfms_portal", "verify", str(bundle),
                           "--jwks", str(jwks), "--issuer", demo["idp"]],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
