"""Group commit under a faulty database and hostile rows: a hung or silent server releases
its writers with a failure in bounded time, and one row the database refuses fails only its
own request, not the tokens of the others that shared its batch."""

from __future__ import annotations

import gc
import socket
import threading
import time
from datetime import UTC
from datetime import datetime

from sqlalchemy import create_engine
from sqlalchemy import select
from sqlalchemy import text

from idp.audit.group_commit import GroupCommit
from idp.audit.models import AuditEvent
from idp.audit.service import INSERT_EVENT
from idp.audit.service import AuditContext
from idp.audit.service import event_row
from idp.store.db import make_engine

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
FIELDS = [column for column in AuditEvent.__table__.columns if column.name != "id"]


def row(n: int, *, client_ip: str = "192.0.2.1") -> dict[str, object]:
    context = AuditContext(client_ip=client_ip, request_id=f"request-{n:04d}")
    return event_row("token.issued", now=NOW, actor=f"writer-{n}", context=context, n=n)


def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def actors(engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.scalars(select(AuditEvent.actor).order_by(AuditEvent.id)))


def append_in_thread(committer: GroupCommit, value: dict[str, object], results: dict, key):
    thread = threading.Thread(target=lambda: results.__setitem__(key, committer.append(value)))
    thread.daemon = True  # a hung writer must not hang the test run too
    thread.start()
    return thread


def test_a_hung_statement_releases_its_writers_with_a_failure(pg_engine, clean_state):
    committer = GroupCommit(pg_engine, INSERT_EVENT, timeout=1.0)
    assert committer.append(row(0)) is True  # the committer's own connection is open
    # Something holds the table (a stuck migration, a lock taken by hand): the INSERT waits.
    blocker = pg_engine.connect()
    blocker.execute(text("LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE"))
    try:
        results: dict[int, bool] = {}
        threads = [append_in_thread(committer, row(n), results, n) for n in range(1, 6)]
        for thread in threads:
            thread.join(timeout=20)
        assert not any(thread.is_alive() for thread in threads), "writers stuck on the database"
        assert results == dict.fromkeys(range(1, 6), False)
    finally:
        blocker.rollback()
        blocker.close()
    assert committer.append(row(9)) is True
    assert actors(pg_engine) == ["writer-0", "writer-9"]


def test_a_silent_server_does_not_hold_the_writers_forever(pg_engine, clean_state):
    # A failover target that accepts connections and never answers (a balancer with no
    # database behind it): the kernel completes the handshake from the listen backlog.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    try:
        engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test")
        committer = GroupCommit(engine, INSERT_EVENT, timeout=1.0)
        results: dict[int, bool] = {}
        threads = [append_in_thread(committer, row(n), results, n) for n in range(3)]
        for thread in threads:
            thread.join(timeout=20)
        assert not any(thread.is_alive() for thread in threads), "writers stuck on the database"
        assert results == dict.fromkeys(range(3), False)
    finally:
        silent.close()


def _batch_with(pg_engine, bad: dict[str, object]) -> tuple[dict, GroupCommit]:
    """24 good rows and ``bad`` queued behind a held commit, so that they form one batch."""
    committer = GroupCommit(pg_engine, INSERT_EVENT)
    results: dict[object, bool] = {}
    blocker = pg_engine.connect()
    blocker.execute(text("LOCK TABLE audit_events IN EXCLUSIVE MODE"))
    first = append_in_thread(committer, row(0), results, 0)
    wait_until(lambda: committer._leading and not committer._queue)
    threads = [append_in_thread(committer, row(n), results, n) for n in range(1, 13)]
    wait_until(lambda: len(committer._queue) == 12)
    threads.append(append_in_thread(committer, bad, results, "bad"))
    wait_until(lambda: len(committer._queue) == 13)
    threads += [append_in_thread(committer, row(n), results, n) for n in range(13, 25)]
    wait_until(lambda: len(committer._queue) == 25)
    blocker.rollback()
    blocker.close()
    for thread in [first, *threads]:
        thread.join(timeout=30)
    return results, committer


def test_a_nul_in_one_row_fails_only_that_row(pg_engine, clean_state):
    # PostgreSQL text cannot hold U+0000 (the engine's INSERT refuses it as well).
    results, _ = _batch_with(pg_engine, row(99, client_ip="192.0.2.1\x00' OR '1'='1"))
    assert results.pop("bad") is False
    assert results == dict.fromkeys(range(25), True)
    assert sorted(actors(pg_engine)) == sorted(f"writer-{n}" for n in range(25))


def test_an_over_long_value_in_one_row_fails_only_that_row(pg_engine, clean_state):
    # The client address is cut to its column when the row is made; a request id is not.
    bad = row(99)
    bad["request_id"] = "r" * 65
    results, _ = _batch_with(pg_engine, bad)
    assert results.pop("bad") is False
    assert results == dict.fromkeys(range(25), True)
    assert len(actors(pg_engine)) == 25


def test_a_row_json_cannot_carry_fails_only_that_row(pg_engine, clean_state):
    bad = row(99)
    bad["details"] = {"when": NOW}  # not JSON: the engine's serializer refuses it too
    results, _ = _batch_with(pg_engine, bad)
    assert results.pop("bad") is False
    assert results == dict.fromkeys(range(25), True)


def test_awkward_text_reads_back_as_the_engine_writes_it(pg_engine, clean_state):
    awkward = [
        "ผู้ใช้งาน กรมบัญชีกลาง",  # Thai with combining marks
        "😀 \u2028\u2029 \x7f \x1f \t\n\r \" \\ / \\u0000 ' -- ;",  # escapes JSON spells its way
        "x" * 64,  # the column's limit exactly
        "'); DELETE FROM audit_events; --",
    ]
    committer = GroupCommit(pg_engine, INSERT_EVENT)
    for value in awkward:
        context = AuditContext(client_ip=value[:64], request_id=value[:64])
        nested = {"v": [value, None, 1.5]}
        event = event_row("token.issued", now=NOW, actor=value[:128], client_id=value[:64],
                          context=context, scope=value, nested=nested)  # fmt: skip
        with pg_engine.begin() as connection:
            connection.execute(INSERT_EVENT, event)
        assert committer.append(event) is True
    with pg_engine.connect() as connection:
        rows = connection.execute(select(*FIELDS).order_by(AuditEvent.id)).all()
        # json keeps its text: the stored details, not only their value, must be the same.
        texts = connection.scalars(text("SELECT details::text FROM audit_events ORDER BY id"))
        texts = list(texts)
    assert len(rows) == 2 * len(awkward)
    for engine_row, committed_row in zip(rows[0::2], rows[1::2], strict=True):
        assert engine_row == committed_row
    assert texts[0::2] == texts[1::2]


def test_a_commit_the_server_warns_about_is_not_answered(pg_engine, clean_state):
    # A statement timeout that fires while the commit waits for a synchronous standby does
    # not fail the statement: PostgreSQL warns that the row committed locally but may not
    # have reached the standby, and reports success. Such a row is not durable enough to
    # answer a token on; a trigger here stands in for that warning.
    warn = (
        "CREATE FUNCTION gc_test_warn() RETURNS trigger AS $$ BEGIN"
        " RAISE WARNING 'canceling wait for synchronous replication due to user request';"
        " RETURN NULL; END $$ LANGUAGE plpgsql;"
        " CREATE TRIGGER gc_test_warn AFTER INSERT ON audit_events"
        " FOR EACH STATEMENT EXECUTE FUNCTION gc_test_warn()"
    )
    committer = GroupCommit(pg_engine, INSERT_EVENT)
    with pg_engine.begin() as connection:
        connection.execute(text(warn))
    try:
        assert committer.append(row(1)) is False
    finally:
        with pg_engine.begin() as connection:
            connection.execute(text("DROP TRIGGER gc_test_warn ON audit_events"))
            connection.execute(text("DROP FUNCTION gc_test_warn()"))
    assert committer.append(row(2)) is True


def test_a_dropped_committer_closes_its_connection(pg_engine, clean_state):
    committer = GroupCommit(pg_engine, INSERT_EVENT)
    assert committer.append(row(1)) is True
    connection = committer._direct._connection
    del committer
    gc.collect()
    assert connection.closed


def test_the_protocol_path_does_not_wait_forever_on_a_silent_server(pg_engine):
    # Where a failed batch sends its requests: the pooled engine must fail as well, not hold
    # the request's thread on a server that accepts and never answers.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    outcome: list[object] = []

    def connect() -> None:
        try:
            make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test").connect()
        except Exception as error:
            outcome.append(error)

    try:
        thread = threading.Thread(target=connect, daemon=True)
        thread.start()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the pool's connection waits forever"
        assert outcome
    finally:
        silent.close()


def test_details_the_engine_stores_are_stored_alike(pg_engine, clean_state):
    # The json column keeps a \u0000 (and any other escape) that text columns cannot: what
    # the engine's INSERT stores, the committer stores, not a refused batch.
    details = {"nul": "a\x00b", "pair": "\ud83d\ude00", "thai": "ก", "none": None, "n": 1.5}
    event = event_row("token.issued", now=NOW, actor="svc", **details)
    with pg_engine.begin() as connection:
        connection.execute(INSERT_EVENT, event)
    assert GroupCommit(pg_engine, INSERT_EVENT).append(event) is True
    with pg_engine.connect() as connection:
        rows = connection.execute(select(*FIELDS).order_by(AuditEvent.id)).all()
        texts = list(connection.scalars(text("SELECT details::text FROM audit_events")))
    assert len(rows) == 2
    assert rows[0] == rows[1]
    assert texts[0] == texts[1]
