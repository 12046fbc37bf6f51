"""Two production IdP processes on one PostgreSQL and Redis, the mock Nexus as its own process
and a relying party's back-channel logout endpoint: a phone suspended through instance A is
refused by instance B at once — its tokens and its confirmations — and the relying party is
told to end its session."""

from __future__ import annotations

import http.server
import secrets
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
import requests

from tests.rp import form_action
from tests.rp import form_fields
from tests.rp import pkce_pair
from tests.servers import PASSWORD
from tests.servers import LoopbackBrowser
from tests.servers import free_port
from tests.servers import production_env
from tests.servers import run_cli
from tests.servers import sign_in
from tests.servers import two_instances_with_phones
from tests.servers import with_phones

CALLBACK = "http://127.0.0.1:9999/callback"
RP_SECRET = secrets.token_urlsafe(32)


class LogoutReceiver(http.server.BaseHTTPRequestHandler):
    received: list[str] = []  # noqa: RUF012 - the test reads what the IdP sent

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = parse_qs(self.rfile.read(length).decode())
        self.received.append(body.get("logout_token", [""])[0])
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), LogoutReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}/backchannel-logout"
    server.shutdown()


@pytest.fixture(scope="module")
def deployment(fresh_database_url, redis_url, receiver, tmp_path_factory) -> Iterator[dict]:
    port_a, port_b, nexus_port = free_port(), free_port(), free_port()
    issuer, nexus = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{nexus_port}"
    env = with_phones(production_env(fresh_database_url, redis_url, issuer), issuer, nexus,
                      str(tmp_path_factory.mktemp("nexus") / "phones.json"))  # fmt: skip
    run_cli(env, "db", "upgrade")
    run_cli(env, "demo", "seed")
    run_cli(env, "clients", "add", "lost-rp", "--name", "Relying party", "--secret", RP_SECRET,
            "--redirect-uri", CALLBACK, "--scope", "openid",
            "--backchannel-logout-uri", receiver)  # fmt: skip
    logs = tmp_path_factory.mktemp("logs")
    ports = (port_a, port_b, nexus_port)
    with two_instances_with_phones(env, ports, log_dir=logs) as (a, b):
        yield {"a": a.url, "b": b.url, "nexus": nexus}


def login_at(instance: str, nexus: str, username: str) -> dict:
    verifier, challenge = pkce_pair()
    query = (f"response_type=code&client_id=lost-rp&redirect_uri={CALLBACK}&scope=openid"
             f"&state=s&nonce=n&code_challenge={challenge}&code_challenge_method=S256")  # fmt: skip
    callback = sign_in(f"{instance}/authorize?{query}", username, CALLBACK, nexus=nexus)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    answer = requests.post(f"{instance}/token", auth=("lost-rp", RP_SECRET), timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
        "code_verifier": verifier})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def password_step(instance: str, username: str) -> requests.Response:
    """A browser at ``instance`` up to the answer to the password form."""
    browser = LoopbackBrowser()
    query = {"response_type": "code", "client_id": "lost-rp", "redirect_uri": CALLBACK,
             "scope": "openid", "state": "s", "code_challenge": pkce_pair()[1],
             "code_challenge_method": "S256"}  # fmt: skip
    page = browser.request("GET", f"{instance}/authorize?{urlencode(query)}")
    while page.status_code in (302, 303):
        page = browser.request("GET", instance + page.headers["Location"].removeprefix(instance))
    fields = {**form_fields(page.text), "username": username, "password": PASSWORD}
    page = browser.request("POST", instance + form_action(page.text), data=fields)
    while page.status_code in (302, 303):
        page = browser.request("GET", instance + page.headers["Location"].removeprefix(instance))
    return page


def helpdesk_token(instance: str) -> str:
    answer = requests.post(f"{instance}/token", auth=("demo-service", "demo-service-secret"),
                           data={"grant_type": "client_credentials", "scope": "helpdesk"},
                           timeout=10)  # fmt: skip
    return str(answer.json()["access_token"])


def active_at(instance: str, token: str) -> bool:
    answer = requests.post(f"{instance}/introspect", data={"token": token},
                           auth=("lost-rp", RP_SECRET), timeout=10)  # fmt: skip
    return bool(answer.json()["active"])


def test_a_phone_suspended_at_one_instance_is_refused_at_the_other(deployment):
    a, b, nexus = deployment["a"], deployment["b"], deployment["nexus"]
    tokens = login_at(b, nexus, "malee")
    assert active_at(b, tokens["access_token"])
    sent = time.monotonic()
    suspended = requests.post(
        f"{a}/api/admin/v1/users/malee/suspend-phone", json={"reason": "lost"}, timeout=10,
        headers={"Authorization": f"Bearer {helpdesk_token(a)}"},
    )  # fmt: skip
    assert suspended.status_code == 201, suspended.text
    assert not active_at(b, tokens["access_token"])  # at once, at the other instance
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    userinfo = requests.get(f"{b}/userinfo", timeout=10, headers=bearer)
    assert userinfo.status_code == 401

    deadline = sent + 5
    while not LogoutReceiver.received and time.monotonic() < deadline:
        time.sleep(0.02)
    assert LogoutReceiver.received, "the relying party was not told"

    # The suspended phone confirms nothing at B: a new login there asks for a new phone.
    page = password_step(b, "malee")
    assert page.status_code == 403
    assert "soft_token_required" in page.text
