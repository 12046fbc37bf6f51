"""Group commit: audit rows of concurrent requests written in one transaction.

A token request may not be answered before its ``token.issued`` row is durable, and one
INSERT plus one COMMIT per request cost more than half of a token's CPU (and a disk flush
each). Here each request hands its row over and waits; whoever finds no commit under way
leads: it takes every row waiting (up to ``max_batch``), inserts them with one statement in
one transaction, commits, and releases each of their requests only then. The rows that
arrived meanwhile are taken by the next leader, the oldest of the requests still waiting, so
no thread is kept for it and no request waits for more than the commit before its own.

Rows are inserted unsealed, as ``record`` inserts them: the sealer links committed rows
into the hash chain later (``idp.audit.service``), so nothing here touches the chain.

On PostgreSQL through psycopg the leader writes a batch as one statement on a connection of
its own in autocommit mode: ``INSERT ... SELECT ... FROM json_populate_recordset(...)`` with
the rows as one JSON parameter, a prepared statement whose text does not depend on the
batch's size. That statement is its
own transaction (all rows or none) and returns once committed, as durable as an explicit
COMMIT (the server's ``synchronous_commit``): one round trip per batch, where the engine's
BEGIN, INSERT and COMMIT through a pooled connection took four and most of a token
request's CPU. Other databases (SQLite in development) go through the engine.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import threading
import weakref
from collections import deque
from collections.abc import Callable
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import Engine
from sqlalchemy import Executable
from sqlalchemy import Insert
from sqlalchemy import Table

log = logging.getLogger(__name__)

_WAITING, _LEAD, _COMMITTED, _FAILED = range(4)
# Longest a batch may keep its writers (and every token request queued behind them) waiting
# on the database: a batch takes milliseconds, so a statement still running after this is
# stuck (a lock held on the table, a server that stopped answering) and its requests go to
# the protocol path, which reports the failure.
STATEMENT_TIMEOUT = 5.0


class _Ticket:
    __slots__ = ("row", "state", "wake")

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row
        self.state = _WAITING
        self.wake = threading.Event()


class GroupCommit:
    """Commit rows of one INSERT statement in batches; ``append`` returns once durable."""

    def __init__(
        self,
        engine: Engine,
        statement: Executable,
        *,
        max_batch: int = 256,
        timeout: float = STATEMENT_TIMEOUT,
    ) -> None:
        self._engine = engine
        self._timeout = timeout
        self._statement = statement
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: deque[_Ticket] = deque()
        # Invariant: the queue is empty whenever nobody leads (the last leader hands over or
        # clears this under the lock), so a request that finds no leader leads its own row.
        self._leading = False
        self.batches_committed = 0
        # Only the leader touches the writer (one leader at a time).
        self._direct: _RecordsetWriter | None = None

    def append(self, row: dict[str, Any]) -> bool:
        """Write ``row``; True once its transaction committed, False if that failed (the
        row is then not written, and the caller must not act as if it were)."""
        ticket = _Ticket(row)
        with self._lock:
            self._queue.append(ticket)
            lead = not self._leading
            self._leading = True
        if not lead:
            ticket.wake.wait()
            if ticket.state != _LEAD:
                return ticket.state == _COMMITTED
        self._commit_one_batch()
        return ticket.state == _COMMITTED

    def _commit_one_batch(self) -> None:
        with self._lock:
            count = min(len(self._queue), self._max_batch)
            batch = [self._queue.popleft() for _ in range(count)]
        states = [_FAILED] * len(batch)
        try:
            try:
                self._write([ticket.row for ticket in batch])
                states = [_COMMITTED] * len(batch)
            except Exception as error:
                if len(batch) == 1 or not _refused_row(error):
                    raise
                # SECURITY: one row the database refuses (a NUL, an over-long value) must
                # not cost the tokens of every request that shared its batch: each row alone.
                log.warning("idp.audit.group_commit_row_refused", exc_info=True)
                for index, ticket in enumerate(batch):
                    try:
                        self._write([ticket.row])
                        states[index] = _COMMITTED
                    except Exception as row_error:
                        if not _refused_row(row_error):
                            raise  # the database itself failed: the rest fail with it
        except Exception:  # the requests fall back to the path that reports the failure
            log.warning("idp.audit.group_commit_failed", exc_info=True)
        finally:
            for ticket, state in zip(batch, states, strict=True):
                ticket.state = state
                ticket.wake.set()
            self._hand_over()

    def _write(self, rows: list[dict[str, Any]]) -> None:
        direct = self._direct_writer(rows)
        if direct is not None:
            direct.write(self._engine, rows)
        else:
            with self._engine.begin() as connection:
                connection.execute(self._statement, rows)
        self.batches_committed += 1  # only the one leader writes it

    def _direct_writer(self, rows: list[dict[str, Any]]) -> _RecordsetWriter | None:
        """The writer for these rows on PostgreSQL with psycopg (rows of one shape, as
        ``event_row`` makes them), or None for the engine's path."""
        dialect = self._engine.dialect
        if dialect.name != "postgresql" or dialect.driver != "psycopg":
            return None
        if not isinstance(self._statement, Insert) or not isinstance(self._statement.table, Table):
            return None
        columns = frozenset(rows[0])
        if any(row.keys() != columns for row in rows):
            return None
        if self._direct is None or self._direct.columns != columns:
            if self._direct is not None:
                self._direct.close()
            self._direct = _RecordsetWriter(
                self._statement.table, columns, self._engine, timeout=self._timeout
            )
        return self._direct

    def _hand_over(self) -> None:
        with self._lock:
            if not self._queue:
                self._leading = False
                return
            successor = self._queue[0]
        successor.state = _LEAD
        successor.wake.set()


class _RecordsetWriter:
    """Batches of rows as one autocommitted ``INSERT ... SELECT ... FROM
    json_populate_recordset(...)`` on a connection held for this purpose (psycopg only): the
    batch travels as one JSON text made by ``json.dumps`` in C, where adapting one array per
    column cost psycopg more than the rest of the statement."""

    def __init__(
        self, table: Table, columns: frozenset[str], engine: Engine, *, timeout: float
    ) -> None:
        dialect = engine.dialect
        self.columns = columns
        self._timeout = timeout
        self._processors: list[tuple[str, Callable[[Any], Any]]] = []
        names = []
        selected = []
        preparer = dialect.identifier_preparer
        serialize = getattr(dialect, "_json_serializer", None) or json.dumps
        for column in table.columns:
            if column.name not in columns:
                continue
            names.append(column.name)
            if isinstance(column.type, JSON):
                # As a JSON string holding the engine's own text, not nested: PostgreSQL
                # unescapes nested strings while reading the recordset and refuses a \u0000
                # there that the json column itself keeps (the engine's INSERT stores it).
                self._processors.append((column.name, serialize))
                selected.append(
                    f"CAST(r.{preparer.quote(column.name)} #>> '{{}}'"
                    f" AS {column.type.compile(dialect=dialect)})"
                )
                continue
            selected.append(f"r.{preparer.quote(column.name)}")
            process = column.type.bind_processor(dialect)
            python_type = getattr(column.type, "impl", column.type).python_type
            if python_type is datetime:
                self._processors.append((column.name, _iso_after(process)))
            elif process is not None:
                self._processors.append((column.name, process))
        if len(names) != len(columns):
            raise ValueError(f"not columns of {table.name}: {sorted(columns - set(names))}")
        quoted = ", ".join(preparer.quote(name) for name in names)
        table_name = preparer.format_table(table)
        self._sql = (  # names from the table's metadata, quoted; the rows are a parameter
            f"INSERT INTO {table_name} ({quoted}) SELECT {', '.join(selected)}"  # noqa: S608
            f" FROM json_populate_recordset(NULL::{table_name}, %s::json) AS r"
        )
        self._engine: Engine | None = None
        self._connection: Any = None  # a psycopg connection of its own
        self._closer: weakref.finalize[Any, Any] | None = None
        self._warnings: list[str] = []

    def write(self, engine: Engine, rows: list[dict[str, Any]]) -> None:
        if self._connection is not None and self._engine is not engine:
            self.close()
        if self._connection is None:
            import psycopg

            # Not the pool's: a connection in autocommit mode must never serve a session.
            cargs, cparams = engine.dialect.create_connect_args(engine.url)
            params = {**cparams, **_bounded(self._timeout, cparams)}
            self._connection = psycopg.connect(*cargs, **params, autocommit=True)
            # The list, not this writer: the finalizer below holds the connection, which
            # must not hold the writer alive in turn.
            self._connection.add_notice_handler(functools.partial(_note, self._warnings))
            self._engine = engine
            # Closed, not left to the garbage collector, when the committer goes (a test's app).
            self._closer = weakref.finalize(self, self._connection.close)
        if self._processors:
            rows = [dict(row) for row in rows]
            for row in rows:
                for name, process in self._processors:
                    row[name] = process(row[name])
        try:
            self._warnings.clear()
            self._connection.execute(self._sql, (json.dumps(rows),), prepare=True)
            if self._warnings:
                # SECURITY: PostgreSQL reports success, with a warning, for a commit whose wait
                # for a synchronous standby was cancelled (here by statement_timeout): the row
                # may not survive a failover, so its tokens must not be answered.
                raise _NotDurableError(f"the server warned: {self._warnings[0]}")
        except Exception:
            # Whatever state the connection is in, the next batch starts on a fresh one.
            self.close()
            raise

    def close(self) -> None:
        closer, self._closer = self._closer, None
        self._connection = self._engine = None
        if closer is not None:
            try:
                closer()
            except Exception:
                log.debug("idp.audit.group_commit_close_failed", exc_info=True)


def _note(warnings: list[str], diagnostic: Any) -> None:
    if diagnostic.severity_nonlocalized not in {"NOTICE", "INFO", "LOG", "DEBUG"}:
        warnings.append(f"{diagnostic.severity}: {diagnostic.message_primary}")


class _NotDurableError(Exception):
    """The statement succeeded but the server said its commit may not last."""


def _bounded(timeout: float, cparams: Mapping[str, Any]) -> dict[str, Any]:
    """libpq parameters that keep a batch from waiting forever: on a server that accepts
    and never answers (connect_timeout), a statement that waits (statement_timeout, on the
    server), a peer gone without a word (keepalives, tcp_user_timeout). The URL's own
    values win, except that the statement timeout is added to its options."""
    seconds = max(2, math.ceil(timeout))  # libpq's smallest connect_timeout
    millis = max(1, int(timeout * 1000))
    options = f"{cparams.get('options', '')} -c statement_timeout={millis}".strip()
    bounded: dict[str, Any] = {
        "connect_timeout": seconds,
        "keepalives": 1,
        "keepalives_idle": seconds,
        "keepalives_interval": 1,
        "keepalives_count": 3,
        "tcp_user_timeout": millis,
    }
    return {**bounded, **{k: v for k, v in cparams.items() if k in bounded}, "options": options}


def _refused_row(error: BaseException) -> bool:
    """The database (or the JSON encoder) refused a row's values, not the connection: a
    data exception (SQLSTATE class 22) or an integrity violation (23)."""
    if isinstance(error, (TypeError, ValueError)):
        return True
    original = getattr(error, "orig", None)  # SQLAlchemy's wrapper around the driver's
    if original is not None and original is not error:
        return _refused_row(original)
    sqlstate = getattr(error, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] in {"22", "23"}


def _iso_after(process: Callable[[Any], Any] | None) -> Callable[[Any], Any]:
    def iso(value: Any) -> Any:
        if process is not None:
            value = process(value)
        return None if value is None else value.isoformat()

    return iso
