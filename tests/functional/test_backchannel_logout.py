"""OpenID Connect Back-Channel Logout 1.0: a relying party learns that the session it holds
has ended, from a persisted notice retried until it is accepted."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp.audit.models import AuditEvent
from idp.oidc.backchannel import LogoutSender
from idp.revocation.models import LogoutNotice
from tests.factories import add_client
from tests.factories import seed
from tests.rp import RP
from tests.servers import free_port

EVENT = "http://schemas.openid.net/event/backchannel-logout"


class Receiver(http.server.BaseHTTPRequestHandler):
    tokens: list[str]
    statuses: list[int]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        status = self.server.statuses.pop(0) if self.server.statuses else 200  # type: ignore[attr-defined]
        if status == 200:
            self.server.tokens.append(parse_qs(body)["logout_token"][0])  # type: ignore[attr-defined]
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/login")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # where a redirect would lead
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Receiver)
    server.tokens = []  # type: ignore[attr-defined]
    server.statuses = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture
def rp(client, deps, receiver):
    seed(deps, "somchai")
    add_client(
        deps,
        "bcl-rp",
        secret="b" * 40,
        backchannel_logout_uri=f"http://127.0.0.1:{receiver.server_port}/backchannel-logout",
    )
    return RP(client, client_id="bcl-rp", secret="b" * 40)


@pytest.fixture
def sender(app, deps) -> LogoutSender:
    return app.extensions["idp.logout_sender"]


def logout(client, id_token: str) -> None:
    assert client.get("/logout", query_string={"id_token_hint": id_token}).status_code == 200


def test_logout_token_reaches_the_relying_party(rp, client, receiver, sender):
    tokens = rp.login_and_exchange()
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    sid = jwt.decode(tokens["id_token"], keys).claims["sid"]
    logout(client, tokens["id_token"])
    assert sender.send_due() == 1
    [received] = receiver.tokens
    decoded = jwt.decode(received, keys, algorithms=["ES256"])
    assert decoded.header["typ"] == "logout+jwt"
    claims = decoded.claims
    assert claims["iss"] == "http://127.0.0.1:8000"
    assert claims["aud"] == "bcl-rp"
    assert claims["sid"] == sid
    assert claims["events"] == {EVENT: {}}
    assert "nonce" not in claims
    assert claims["jti"]
    assert sender.send_due() == 0  # delivered once


def test_clients_without_a_session_here_get_nothing(rp, client, deps, receiver, sender):
    other = RP(client)  # demo-confidential: no back-channel URI registered in this test
    tokens = other.login_and_exchange()
    logout(client, tokens["id_token"])
    assert sender.send_due() == 0
    assert receiver.tokens == []


def test_failed_delivery_is_retried_later_with_the_same_jti(rp, client, deps, receiver, sender):
    tokens = rp.login_and_exchange()
    receiver.statuses = [500]
    logout(client, tokens["id_token"])
    assert sender.send_due() == 0
    assert sender.send_due() == 0  # not yet due again
    deps.clock.advance(3)
    assert sender.send_due() == 1
    with deps.sessions() as session:
        notice = session.scalar(select(LogoutNotice))
    assert notice.attempts == 2
    assert notice.delivered_at is not None
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    assert jwt.decode(receiver.tokens[0], keys).claims["jti"] == notice.id


def test_a_notice_whose_sender_died_is_sent_after_its_lease(rp, client, deps, receiver, sender):
    tokens = rp.login_and_exchange()
    logout(client, tokens["id_token"])
    assert sender._claim() is not None  # claimed, then the process dies before sending
    assert sender.send_due() == 0
    deps.clock.advance(31)
    assert sender.send_due() == 1


def test_unreachable_relying_party_is_given_up_on_and_audited(rp, client, deps, sender):
    add_client(
        deps, "gone", secret="g" * 40,
        backchannel_logout_uri=f"http://127.0.0.1:{free_port()}/closed",
    )  # fmt: skip
    gone = RP(client, client_id="gone", secret="g" * 40)
    tokens = gone.login_and_exchange()
    logout(client, tokens["id_token"])
    for _ in range(12):
        sender.send_due()
        deps.clock.advance(3600)
    with deps.sessions() as session:
        notice = session.scalar(select(LogoutNotice).where(LogoutNotice.client_id == "gone"))
        assert notice.abandoned_at is not None
        assert notice.last_error
        events = session.scalars(select(AuditEvent.event)).all()
    assert "session.logout_undeliverable" in events


def test_a_redirect_is_not_an_acceptance(rp, client, deps, receiver, sender):
    tokens = rp.login_and_exchange()
    receiver.statuses = [302]
    logout(client, tokens["id_token"])
    assert sender.send_due() == 0
    with deps.sessions() as session:
        notice = session.scalar(select(LogoutNotice))
    assert notice.delivered_at is None
    assert notice.last_error == "HTTP 302"
    assert receiver.tokens == []
