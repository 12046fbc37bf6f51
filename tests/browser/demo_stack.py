"""The demo as `make demo` runs it, for Chromium: a relying party's callback page, the
authorization request it makes, and redeeming what comes back."""

from __future__ import annotations

import http.server
import secrets
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.rp import pkce_pair

PASSWORD = "Demo-Pass-2025!"
ROLE_SCOPES = "role:recorder role:approve-1 role:approve-2"


class Callback(http.server.BaseHTTPRequestHandler):
    """The relying party's redirect URI: remembers what arrived, shows a page."""

    def do_GET(self) -> None:
        body = b"<!doctype html><title>RP</title><h1 id='rp'>back at the app</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


def authorize_url(idp: str, rp_server: str, scope: str = "openid profile") -> tuple[str, str, str]:
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(8)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": "browser-rp",
            "redirect_uri": f"{rp_server}/callback",
            "scope": scope,
            "state": state,
            "nonce": "n-" + state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return f"{idp}/authorize?{query}", verifier, state


def redeem(idp: str, rp_server: str, callback_url: str, verifier: str) -> dict:
    code = parse_qs(urlsplit(callback_url).query)["code"][0]
    response = requests.post(
        f"{idp}/token",
        data={
            "grant_type": "authorization_code",
            "client_id": "browser-rp",
            "code": code,
            "redirect_uri": f"{rp_server}/callback",
            "code_verifier": verifier,
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def id_token_claims(idp: str, tokens: dict) -> dict:
    keys = KeySet.import_key_set(requests.get(f"{idp}/jwks.json", timeout=10).json())
    return dict(jwt.decode(tokens["id_token"], keys, algorithms=["ES256"]).claims)


def confirm_on_phone(page, relay, username: str) -> dict:
    """Type the number the page shows into the user's phone and approve; the pushed request."""
    page.wait_for_selector("#match-number")
    number = int(page.inner_text("#match-number"))
    pushed = relay.wait_for_push(f"phone-{username}")
    answered = relay.approve(f"phone-{username}", pushed["id"], number)
    assert answered.status_code == 200, answered.text
    return dict(pushed)


def suspend_phone_at_helpdesk(desk, idp: str, relay, username: str) -> None:
    """helpdesk1 signs in, verifies the caller (the four checks) and suspends the phone."""
    desk.goto(f"{idp}/signin?next=/helpdesk")
    desk.fill("#username", "helpdesk1")
    desk.fill("#password", PASSWORD)
    desk.click("button[type=submit]")
    confirm_on_phone(desk, relay, "helpdesk1")
    desk.wait_for_selector("#q")
    desk.fill("#q", username)
    desk.click("#find")
    desk.wait_for_selector("#devices")
    for box in ("check_citizen_id", "check_unit", "check_callback", "check_head_of_unit"):
        desk.check(f"input[name={box}]")
    desk.select_option("#reason", "lost")
    desk.click("#suspend-phone")
    desk.wait_for_selector("#done")
