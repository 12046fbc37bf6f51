"""Group commit on PostgreSQL: rows of concurrent writers share a transaction, each writer is
released only once its row is committed, and a failed transaction releases its writers with
a failure and writes nothing."""

from __future__ import annotations

import threading
import time
from datetime import UTC
from datetime import datetime

from sqlalchemy import create_engine
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from idp.audit.group_commit import GroupCommit
from idp.audit.models import AuditEvent
from idp.audit.service import INSERT_EVENT
from idp.audit.service import AuditContext
from idp.audit.service import event_row

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
FIELDS = [column for column in AuditEvent.__table__.columns if column.name != "id"]


def row(n: int) -> dict[str, object]:
    return event_row("token.issued", now=NOW, actor=f"writer-{n}", grant_type="test", n=n)


def count_rows(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(AuditEvent)) or 0


def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_writers_waiting_during_a_commit_share_the_next_transaction(pg_engine, clean_state):
    committer = GroupCommit(pg_engine, INSERT_EVENT)
    results: dict[int, bool] = {}
    seen_committed: dict[int, int] = {}

    def write(n: int) -> None:
        results[n] = committer.append(row(n))
        # Released means committed: another connection sees the row now.
        with pg_engine.connect() as connection:
            seen_committed[n] = connection.scalar(
                select(func.count()).where(AuditEvent.actor == f"writer-{n}")
            )

    # Another transaction holds the table: the first writer's INSERT waits on it, and every
    # other writer queues behind that commit meanwhile.
    blocker = pg_engine.connect()
    blocker.execute(text("LOCK TABLE audit_events IN EXCLUSIVE MODE"))
    first = threading.Thread(target=write, args=(0,))
    first.start()
    wait_until(lambda: committer._leading and not committer._queue)  # its batch is taken
    others = [threading.Thread(target=write, args=(n,)) for n in range(1, 25)]
    for thread in others:
        thread.start()
    wait_until(lambda: len(committer._queue) == 24)
    assert results == {}  # nobody is released before the commit
    blocker.rollback()
    blocker.close()
    for thread in [first, *others]:
        thread.join(timeout=30)
    assert results == dict.fromkeys(range(25), True)
    assert seen_committed == dict.fromkeys(range(25), 1)
    assert committer.batches_committed == 2  # the first row alone, then the 24 that waited
    assert count_rows(pg_engine) == 25


def test_a_failed_transaction_releases_its_writers_with_a_failure(pg_engine, clean_state):
    committer = GroupCommit(create_engine("postgresql+psycopg://postgres@127.0.0.1:9/none"),
                            INSERT_EVENT)  # fmt: skip
    results = []
    threads = [
        threading.Thread(target=lambda n=n: results.append(committer.append(row(n))))
        for n in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == [False] * 8
    assert committer.batches_committed == 0
    # Leadership was handed on: the committer still works once its database does.
    committer._engine = pg_engine
    assert committer.append(row(99)) is True
    assert count_rows(pg_engine) == 1


def test_a_batch_reads_back_as_the_engine_writes_it(pg_engine, clean_state):
    # The same event through the engine's INSERT and through the committer's own statement.
    context = AuditContext(client_ip="192.0.2.7", request_id="0123456789abcdef")
    event = event_row("token.issued", now=datetime(2026, 12, 2, 9, 0, 0, 123456, tzinfo=UTC),
                      actor="svc", client_id="svc", context=context, grant_type="x",
                      jti="é\"\\", scope=None, nested={"a": [1, 2.5, None]})  # fmt: skip
    with pg_engine.begin() as connection:
        connection.execute(INSERT_EVENT, event)
    assert GroupCommit(pg_engine, INSERT_EVENT).append(event) is True
    with pg_engine.connect() as connection:
        rows = connection.execute(select(*FIELDS).order_by(AuditEvent.id)).all()
    assert len(rows) == 2
    assert rows[0] == rows[1]
    assert rows[1].details == event["details"]
    assert rows[1].occurred_at == event["occurred_at"]


def test_a_lost_connection_fails_one_batch_and_the_next_reconnects(pg_engine, clean_state):
    committer = GroupCommit(pg_engine, INSERT_EVENT)
    assert committer.append(row(1)) is True
    # The committer's connection is ended under it (a database restart, a killed backend).
    backend = committer._direct._connection.info.backend_pid
    with pg_engine.connect() as connection:
        assert connection.scalar(select(func.pg_terminate_backend(backend))) is True
    assert committer.append(row(2)) is False
    assert committer.append(row(3)) is True
    with pg_engine.connect() as connection:
        actors = connection.scalars(select(AuditEvent.actor).order_by(AuditEvent.id)).all()
    assert actors == ["writer-1", "writer-3"]
