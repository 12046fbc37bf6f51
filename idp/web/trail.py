"""The audit trail for internal audit (ข้อ ๘ of the Soft Token letter): a page and a CSV
export with filters (who, what, when, unit) and the hash chain's verification status. CGD and
auditors read it; an auditor scoped to units or a province reads only their units' events."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any

from flask import Blueprint
from flask import Response
from flask import request
from flask import stream_with_context
from flask_babel import get_locale
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as BaseResponse

from idp.accounts.models import User
from idp.accounts.service import get_user_by_username
from idp.audit.models import AuditEvent
from idp.audit.service import ChainReport
from idp.audit.service import record
from idp.audit.service import verify_chain
from idp.audit.trail import PAGE_SIZE
from idp.audit.trail import TrailFilter
from idp.audit.trail import Units
from idp.audit.trail import export_csv
from idp.audit.trail import read_events
from idp.errors import IdpError
from idp.roles.authority import Authority
from idp.roles.queries import trail_scope
from idp.roles.queries import units_for
from idp.roles.queries import units_with_people
from idp.text import is_plain
from idp.web import context
from idp.web.console import answer_refusals
from idp.web.console import page
from idp.web.console import staff
from idp.web.event_texts import EVENT_FAMILIES
from idp.web.event_texts import EVENT_LABELS
from idp.web.event_texts import event_text
from thai_format import BANGKOK
from thai_format import format_datetime
from thai_format import parse_date

bp = Blueprint("trail", __name__)
answer_refusals(bp)

# Matches nobody: an unknown username filters to no event rather than to every event.
_NOBODY = "-"


class InvalidFilterError(IdpError):
    code = "invalid_filter"
    message = "Give dates as day/month/year (Buddhist era) or YYYY-MM-DD, and a known event."


@dataclass(frozen=True)
class TrailRequest:
    """A reader's question to the trail, as the page and the API both ask it."""

    filter: TrailFilter
    scope: Units | None


def trail_request(db: Session, authority: Authority, args: MultiDict[str, str]) -> TrailRequest:
    """Filters from query parameters ``who`` (username), ``event`` (a code, or a family such
    as ``roles.``), ``from`` and ``to`` (dates, Thai time, both days included), ``unit`` and
    ``before`` (paging).

    Raises:
        InvalidFilterError
    """
    who = args.get("who", "").strip()
    person = get_user_by_username(db, who) if who and is_plain(who, limit=64) else None
    event = args.get("event", "").strip()
    if event and event not in EVENT_LABELS and event not in EVENT_FAMILIES:
        raise InvalidFilterError()
    unit = args.get("unit", "").strip()
    before = args.get("before", "").strip()
    if before and not before.isdigit():
        raise InvalidFilterError()
    flt = TrailFilter(
        who=(person.sub if person else _NOBODY) if who else None,
        event=event or None,
        since=_day_start(args.get("from"), 0),
        until=_day_start(args.get("to"), 1),
        unit=units_with_people(frozenset({unit})) if unit else None,
        before_id=int(before) if before else None,
    )
    return TrailRequest(flt, trail_scope(db, authority))


def _day_start(value: str | None, days_after: int) -> datetime | None:
    if not value or not value.strip():
        return None
    try:
        day = parse_date(value)
    except ValueError as exc:
        raise InvalidFilterError() from exc
    return datetime.combine(day + timedelta(days=days_after), time(0), BANGKOK)


def names_by_sub(db: Session, events: list[AuditEvent], locale: str) -> dict[str, str]:
    """Who acted and whom each event is about, by name: pages show people, not ids."""
    subs = {e.actor for e in events if e.actor} | {
        str(e.details["user"]) for e in events if isinstance(e.details.get("user"), str)
    }
    people = list(db.scalars(select(User).where(User.sub.in_(subs)))) if subs else []
    return {u.sub: f"{u.display_name(locale)} ({u.username})" for u in people}


def stream_export(req: TrailRequest, locale: str) -> Iterator[str]:
    """The CSV, read in a session of its own: the request's is closed before the body is
    sent."""
    with context.deps().sessions() as db:
        names: dict[str | None, str] = {None: ""}

        def name_of(sub: str | None) -> str:
            if sub not in names:
                user = db.scalar(select(User).where(User.sub == sub))
                names[sub] = user.display_name(locale) if user else ""
            return names[sub]

        yield from export_csv(
            db,
            req.filter,
            scope=req.scope,
            describe=lambda code: str(event_text(code)),
            name_of=name_of,
            thai_time=lambda moment: format_datetime(moment, "th"),
        )


def record_export(db: Session, actor: str | None, req: TrailRequest) -> None:
    """Reading the trail in bulk is itself a security event."""
    flt = req.filter
    record(
        db,
        "audit.trail_exported",
        now=context.now(),
        actor=actor,
        context=context.audit_context(),
        who=flt.who,
        what=flt.event,
        since=flt.since.isoformat() if flt.since else None,
        until=flt.until.isoformat() if flt.until else None,
        unit=sorted(flt.unit.codes)[0] if flt.unit else None,
        scope=sorted(req.scope.codes) if req.scope is not None else "all",
    )


def csv_response(body: Iterator[str]) -> Response:
    stamp = format(context.now().astimezone(BANGKOK), "%Y%m%d-%H%M")
    return Response(
        stream_with_context(body),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="audit-trail-{stamp}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def chain_status(db: Session) -> ChainReport:
    return verify_chain(db)


def _reader() -> tuple[User, Authority]:
    return staff(lambda authority: authority.may_read_trail())


@bp.get("/admin/audit")
def events() -> BaseResponse:
    _, authority = _reader()
    db = context.db()
    locale = str(get_locale())
    units = units_for(db, authority)
    try:
        req = trail_request(db, authority, request.args)
    except InvalidFilterError:
        return page(
            "audit_trail.html",
            400,
            events=[],
            names={},
            chain=chain_status(db),
            units=units,
            form=request.args,
            families=EVENT_FAMILIES,
            labels=EVENT_LABELS,
            error=True,
            next_before=None,
        )
    found = read_events(db, req.filter, scope=req.scope)
    return page(
        "audit_trail.html",
        events=found,
        names=names_by_sub(db, found, locale),
        chain=chain_status(db),
        units=units,
        form=request.args,
        families=EVENT_FAMILIES,
        labels=EVENT_LABELS,
        error=False,
        next_before=found[-1].id if len(found) == PAGE_SIZE else None,
        scoped=req.scope is not None,
    )


@bp.get("/admin/audit/export.csv")
def export() -> BaseResponse:
    user, authority = _reader()
    db = context.db()
    try:
        req = trail_request(db, authority, request.args)
    except InvalidFilterError:
        return page("error.html", 400, code="invalid_request", description=None)
    record_export(db, user.sub, req)
    return csv_response(stream_export(req, str(get_locale())))


def template_words() -> dict[str, Callable[..., Any]]:
    return {"event_text": event_text}


bp.app_context_processor(template_words)
