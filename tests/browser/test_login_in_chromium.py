"""Real Chromium against the demo configuration (SQLite, in-process store) with the mock Nexus
as its own process: the pages a civil servant sees, from the relying party's redirect through
the confirmation on the phone to its callback."""

from __future__ import annotations

from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest

from tests.browser.demo_stack import PASSWORD
from tests.browser.demo_stack import authorize_url
from tests.browser.demo_stack import id_token_claims
from tests.browser.demo_stack import redeem

pytestmark = pytest.mark.browser


def test_sign_in_in_thai_confirmed_on_the_phone(page, demo, relay, rp_server):
    url, verifier, state = authorize_url(demo["idp"], rp_server)
    page.goto(url)
    assert page.locator("html").get_attribute("lang") == "th"
    assert page.get_by_text("รหัสผู้ใช้งาน").first.is_visible()
    assert "GFMS Portal (test)" in page.content()
    page.fill("#username", "somchai")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")

    # The page shows the number; the user types it into the phone, which approves.
    number = int(page.inner_text("#match-number"))
    pushed = relay.wait_for_push("phone-somchai")
    assert pushed["client"] == "GFMS Portal (test)"
    assert relay.approve("phone-somchai", pushed["id"], number).json()["outcome"] == "approved"

    # The page's script learns the answer and carries on to the app.
    page.wait_for_selector("#rp")
    params = parse_qs(urlsplit(page.url).query)
    assert params["state"] == [state]
    assert params["iss"] == [demo["idp"]]
    claims = id_token_claims(demo["idp"], redeem(demo["idp"], rp_server, page.url, verifier))
    assert claims["nonce"] == "n-" + state
    assert claims["amr"] == ["pwd", "swk", "mca", "mfa"]
    assert claims["acr"] == f"{demo['idp']}/acr/aal2-softtoken"


def test_sign_in_with_the_code_when_the_relay_is_down(page, demo, relay, rp_server):
    relay.knobs(outage=True)
    url, verifier, _ = authorize_url(demo["idp"], rp_server)
    page.goto(url)
    page.click("a[lang=en]")
    page.fill("#username", "malee")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    message = page.locator("#confirm-message")
    assert "cannot be reached" in message.inner_text()
    page.click("#use-code")
    page.fill("#code", relay.totp("phone-malee"))
    page.click("#submit-code")
    page.wait_for_selector("#rp")
    claims = id_token_claims(demo["idp"], redeem(demo["idp"], rp_server, page.url, verifier))
    assert claims["amr"] == ["pwd", "otp", "mfa"]


def test_wrong_password_shows_the_generic_error_in_english(page, demo, rp_server):
    url, _, _ = authorize_url(demo["idp"], rp_server)
    page.goto(url)
    page.click("a[lang=en]")
    assert page.locator("html").get_attribute("lang") == "en"
    page.fill("#username", "malee")
    page.fill("#password", "not her password")
    page.click("button[type=submit]")
    error = page.locator("#login-error")
    assert error.is_visible()
    assert "incorrect" in error.inner_text()
    assert page.input_value("#username") == "malee"


def test_an_unregistered_user_is_sent_to_register_first(page, demo, rp_server):
    url, _, _ = authorize_url(demo["idp"], rp_server)
    page.goto(url)
    page.fill("#username", "newuser")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    assert page.inner_text("#error-code") == "soft_token_required"
    page.click("#register-link")
    # Registration starts with changing the issued password.
    page.wait_for_selector("#username")
    page.fill("#username", "newuser")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#new_password")
    assert "เปลี่ยนรหัสผ่าน" in page.content()
