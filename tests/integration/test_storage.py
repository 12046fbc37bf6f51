"""Storage on real PostgreSQL and Redis: migrations, the audit table's guards, concurrent
sealing, and the revocation list when Redis loses everything or goes away."""

from __future__ import annotations

import secrets
import threading
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from idp.audit.service import record
from idp.audit.service import seal_pending
from idp.audit.service import verify_chain
from idp.revocation.models import RevokedKind
from idp.revocation.service import RevocationList
from idp.store.db import make_engine
from idp.store.db import make_session_factory
from idp.store.ephemeral import Keys
from idp.store.ephemeral import RedisStore
from idp.store.migrate import upgrade
from idp.store.models import Base
from tests.conftest import own_schema
from tests.unit.store.test_migrations import check_outbox_renamed_in_place

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pg_sessions(fresh_database_url):
    engine = make_engine(fresh_database_url)
    upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()


def drift(url: str) -> list:
    engine = make_engine(url)
    upgrade(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    return differences


def test_migrations_match_the_models_on_postgresql(fresh_database_url, pg_sessions):
    assert drift(fresh_database_url) == []


def test_migrations_match_the_models_on_sqlite(tmp_path: Path):
    assert drift(f"sqlite:///{tmp_path / 'drift.sqlite3'}") == []


def test_postgresql_refuses_changes_to_the_audit_trail(pg_sessions):
    with pg_sessions.begin() as session:
        record(session, "test.event", now=NOW, actor="a")
    with pg_sessions.begin() as session:
        seal_pending(session)
    with pg_sessions() as session, pytest.raises(DatabaseError, match="append-only"):
        session.execute(text("DELETE FROM audit_events"))
    with pg_sessions() as session, pytest.raises(DatabaseError, match="never changed"):
        session.execute(text("UPDATE audit_events SET actor = 'mallory'"))
    with pg_sessions() as session, pytest.raises(DatabaseError, match="append-only"):
        session.execute(text("TRUNCATE audit_events"))


def test_concurrent_writers_and_sealers_build_one_intact_chain(pg_sessions):
    def write(worker: int) -> None:
        for n in range(25):
            with pg_sessions.begin() as session:
                record(session, "test.concurrent", now=NOW, actor=f"w{worker}", n=n)

    def seal() -> None:
        for _ in range(20):
            with pg_sessions.begin() as session:
                seal_pending(session)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    threads += [threading.Thread(target=seal) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with pg_sessions.begin() as session:
        seal_pending(session)
    with pg_sessions() as session:
        report = verify_chain(session)
    assert report.is_intact
    assert report.unsealed == 0
    assert report.checked >= 100


@pytest.fixture
def revocations(redis_url):
    store = RedisStore(redis_url)
    keys = Keys(f"revtest{threading.get_ident()}:")
    return RevocationList(store, keys), store, keys


def test_revocation_survives_a_redis_flush(pg_sessions, revocations):
    revocation_list, store, keys = revocations
    with pg_sessions.begin() as session:
        revocation_list.revoke(
            session, RevokedKind.ACCESS_TOKEN, "jti-flushed",
            expires_at=NOW + timedelta(minutes=5), now=NOW, reason="test",
        )  # fmt: skip
    with pg_sessions() as session:
        revocation_list.reload(session, NOW)
    assert revocation_list.is_revoked(
        jti="jti-flushed", sid=None, now=NOW, open_session=pg_sessions
    )

    # Redis restarts empty (it keeps nothing on disk).
    store.delete(keys.revocations_loaded(), keys.revoked("jti", "jti-flushed"))
    assert revocation_list.is_revoked(
        jti="jti-flushed", sid=None, now=NOW, open_session=pg_sessions
    )
    # ... and the mirror was rebuilt on the way.
    assert store.get(keys.revoked("jti", "jti-flushed")) == b"1"
    assert not revocation_list.is_revoked(
        jti="jti-other", sid=None, now=NOW, open_session=pg_sessions
    )


def test_revocation_is_answered_from_the_database_when_redis_is_down(pg_sessions, revocations):
    revocation_list, _, keys = revocations
    with pg_sessions.begin() as session:
        revocation_list.revoke(
            session, RevokedKind.SESSION, "sid-down",
            expires_at=NOW + timedelta(minutes=5), now=NOW, reason="test",
        )  # fmt: skip
    down = RevocationList(RedisStore("redis://127.0.0.1:1/0"), keys)
    assert down.is_revoked(jti="any", sid="sid-down", now=NOW, open_session=pg_sessions)
    assert not down.is_revoked(jti="any", sid="sid-live", now=NOW, open_session=pg_sessions)
    # Expired revocations no longer matter (the token they named has expired as well).
    later = NOW + timedelta(minutes=6)
    assert not down.is_revoked(jti="any", sid="sid-down", now=later, open_session=pg_sessions)


def test_revocation_written_while_redis_was_away_is_reconciled(pg_sessions, revocations):
    revocation_list, _, keys = revocations
    with pg_sessions() as session:
        revocation_list.reload(session, NOW)
    away = RevocationList(RedisStore("redis://127.0.0.1:1/0"), keys)
    with pg_sessions.begin() as session:
        away.revoke(
            session, RevokedKind.ACCESS_TOKEN, "jti-missed",
            expires_at=NOW + timedelta(minutes=5), now=NOW, reason="test",
        )  # fmt: skip
    # Redis kept its contents (and its "loaded" marker) but missed the write.
    assert not revocation_list.is_revoked(
        jti="jti-missed", sid=None, now=NOW, open_session=pg_sessions
    )
    with pg_sessions() as session:
        revocation_list.reconcile(session, NOW + timedelta(seconds=5))
    assert revocation_list.is_revoked(jti="jti-missed", sid=None, now=NOW, open_session=pg_sessions)


def test_the_notice_outbox_is_renamed_in_place_on_postgresql():
    with own_schema(f"it_{secrets.token_hex(6)}") as url:
        engine = make_engine(url)
        try:
            check_outbox_renamed_in_place(engine)
        finally:
            engine.dispose()
