"""Queuing CAEP security events: who is owed what, and the inputs refused."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest
from sqlalchemy import select

from idp.oidc.clients import ClientRegistrations
from idp.oidc.clients import NewClient
from idp.oidc.models import Client
from idp.revocation.models import NoticeKind
from idp.revocation.models import RelyingPartyNotice
from idp.revocation.security_events import CredentialChange
from idp.revocation.security_events import SessionRevoked
from idp.revocation.security_events import queue_security_events

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture
def subscribed(sessions, cipher) -> list[str]:
    with sessions.begin() as session:
        for client_id, uri in (
            ("b-rp", "https://b.example/events"),
            ("a-rp", "http://127.0.0.1:9000/events"),
            ("plain", None),
            ("retired", "https://retired.example/events"),
        ):
            new = NewClient(
                client_id=client_id,
                client_name=client_id,
                secret="s" * 40,
                auth_methods=["client_secret_basic"],
                redirect_uris=["https://app.example/cb"],
                post_logout_redirect_uris=[],
                grant_types=["authorization_code"],
                scope="openid",
                security_event_uri=uri,
            )
            ClientRegistrations(cipher).register(session, new, now=NOW)
        session.get(Client, "retired").disabled_at = NOW
    return ["a-rp", "b-rp"]


def queue(session, events, **overrides):
    arguments = {
        "user_sub": "sub-1", "events": events, "now": NOW, "reason": "phone lost",
        "initiating_entity": "admin",
    } | overrides  # fmt: skip
    return queue_security_events(session, **arguments)


def test_one_set_per_event_and_subscribed_client_sharing_one_txn(sessions, subscribed):
    with sessions.begin() as session:
        owed = queue(session, [SessionRevoked(), CredentialChange(friendly_name="phone")])
    assert owed == subscribed
    with sessions() as session:
        rows = session.scalars(select(RelyingPartyNotice)).all()
    assert sorted((row.client_id, row.payload["event_type"].rsplit("/", 1)[1]) for row in rows) == [
        ("a-rp", "credential-change"),
        ("a-rp", "session-revoked"),
        ("b-rp", "credential-change"),
        ("b-rp", "session-revoked"),
    ]
    assert {row.kind for row in rows} == {NoticeKind.SECURITY_EVENT}
    assert {row.sid for row in rows} == {None}
    assert {row.sub for row in rows} == {"sub-1"}
    assert len({row.payload["txn"] for row in rows}) == 1
    assert len({row.id for row in rows}) == 4
    assert {row.target_uri for row in rows if row.client_id == "a-rp"} == {
        "http://127.0.0.1:9000/events"
    }


@pytest.mark.parametrize(
    ("events", "overrides", "message"),
    [
        ([], {}, "no events"),
        ([SessionRevoked()], {"reason": ""}, "reason_admin"),
        ([SessionRevoked()], {"initiating_entity": "helpdesk"}, "initiating_entity"),
    ],
)
def test_bad_input_is_refused_and_nothing_queued(sessions, subscribed, events, overrides, message):
    with sessions.begin() as session, pytest.raises(ValueError, match=message):
        queue(session, events, **overrides)
    with sessions() as session:
        assert session.scalar(select(RelyingPartyNotice)) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"change_type": "lost"}, "change_type"), ({"credential_type": ""}, "credential_type")],
)
def test_a_credential_change_outside_caep_is_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        CredentialChange(**fields)


def test_event_claims_follow_caep():
    assert SessionRevoked().claims() == {}
    assert SessionRevoked(sids=("s1",)).claims() == {"sids": ["s1"]}
    assert CredentialChange().claims() == {"credential_type": "app", "change_type": "revoke"}
