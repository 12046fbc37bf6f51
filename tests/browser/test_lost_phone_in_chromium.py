"""Real Chromium on the demo: malee is signed in; she calls the helpdesk, which verifies her
and suspends her phone; her open session is gone at once."""

from __future__ import annotations

import pytest
import requests

from tests.browser.demo_stack import PASSWORD
from tests.browser.demo_stack import authorize_url
from tests.browser.demo_stack import confirm_on_phone
from tests.browser.demo_stack import redeem
from tests.browser.demo_stack import suspend_phone_at_helpdesk

pytestmark = pytest.mark.browser


def test_the_helpdesk_suspends_a_phone_and_the_session_is_gone(browser, demo, relay, rp_server):
    idp = demo["idp"]
    malee = browser.new_context()
    page = malee.new_page()
    url, verifier, _ = authorize_url(idp, rp_server)
    page.goto(url)
    page.fill("#username", "malee")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    confirm_on_phone(page, relay, "malee")
    page.wait_for_selector("#rp")
    tokens = redeem(idp, rp_server, page.url, verifier)
    page.goto(f"{idp}/account")
    assert page.locator("#my-sessions tr.session").count() == 1

    helpdesk = browser.new_context()
    desk = helpdesk.new_page()
    suspend_phone_at_helpdesk(desk, idp, relay, "malee")
    assert "ระงับโทรศัพท์แล้ว" in desk.inner_text("#done")
    assert desk.locator('#devices tr.device[data-status="suspended"]').count() == 1
    helpdesk.close()

    # Her browser's session at the IdP has ended: the account page asks her to sign in.
    page.goto(f"{idp}/account")
    page.wait_for_selector("#username")
    assert "/login/password" in page.url
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    userinfo = requests.get(f"{idp}/userinfo", timeout=10, headers=bearer)
    assert userinfo.status_code == 401
    malee.close()
