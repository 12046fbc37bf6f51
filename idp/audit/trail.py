"""Reading the audit trail for internal audit (ข้อ ๘ of the Soft Token letter): filters by
who, what, when and unit, a reader limited to some units, and an export that a spreadsheet
opens without running anything."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy import Select
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.audit.models import AuditEvent

PAGE_SIZE = 100
EXPORT_LIMIT = 100_000
CSV_COLUMNS = (
    "id",
    "seq",
    "occurred_at",
    "occurred_at_thai",
    "event",
    "description",
    "outcome",
    "actor",
    "actor_name",
    "client_id",
    "client_ip",
    "request_id",
    "details",
    "chain_hash",
)
# OWASP CSV injection: a cell starting with one of these is a formula to a spreadsheet.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Units:
    """Some units and the ``sub`` of their people (a SELECT), for what an event is about."""

    codes: frozenset[str]
    people: Select[str]


@dataclass(frozen=True)
class TrailFilter:
    who: str | None = None  # a ``sub``: who acted, or whom the event is about
    event: str | None = None  # an event name, or a family of them ending with "."
    since: datetime | None = None
    until: datetime | None = None  # exclusive
    unit: Units | None = None
    before_id: int | None = None  # paging: events older than this one


def _about(units: Units) -> ColumnElement[bool]:
    """An event concerns the units: it names one of them, or one of their people acted or
    is its subject."""
    return or_(
        AuditEvent.details["unit"].as_string().in_(units.codes),
        AuditEvent.actor.in_(units.people),
        AuditEvent.details["user"].as_string().in_(units.people),
    )


def _query(flt: TrailFilter, scope: Units | None) -> Select[AuditEvent]:
    query = select(AuditEvent)
    # SECURITY: a reader limited to some units never sees another unit's events.
    if scope is not None:
        query = query.where(_about(scope))
    if flt.unit is not None:
        query = query.where(_about(flt.unit))
    if flt.who:
        query = query.where(
            or_(AuditEvent.actor == flt.who, AuditEvent.details["user"].as_string() == flt.who)
        )
    if flt.event:
        if flt.event.endswith("."):
            query = query.where(AuditEvent.event.startswith(flt.event, autoescape=True))
        else:
            query = query.where(AuditEvent.event == flt.event)
    if flt.since is not None:
        query = query.where(AuditEvent.occurred_at >= flt.since)
    if flt.until is not None:
        query = query.where(AuditEvent.occurred_at < flt.until)
    if flt.before_id is not None:
        query = query.where(AuditEvent.id < flt.before_id)
    return query.order_by(AuditEvent.id.desc())


def read_events(
    db: Session, flt: TrailFilter, *, scope: Units | None, limit: int = PAGE_SIZE
) -> list[AuditEvent]:
    """The newest events matching ``flt`` within ``scope`` (None: every unit)."""
    return list(db.scalars(_query(flt, scope).limit(limit)))


def export_csv(
    db: Session,
    flt: TrailFilter,
    *,
    scope: Units | None,
    describe: Callable[[str], str],
    name_of: Callable[[str | None], str],
    thai_time: Callable[[datetime], str],
) -> Iterator[str]:
    """The matching events as CSV (UTF-8 with a byte-order mark, which Thai Excel needs),
    newest first, a chunk at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow(CSV_COLUMNS)
    yield "\ufeff" + flush()
    rows = db.scalars(_query(flt, scope).limit(EXPORT_LIMIT).execution_options(yield_per=500))
    for count, row in enumerate(rows, start=1):
        writer.writerow(
            [
                _cell(value)
                for value in (
                    row.id,
                    row.seq,
                    row.occurred_at.isoformat(),
                    thai_time(row.occurred_at),
                    row.event,
                    describe(row.event),
                    row.outcome,
                    row.actor,
                    name_of(row.actor),
                    row.client_id,
                    row.client_ip,
                    row.request_id,
                    json.dumps(row.details, ensure_ascii=False, sort_keys=True),
                    row.chain_hash,
                )
            ]
        )
        if count % 500 == 0:
            yield flush()
    yield flush()


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
