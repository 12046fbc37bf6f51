"""Real Chromium against the demo configuration (SQLite, in-process store) with the mock Nexus
as its own process: the pages a civil servant sees, from the relying party's redirect through
the confirmation on the phone to its callback."""

from __future__ import annotations

import http.server
import os
import secrets
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.nexus_server import Nexus
from tests.rp import pkce_pair
from tests.servers import free_port
from tests.servers import run_cli
from tests.servers import running_idp
from tests.servers import running_process

PASSWORD = "Demo-Pass-2025!"

pytestmark = pytest.mark.browser


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


@pytest.fixture(scope="module")
def rp_server() -> Iterator[str]:
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Callback)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


@pytest.fixture(scope="module")
def demo(tmp_path_factory, rp_server) -> Iterator[dict[str, str]]:
    """The IdP exactly as `make demo` runs it (SQLite under a folder, no Redis), with the mock
    Nexus and the demo users' phones bound through it."""
    folder: Path = tmp_path_factory.mktemp("demo")
    port, nexus_port = free_port(), free_port()
    idp, nexus = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{nexus_port}"
    env = {
        **os.environ,
        "IDP_DATABASE_URL": f"sqlite:///{folder / 'idp.sqlite3'}",
        "IDP_ISSUER": idp,
        "IDP_NEXUS_RELAY_URL": nexus,
        "IDP_LOG_LEVEL": "WARNING",
        "NEXUS_RELAY_URL": nexus,
        "NEXUS_IDP_URL": idp,
        "NEXUS_STATE_FILE": str(folder / "phones.json"),
        "NEXUS_TEST_CONTROL": "true",
    }
    env.pop("IDP_REDIS_URL", None)
    run_cli(env, "db", "upgrade")
    run_cli(env, "demo", "seed")
    run_cli(
        env, "clients", "add", "browser-rp", "--name", "GFMS Portal (test)",
        "--public", "--redirect-uri", f"{rp_server}/callback", "--scope", "openid profile",
    )  # fmt: skip
    with (
        running_idp(env, port, production=False, log_dir=folder),
        running_process([sys.executable, "-m", "mock_nexus", "--port", str(nexus_port)],
                        env, nexus_port, log_dir=folder),
    ):  # fmt: skip
        run_cli(env, "demo", "bind-phones", "--nexus", nexus)
        yield {"idp": idp, "nexus": nexus}


@pytest.fixture
def relay(demo) -> Iterator[Nexus]:
    nexus = Nexus(demo["nexus"], Path())
    yield nexus
    nexus.knobs(outage=False)


@pytest.fixture
def page(browser):
    context = browser.new_context()
    yield context.new_page()
    context.close()


def authorize_url(idp: str, rp_server: str) -> tuple[str, str, str]:
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(8)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": "browser-rp",
            "redirect_uri": f"{rp_server}/callback",
            "scope": "openid profile",
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


def id_token_claims(idp: str, tokens: dict) -> dict:
    keys = KeySet.import_key_set(requests.get(f"{idp}/jwks.json", timeout=10).json())
    return dict(jwt.decode(tokens["id_token"], keys, algorithms=["ES256"]).claims)
