"""OpenID Connect Back-Channel Logout 1.0: a relying party learns that the session it holds
has ended, from a persisted notice retried until it is accepted."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp.audit.models import AuditEvent
from idp.audit.models import SecurityAlert
from idp.oidc.backchannel import NoticeSender
from idp.revocation.models import RelyingPartyNotice
from tests.factories import add_client
from tests.factories import seed
from tests.receivers import ReceiverServer
from tests.receivers import running_receiver
from tests.rp import RP
from tests.servers import free_port

EVENT = "http://schemas.openid.net/event/backchannel-logout"


@pytest.fixture
def receiver() -> Iterator[ReceiverServer]:
    with running_receiver(default_status=200) as server:
        yield server


@pytest.fixture
def rp(client, deps, receiver):
    seed(deps, "somchai")
    add_client(
        deps,
        "bcl-rp",
        secret="b" * 40,
        backchannel_logout_uri=receiver.url("/backchannel-logout"),
    )
    return RP(client, client_id="bcl-rp", secret="b" * 40)


@pytest.fixture
def sender(app, deps) -> NoticeSender:
    return app.extensions["idp.notice_sender"]


def logout_tokens(receiver: ReceiverServer) -> list[str]:
    """The logout tokens the relying party accepted."""
    return [parse_qs(d.body.decode())["logout_token"][0] for d in receiver.accepted()]


def logout(client, id_token: str) -> None:
    assert client.get("/logout", query_string={"id_token_hint": id_token}).status_code == 200


def test_logout_token_reaches_the_relying_party(rp, client, receiver, sender):
    tokens = rp.login_and_exchange()
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    sid = jwt.decode(tokens["id_token"], keys).claims["sid"]
    logout(client, tokens["id_token"])
    assert sender.send_due() == 1
    [received] = logout_tokens(receiver)
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
    assert logout_tokens(receiver) == []


def test_failed_delivery_is_retried_later_with_the_same_jti(rp, client, deps, receiver, sender):
    tokens = rp.login_and_exchange()
    receiver.answers = [500]
    logout(client, tokens["id_token"])
    assert sender.send_due() == 0
    assert sender.send_due() == 0  # not yet due again
    deps.clock.advance(3)
    assert sender.send_due() == 1
    with deps.sessions() as session:
        notice = session.scalar(select(RelyingPartyNotice))
    assert notice.attempts == 2
    assert notice.delivered_at is not None
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    assert jwt.decode(logout_tokens(receiver)[0], keys).claims["jti"] == notice.id


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
        notice = session.scalar(
            select(RelyingPartyNotice).where(RelyingPartyNotice.client_id == "gone")
        )
        assert notice.abandoned_at is not None
        assert notice.last_error
        events = session.scalars(select(AuditEvent.event)).all()
        alert = session.scalar(select(SecurityAlert))
    assert "session.logout_undeliverable" in events
    # The helpdesk hears of it: the relying party may still be letting the user in.
    assert alert.kind == "notice_undeliverable"
    assert alert.user_id is None
    assert alert.details["client"] == "gone"
    assert alert.details["uri"] == notice.target_uri
    assert alert.details["error"] == notice.last_error
    assert alert.details["notice"] == "logout"


def test_a_redirect_is_not_an_acceptance(rp, client, deps, receiver, sender):
    tokens = rp.login_and_exchange()
    receiver.answers = [302]
    logout(client, tokens["id_token"])
    assert sender.send_due() == 0
    with deps.sessions() as session:
        notice = session.scalar(select(RelyingPartyNotice))
    assert notice.delivered_at is None
    assert notice.last_error == "HTTP 302"
    assert logout_tokens(receiver) == []


def test_no_alert_while_a_notice_is_still_being_retried(rp, client, deps, receiver, sender):
    tokens = rp.login_and_exchange()
    receiver.answers = [503] * 3
    logout(client, tokens["id_token"])
    for _ in range(3):
        assert sender.send_due() == 0
        deps.clock.advance(3600)
    with deps.sessions() as session:
        assert session.scalar(select(SecurityAlert)) is None
    assert sender.send_due() == 1


def test_a_logout_refused_with_400_is_still_retried(rp, client, deps, receiver, sender):
    # Back-Channel Logout 1.0 §2.8: 400 means the logout failed there; trying again may work
    # (the RFC 8935 refusal of a security event does not apply to logout tokens).
    tokens = rp.login_and_exchange()
    receiver.answers = [(400, {"err": "invalid_request", "description": "busy"})]
    logout(client, tokens["id_token"])
    assert sender.send_due() == 0
    deps.clock.advance(3)
    assert sender.send_due() == 1
    assert len(logout_tokens(receiver)) == 1


def test_a_hanging_relying_party_does_not_delay_the_others(app, client, deps, receiver):
    seed(deps, "somchai")
    with socket.socket() as hanging:
        # Connections are accepted by the kernel and never answered: each delivery there
        # lasts until the sender's timeout.
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(16)
        hang_uri = f"http://127.0.0.1:{hanging.getsockname()[1]}/backchannel-logout"
        add_client(deps, "hang-rp", secret="h" * 40, backchannel_logout_uri=hang_uri)
        add_client(deps, "fast-rp", secret="f" * 40,
                   backchannel_logout_uri=receiver.url("/backchannel-logout"))  # fmt: skip
        for _ in range(3):  # three sessions, each known to both relying parties
            browser = app.test_client()
            RP(browser, client_id="hang-rp", secret="h" * 40).login_and_exchange()
            tokens = RP(browser, client_id="fast-rp", secret="f" * 40).login_and_exchange()
            logout(browser, tokens["id_token"])
        sender = NoticeSender(deps.sessions, deps.signer, deps.clients, deps.clock,
                              default_alg="ES256", timeout=3.0)  # fmt: skip
        started = time.monotonic()
        run = threading.Thread(target=sender.send_due)
        run.start()
        while len(receiver.accepted()) < 3 and time.monotonic() - started < 10:
            time.sleep(0.02)
        delivered_after = time.monotonic() - started
        run.join()
    assert len(receiver.accepted()) == 3
    # Serially, behind three hanging deliveries of 3 s each, this took up to 9 s.
    assert delivered_after < 1.5
