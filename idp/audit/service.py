"""Record security events, seal them into a hash chain, and verify the chain.

Events are inserted in the same transaction as the change they describe, so an event exists
exactly when its change does. Linking each row to the previous one at insert time would make
every writer (the token endpoint included) queue on one lock, so a sealer links committed rows
shortly afterwards instead, in one process at a time, as transparency logs do. ``seq`` is the
position in the chain; rows are never changed after sealing (a database trigger refuses it).

A chain proves nothing about its own end: whoever can write the table could drop its tail or
re-hash it from some point on. So every seal logs the new head (``idp.audit.sealed`` with its
``seq`` and ``chain_hash``) to the log stream, which lives elsewhere, and ``idp audit verify
--anchor SEQ:HASH`` checks the table against heads recorded there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import cast

from sqlalchemy import Table
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from idp.audit.catalogue import EventName
from idp.audit.models import AuditEvent
from idp.store.db import is_postgresql

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
# pg_advisory_xact_lock key: one sealer at a time across every IdP instance.
_SEAL_LOCK_KEY = 0x1D_A0D17


@dataclass(frozen=True)
class AuditContext:
    """Where a request came from, handed down by the web layer."""

    client_ip: str | None = None
    request_id: str | None = None
    user_agent: str | None = None
    # The client a request came through (an integration acting for a member of staff).
    client_id: str | None = None


NO_CONTEXT = AuditContext()
CLIENT_IP_MAX = 64  # the column's length (AuditEvent.client_ip)
INSERT_EVENT = insert(cast(Table, AuditEvent.__table__))


def record(
    db: Session,
    event: EventName,
    *,
    now: datetime,
    outcome: str = "success",
    actor: str | None = None,
    client_id: str | None = None,
    context: AuditContext = NO_CONTEXT,
    **details: Any,
) -> None:
    """Add a security event to the trail in the caller's transaction."""
    # One prepared Core INSERT, not the ORM's unit of work: this runs on every token request
    # and the ORM path cost more than signing the token.
    db.connection().execute(
        INSERT_EVENT,
        event_row(
            event,
            now=now,
            outcome=outcome,
            actor=actor,
            client_id=client_id,
            context=context,
            **details,
        ),
    )


def event_row(
    event: str,
    *,
    now: datetime,
    outcome: str = "success",
    actor: str | None = None,
    client_id: str | None = None,
    context: AuditContext = NO_CONTEXT,
    **details: Any,
) -> dict[str, Any]:
    """The parameters of ``INSERT_EVENT`` for one event: what ``record`` writes, for writers
    that commit events themselves (``idp.audit.group_commit``)."""
    return {
        "occurred_at": now,
        "event": event,
        "outcome": outcome,
        "actor": actor,
        "client_id": client_id or context.client_id,
        # An address a trusted proxy passed on is whatever its caller wrote: kept, cut to the
        # column, so that no caller's header can make its own audit row fail.
        "client_ip": context.client_ip[:CLIENT_IP_MAX] if context.client_ip else None,
        "request_id": context.request_id,
        "details": details,
    }


def link_hash(previous: str, row: Any, *, seq: int | None = None) -> str:
    """SHA-256 over the previous link and a canonical form of the row (an ``AuditEvent`` or a
    row of its columns), at ``seq`` when given (the sealer's, before it is written)."""
    body = {
        "seq": row.seq if seq is None else seq,
        "id": row.id,
        "occurred_at": row.occurred_at.isoformat(timespec="microseconds"),
        "event": row.event,
        "outcome": row.outcome,
        "actor": row.actor,
        "client_id": row.client_id,
        "client_ip": row.client_ip,
        "request_id": row.request_id,
        "details": row.details,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{previous}\n{canonical}".encode()).hexdigest()


def seal_pending(db: Session, *, limit: int = 5000) -> int:
    """Link committed but unsealed events onto the chain; return how many were sealed.

    The caller commits. On PostgreSQL a transaction-scoped advisory lock keeps one sealer at
    a time; a sealer that does not get it returns 0 and tries again later.
    """
    if is_postgresql(db):
        locked = db.execute(select(func.pg_try_advisory_xact_lock(_SEAL_LOCK_KEY))).scalar()
        if not locked:
            return 0
    last = db.execute(
        select(AuditEvent.seq, AuditEvent.chain_hash)
        .where(AuditEvent.seq.is_not(None))
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    seq: int = last[0] if last and last[0] is not None else 0
    previous: str = last[1] if last and last[1] is not None else GENESIS_HASH
    # Core rows and one UPDATE per batch, not ORM objects and their unit of work: the sealer
    # runs in the serving process and sealed one row per token at a third of the token's CPU.
    rows = db.execute(
        select(*_SEALED_COLUMNS)
        .where(AuditEvent.seq.is_(None))
        .order_by(AuditEvent.id)
        .limit(limit)
    ).all()
    links = []
    for row in rows:
        seq += 1
        previous = link_hash(previous, row, seq=seq)
        links.append({"id": row.id, "seq": seq, "chain_hash": previous})
    if links:
        _write_links(db, links)
    if rows:
        log.info("idp.audit.sealed", extra={"seq": seq, "chain_hash": previous, "count": len(rows)})
    return len(rows)


def _write_links(db: Session, links: list[dict[str, Any]]) -> None:
    """Set ``seq`` and ``chain_hash`` of each row: on PostgreSQL one UPDATE with the links as
    one JSON parameter, elsewhere one UPDATE per row (executemany)."""
    if is_postgresql(db):
        db.execute(_UPDATE_LINKS_PG, {"links": json.dumps(links)})
    else:
        table = cast(Table, AuditEvent.__table__)
        db.execute(
            update(table)
            .where(table.c.id == bindparam("link_id"))
            .values(seq=bindparam("link_seq"), chain_hash=bindparam("link_hash")),
            [
                {"link_id": x["id"], "link_seq": x["seq"], "link_hash": x["chain_hash"]}
                for x in links
            ],
        )


_SEALED_COLUMNS = (
    AuditEvent.id,
    AuditEvent.occurred_at,
    AuditEvent.event,
    AuditEvent.outcome,
    AuditEvent.actor,
    AuditEvent.client_id,
    AuditEvent.client_ip,
    AuditEvent.request_id,
    AuditEvent.details,
)
_UPDATE_LINKS_PG = text(
    "UPDATE audit_events SET seq = link.seq, chain_hash = link.chain_hash"
    " FROM json_to_recordset(CAST(:links AS json)) AS link(id bigint, seq bigint, chain_hash text)"
    " WHERE audit_events.id = link.id"
)


@dataclass(frozen=True)
class ChainReport:
    checked: int
    unsealed: int
    broken_at_seq: int | None
    reason: str | None
    head_seq: int = 0
    head_hash: str = GENESIS_HASH

    @property
    def is_intact(self) -> bool:
        return self.broken_at_seq is None


def verify_chain(
    db: Session, *, batch: int = 2000, anchors: dict[int, str] | None = None
) -> ChainReport:
    """Walk the sealed chain from the start and report the first broken link.

    ``anchors`` are heads recorded outside the database (seq to hash): each must be on the
    chain, which catches a dropped or re-hashed tail.
    """
    anchors = anchors or {}
    previous = GENESIS_HASH
    expected_seq = 1
    checked = 0
    while True:
        rows = db.scalars(
            select(AuditEvent)
            .where(AuditEvent.seq >= expected_seq)
            .order_by(AuditEvent.seq)
            .limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            if row.seq != expected_seq:
                return ChainReport(checked, _unsealed(db), expected_seq, "missing event")
            expected_hash = link_hash(previous, row)
            if row.chain_hash != expected_hash:
                return ChainReport(checked, _unsealed(db), expected_seq, "altered event")
            if anchors.get(expected_seq, expected_hash) != expected_hash:
                reason = "differs from a recorded anchor"
                return ChainReport(checked, _unsealed(db), expected_seq, reason)
            previous = expected_hash
            expected_seq += 1
            checked += 1
        db.expunge_all()
    beyond = [seq for seq in anchors if seq >= expected_seq]
    if beyond:
        reason = "shorter than a recorded anchor"
        return ChainReport(checked, _unsealed(db), min(beyond), reason)
    return ChainReport(checked, _unsealed(db), None, None, expected_seq - 1, previous)


def _unsealed(db: Session) -> int:
    return db.scalar(select(func.count()).where(AuditEvent.seq.is_(None))) or 0


class Sealer:
    """Seal the trail every ``interval`` seconds in a background thread."""

    def __init__(self, sessions: sessionmaker[Session], *, interval: float) -> None:
        self._sessions = sessions
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="idp-audit-sealer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def seal_now(self) -> int:
        with self._sessions() as db, db.begin():
            return seal_pending(db)

    def _run(self) -> None:
        run_periodically(self._stop, self._interval, self.seal_now, "idp.audit.seal_failed")


def run_periodically(
    stop: threading.Event, interval: float, work: Callable[[], object], failure_event: str
) -> None:
    while not stop.wait(interval):
        try:
            work()
        except Exception:  # a background job must outlive a database blip
            log.exception(failure_event)
