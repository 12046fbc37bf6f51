"""The audit trail: seal, verify, and find the first broken link."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from idp.audit.service import record
from idp.audit.service import seal_pending
from idp.audit.service import verify_chain

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def write_events(sessions, count: int, start: int = 0) -> None:
    with sessions.begin() as session:
        for n in range(start, start + count):
            record(session, "login.failed", now=NOW, outcome="failure", actor=f"user{n}", n=n)


def test_sealed_chain_verifies(sessions):
    write_events(sessions, 5)
    with sessions.begin() as session:
        assert seal_pending(session) == 5
    write_events(sessions, 3, start=5)
    with sessions() as session:
        report = verify_chain(session)
    assert report.is_intact
    assert (report.checked, report.unsealed) == (5, 3)
    with sessions.begin() as session:
        assert seal_pending(session) == 3
    with sessions() as session:
        assert verify_chain(session, batch=2).checked == 8


def test_the_database_refuses_changes_and_deletes(sessions):
    write_events(sessions, 2)
    with sessions.begin() as session:
        seal_pending(session)
    with sessions() as session, pytest.raises(DatabaseError, match="append-only"):
        session.execute(text("DELETE FROM audit_events WHERE seq = 1"))
    with sessions() as session, pytest.raises(DatabaseError, match="never changed"):
        session.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 1"))


def _tamper(sessions, statement: str) -> None:
    with sessions.begin() as session:
        session.execute(text("DROP TRIGGER audit_events_seal_once"))
        session.execute(text("DROP TRIGGER audit_events_no_delete"))
        session.execute(text(statement))


def test_an_altered_event_is_the_first_broken_link(sessions):
    write_events(sessions, 6)
    with sessions.begin() as session:
        seal_pending(session)
    _tamper(sessions, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 4")
    with sessions() as session:
        report = verify_chain(session)
    assert (report.broken_at_seq, report.reason, report.checked) == (4, "altered event", 3)


def test_a_deleted_event_is_found(sessions):
    write_events(sessions, 6)
    with sessions.begin() as session:
        seal_pending(session)
    _tamper(sessions, "DELETE FROM audit_events WHERE seq = 2")
    with sessions() as session:
        report = verify_chain(session)
    assert (report.broken_at_seq, report.reason) == (2, "missing event")


def test_a_rewritten_tail_does_not_match_the_next_link(sessions):
    write_events(sessions, 4)
    with sessions.begin() as session:
        seal_pending(session)
    _tamper(
        sessions, "UPDATE audit_events SET chain_hash = 'f' || substr(chain_hash, 2) WHERE seq = 2"
    )
    with sessions() as session:
        assert verify_chain(session).broken_at_seq == 2


def test_an_anchor_catches_a_dropped_or_rehashed_tail(sessions):
    write_events(sessions, 5)
    with sessions.begin() as session:
        seal_pending(session)
    with sessions() as session:
        report = verify_chain(session)
    assert report.head_seq == 5
    anchor = {report.head_seq: report.head_hash}
    with sessions() as session:
        assert verify_chain(session, anchors=anchor).is_intact
    # Whoever can write the table drops the last two events: the chain alone still "verifies".
    _tamper(sessions, "DELETE FROM audit_events WHERE seq > 3")
    with sessions() as session:
        assert verify_chain(session).is_intact
        report = verify_chain(session, anchors=anchor)
    assert (report.broken_at_seq, report.reason) == (5, "shorter than a recorded anchor")


def test_an_anchor_that_does_not_match_is_reported(sessions):
    write_events(sessions, 3)
    with sessions.begin() as session:
        seal_pending(session)
    with sessions() as session:
        report = verify_chain(session, anchors={2: "0" * 64})
    assert (report.broken_at_seq, report.reason) == (2, "differs from a recorded anchor")


def test_a_client_address_longer_than_its_column_is_recorded_cut_to_it():
    from idp.audit.service import CLIENT_IP_MAX
    from idp.audit.service import AuditContext
    from idp.audit.service import event_row

    address = "fe80::1%" + "a" * 80  # a valid IPv6 address: its zone may be any length
    row = event_row("token.issued", now=datetime.now(UTC), context=AuditContext(client_ip=address))
    assert row["client_ip"] == address[:CLIENT_IP_MAX]
    assert event_row("token.issued", now=datetime.now(UTC))["client_ip"] is None
