"""CAEP security events (OpenID CAEP 1.0, SSF 1.0) pushed to relying parties per RFC 8935:
every subscribed client learns of a suspension, whether or not the user has a session there,
from a persisted notice retried until it is accepted."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp import create_app
from idp.audit.models import AuditEvent
from idp.audit.models import SecurityAlert
from idp.clock import epoch
from idp.deps import build_deps
from idp.oidc.backchannel import NoticeSender
from idp.revocation.models import NoticeKind
from idp.revocation.models import RelyingPartyNotice
from idp.revocation.security_events import CredentialChange
from idp.revocation.security_events import SessionRevoked
from idp.revocation.security_events import queue_security_events
from idp.revocation.service import announce_notices
from idp.store.ephemeral import EphemeralStoreError
from idp.store.ephemeral import Keys
from tests.factories import add_client
from tests.factories import make_user
from tests.receivers import ReceiverServer
from tests.receivers import running_receiver
from tests.servers import free_port

ISSUER = "http://127.0.0.1:8000"
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
SESSION_REVOKED = CAEP + "session-revoked"
CREDENTIAL_CHANGE = CAEP + "credential-change"
PHONE = "Nexus Smart ID phone"


@pytest.fixture
def receiver() -> Iterator[ReceiverServer]:
    with running_receiver(default_status=202) as server:
        yield server


@pytest.fixture
def user_sub(deps) -> str:
    # No demo clients here: only the clients a test registers may be owed anything.
    with deps.sessions.begin() as session:
        return make_user(session, deps, "somchai").sub


@pytest.fixture
def subscriber(deps, receiver) -> str:
    add_client(deps, "caep-rp", security_event_uri=receiver.url("/security-events"))
    return "caep-rp"


@pytest.fixture
def sender(app) -> NoticeSender:
    return app.extensions["idp.notice_sender"]


def suspend(deps, user_sub: str, events=None) -> list[str]:
    """Queue what a suspension of the user's phone owes, committed."""
    with deps.sessions.begin() as session:
        return queue_security_events(
            session,
            user_sub=user_sub,
            events=events or [SessionRevoked(), CredentialChange(friendly_name=PHONE)],
            now=deps.clock.now(),
            reason="Soft Token suspended: phone reported lost",
            initiating_entity="admin",
        )


def notices(deps, client_id: str = "caep-rp") -> list[RelyingPartyNotice]:
    with deps.sessions() as session:
        return list(
            session.scalars(
                select(RelyingPartyNotice)
                .where(RelyingPartyNotice.client_id == client_id)
                .order_by(RelyingPartyNotice.created_at, RelyingPartyNotice.id)
            )
        )


def decode(client, token: str):
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    return jwt.decode(token, keys, algorithms=["ES256", "RS256"])


def test_every_subscribed_client_gets_signed_sets_without_a_session(
    client, deps, receiver, sender, user_sub, subscriber
):
    add_client(deps, "plain-rp")  # no security event URI: not subscribed
    assert suspend(deps, user_sub) == ["caep-rp"]
    assert notices(deps, "plain-rp") == []
    assert sender.send_due() == 2
    owed = {notice.id for notice in notices(deps)}
    assert len(receiver.deliveries) == 2
    sets = []
    for delivery in receiver.deliveries:
        # RFC 8935 §2.1: the SET is the body, typed; the answer is asked for in JSON.
        assert delivery.path == "/security-events"
        assert delivery.content_type == "application/secevent+jwt"
        assert delivery.accept == "application/json"
        decoded = decode(client, delivery.body.decode())
        assert decoded.header["typ"] == "secevent+jwt"
        sets.append(decoded.claims)
    for claims in sets:
        assert claims["iss"] == ISSUER
        assert claims["aud"] == "caep-rp"
        assert claims["iat"] == epoch(deps.clock.now())
        assert claims["sub_id"] == {"format": "iss_sub", "iss": ISSUER, "sub": user_sub}
        assert "sub" not in claims
        assert "exp" not in claims
        assert len(claims["events"]) == 1  # one event per SET (CAEP interoperability profile)
    assert {claims["jti"] for claims in sets} == owed
    assert len({claims["txn"] for claims in sets}) == 1  # one cause
    events = {type_: event for claims in sets for type_, event in claims["events"].items()}
    common = {
        "event_timestamp": epoch(deps.clock.now()),
        "initiating_entity": "admin",
        "reason_admin": {"en": "Soft Token suspended: phone reported lost"},
    }
    assert events == {
        SESSION_REVOKED: common,
        CREDENTIAL_CHANGE: common
        | {"credential_type": "app", "change_type": "revoke", "friendly_name": PHONE},
    }
    assert sender.send_due() == 0  # delivered once
    with deps.sessions() as session:
        audit = session.scalars(select(AuditEvent.event)).all()
    assert audit.count("security_event.delivered") == 2
    assert "security_event.queued" in audit


def test_the_ended_sessions_are_named_when_given(client, deps, receiver, sender, user_sub):
    add_client(deps, "caep-rp", security_event_uri=receiver.url("/events"))
    suspend(deps, user_sub, [SessionRevoked(sids=("sid-1", "sid-2"))])
    assert sender.send_due() == 1
    claims = decode(client, receiver.deliveries[0].body.decode()).claims
    assert claims["events"][SESSION_REVOKED]["sids"] == ["sid-1", "sid-2"]


def test_clients_without_a_security_event_uri_get_nothing(deps, receiver, sender, user_sub):
    add_client(deps, "plain-rp", backchannel_logout_uri=receiver.url("/backchannel-logout"))
    assert suspend(deps, user_sub) == []
    assert sender.send_due() == 0
    assert receiver.deliveries == []
    with deps.sessions() as session:
        assert session.scalar(select(RelyingPartyNotice)) is None


def test_failed_push_is_retried_later_with_the_same_jti(
    client, deps, receiver, sender, user_sub, subscriber
):
    suspend(deps, user_sub, [CredentialChange(friendly_name=PHONE)])
    receiver.answers = [500]
    assert sender.send_due() == 0
    assert sender.send_due() == 0  # not yet due again
    deps.clock.advance(3)
    assert sender.send_due() == 1
    [notice] = notices(deps)
    assert notice.attempts == 2
    assert notice.delivered_at is not None
    first, second = (decode(client, d.body.decode()).claims for d in receiver.deliveries)
    assert first["jti"] == second["jti"] == notice.id
    assert second["iat"] == first["iat"] + 3  # signed afresh, the same event


def test_a_set_refused_with_an_error_is_abandoned_at_once_and_alerted(
    deps, receiver, sender, user_sub, subscriber
):
    suspend(deps, user_sub, [SessionRevoked()])
    # RFC 8935 §2.3: the receiver says why it will never accept this SET.
    receiver.answers = [(400, {"err": "invalid_key", "description": "Key ID unknown"})]
    assert sender.send_due() == 0
    [notice] = notices(deps)
    assert notice.attempts == 1
    assert notice.abandoned_at is not None
    assert notice.last_error == "HTTP 400 invalid_key: Key ID unknown"
    deps.clock.advance(3600)
    assert sender.send_due() == 0
    assert len(receiver.deliveries) == 1  # never sent again
    with deps.sessions() as session:
        audit = session.scalars(select(AuditEvent.event)).all()
        alert = session.scalar(select(SecurityAlert))
    assert "security_event.undeliverable" in audit
    assert alert.kind == "notice_undeliverable"
    assert alert.user_id is None
    assert alert.details == {
        "client": "caep-rp",
        "uri": receiver.url("/security-events"),
        "error": "HTTP 400 invalid_key: Key ID unknown",
        "notice": "set",
        "jti": notice.id,
    }


@pytest.mark.parametrize(
    "answer",
    [400, (400, b"not json"), (400, {"description": "no err"}), (400, ["err"]), 401, 503],
)
def test_other_errors_are_retried(deps, receiver, sender, user_sub, subscriber, answer):
    suspend(deps, user_sub, [SessionRevoked()])
    receiver.answers = [answer]
    assert sender.send_due() == 0
    [notice] = notices(deps)
    assert notice.abandoned_at is None
    deps.clock.advance(3)
    assert sender.send_due() == 1
    with deps.sessions() as session:
        assert session.scalar(select(SecurityAlert)) is None


def test_a_redirect_is_not_followed_nor_an_acceptance(deps, receiver, sender, user_sub, subscriber):
    suspend(deps, user_sub, [SessionRevoked()])
    receiver.answers = [302]
    assert sender.send_due() == 0
    [notice] = notices(deps)
    assert notice.delivered_at is None
    assert notice.last_error == "HTTP 302"
    assert receiver.gets == 0


def test_an_unreachable_receiver_is_given_up_on_with_an_alert(deps, sender, user_sub):
    gone = f"http://127.0.0.1:{free_port()}/closed"
    add_client(deps, "gone", security_event_uri=gone)
    suspend(deps, user_sub, [SessionRevoked()])
    for attempt in range(1, 13):
        sender.send_due()
        [notice] = notices(deps, "gone")
        assert (notice.abandoned_at is None) == (attempt < 12)
        deps.clock.advance(3600)
    with deps.sessions() as session:
        alert = session.scalar(select(SecurityAlert))
    assert alert.kind == "notice_undeliverable"
    assert alert.details["uri"] == gone
    assert alert.details["error"].startswith("URLError")


def test_a_restart_delivers_what_was_owed(
    settings, clock, redis_store, pg_engine, deps, receiver, user_sub, subscriber
):
    suspend(deps, user_sub)  # committed; this process then stops before sending anything
    restarted = create_app(
        deps=build_deps(settings, clock=clock, store=redis_store, engine=pg_engine),
        background=False,
    )
    assert restarted.extensions["idp.notice_sender"].send_due() == 2
    assert {n.delivered_at is not None for n in notices(deps)} == {True}
    assert len(receiver.deliveries) == 2


def test_an_announcement_wakes_the_sender_before_its_poll(
    deps, receiver, sender, user_sub, subscriber, monkeypatch
):
    passes = threading.Event()
    send_due = sender.send_due

    def counted() -> int:
        accepted = send_due()
        passes.set()
        return accepted

    monkeypatch.setattr(sender, "send_due", counted)
    stop = threading.Event()
    thread = threading.Thread(target=sender.run, args=(stop,), kwargs={"poll_interval": 60.0})
    thread.start()
    try:
        assert passes.wait(5)  # its first pass found nothing; now it waits up to a minute
        passes.clear()
        suspend(deps, user_sub, [SessionRevoked()])
        time.sleep(0.5)
        assert not passes.is_set()  # committed, not announced: the poll is far off
        assert receiver.deliveries == []
        announced = time.monotonic()
        announce_notices(deps.store, deps.keys)  # through Redis pub/sub, as across instances
        while not receiver.deliveries and time.monotonic() - announced < 5:
            time.sleep(0.01)
        assert receiver.deliveries, "the announcement did not wake the sender"
        assert time.monotonic() - announced < 1.0
    finally:
        stop.set()
        sender.wake()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert [n.kind for n in notices(deps)] == [NoticeKind.SECURITY_EVENT]


class _UnreachableStore:
    def publish(self, channel: str, message: bytes) -> None:
        raise EphemeralStoreError("down")


def test_an_announcement_without_redis_is_not_an_error(caplog):
    with caplog.at_level(logging.WARNING, logger="idp.revocation.service"):
        announce_notices(_UnreachableStore(), Keys())  # type: ignore[arg-type]
    assert "idp.notices.announce_failed" in caplog.text


def test_a_notice_that_cannot_be_signed_does_not_block_the_others(
    deps, receiver, sender, user_sub, subscriber
):
    with deps.sessions.begin() as session:
        session.add(
            RelyingPartyNotice(
                id="f" * 32, kind=NoticeKind.SECURITY_EVENT, client_id="caep-rp",
                target_uri=receiver.url("/security-events"), sub=user_sub, payload={},
                created_at=deps.clock.now(), next_attempt_at=deps.clock.now(),
            )
        )  # fmt: skip
    suspend(deps, user_sub, [SessionRevoked()])
    assert sender.send_due() == 1
    with deps.sessions() as session:
        broken = session.get(RelyingPartyNotice, "f" * 32)
    assert broken.last_error == "cannot sign: KeyError"
    assert broken.delivered_at is None
    assert broken.abandoned_at is None
    assert len(receiver.deliveries) == 1
