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
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

from sqlalchemy import Engine
from sqlalchemy import Executable

log = logging.getLogger(__name__)

_WAITING, _LEAD, _COMMITTED, _FAILED = range(4)


class _Ticket:
    __slots__ = ("row", "state", "wake")

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row
        self.state = _WAITING
        self.wake = threading.Event()


class GroupCommit:
    """Commit rows of one INSERT statement in batches; ``append`` returns once durable."""

    def __init__(self, engine: Engine, statement: Executable, *, max_batch: int = 256) -> None:
        self._engine = engine
        self._statement = statement
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: deque[_Ticket] = deque()
        # Invariant: the queue is empty whenever nobody leads (the last leader hands over or
        # clears this under the lock), so a request that finds no leader leads its own row.
        self._leading = False
        self.batches_committed = 0

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
        state = _FAILED
        try:
            with self._engine.begin() as connection:
                connection.execute(self._statement, [ticket.row for ticket in batch])
            state = _COMMITTED
            self.batches_committed += 1  # only the one leader writes it
        except Exception:  # the requests fall back to the path that reports the failure
            log.warning("idp.audit.group_commit_failed", exc_info=True)
        finally:
            for ticket in batch:
                ticket.state = state
                ticket.wake.set()
            self._hand_over()

    def _hand_over(self) -> None:
        with self._lock:
            if not self._queue:
                self._leading = False
                return
            successor = self._queue[0]
        successor.state = _LEAD
        successor.wake.set()
