"""The sealer's one-UPDATE batches on PostgreSQL: rows written by the group commit seal into
a chain that verifies, any later change to a sealed row is caught, and a sealer that writes
links for rows another sealer already linked is refused by the append-only trigger."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError
from sqlalchemy.orm import sessionmaker

from idp.audit.group_commit import GroupCommit
from idp.audit.service import _UPDATE_LINKS_PG
from idp.audit.service import INSERT_EVENT
from idp.audit.service import AuditContext
from idp.audit.service import event_row
from idp.audit.service import seal_pending
from idp.audit.service import verify_chain

NOW = datetime(2026, 12, 2, 9, 0, 0, 123456, tzinfo=UTC)
AWKWARD = ["ผู้ใช้งาน กรมบัญชีกลาง", "😀 \u2028 \" \\ \\u0000 '--", "x" * 64, None]


def write_rows(pg_engine) -> None:
    committer = GroupCommit(pg_engine, INSERT_EVENT)
    for n, value in enumerate(AWKWARD * 3):
        context = AuditContext(client_ip=value, request_id=value)
        event = event_row("token.issued", now=NOW, actor=value, client_id=value,
                          context=context, scope=value, n=n)  # fmt: skip
        if n % 2:
            assert committer.append(event) is True
        else:
            with pg_engine.begin() as connection:
                connection.execute(INSERT_EVENT, event)


def test_group_committed_rows_seal_into_a_chain_that_catches_a_change(pg_engine, clean_state):
    sessions = sessionmaker(pg_engine)
    write_rows(pg_engine)
    while True:  # small batches: the chain continues across them
        with sessions.begin() as session:
            if not seal_pending(session, limit=5):
                break
    with sessions() as session:
        report = verify_chain(session)
    assert report.is_intact
    assert report.unsealed == 0
    assert report.checked == 12
    with pg_engine.begin() as connection:  # a superuser past the trigger
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(text("UPDATE audit_events SET client_ip = 'ผู้ใช้งาน กรมบัญชีกลาง '"
                                " WHERE seq = 5"))  # fmt: skip
    with sessions() as session:
        report = verify_chain(session)
    assert report.broken_at_seq == 5
    assert report.reason == "altered event"


def test_a_stale_sealer_cannot_relink_sealed_rows(pg_engine, clean_state):
    sessions = sessionmaker(pg_engine)
    write_rows(pg_engine)
    with sessions.begin() as session:
        ids = list(session.scalars(text("SELECT id FROM audit_events ORDER BY id")))
        seal_pending(session)
    # A second instance that read the rows unsealed before the first sealed them, and now
    # writes its own links (a fork of the chain): the trigger refuses them.
    forked = [{"id": id_, "seq": 1000 + n, "chain_hash": "f" * 64} for n, id_ in enumerate(ids)]
    with sessions.begin() as session, pytest.raises(DatabaseError, match="never changed"):
        session.execute(_UPDATE_LINKS_PG, {"links": json.dumps(forked)})
    with sessions() as session:
        assert verify_chain(session).is_intact
