"""What an administrator sees: the units in their remit and the requests they may read or
decide."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts.models import User
from idp.audit.trail import Units
from idp.roles.authority import Authority
from idp.roles.errors import UnknownRequestError
from idp.roles.models import DesignationRequest
from idp.roles.models import RequestStatus
from idp.roles.models import RoleAssignment
from idp.roles.models import Unit

_LIST_LIMIT = 200
_REQUEST_ID = re.compile(r"[0-9a-f]{32}")


def readable_request(
    db: Session, authority: Authority, request_id: str
) -> tuple[DesignationRequest, Unit]:
    """A request and its unit, if the reader's remit covers it: outside it, a request is as
    unknown as one that does not exist.

    Raises:
        UnknownRequestError
    """
    found = db.get(DesignationRequest, request_id) if _REQUEST_ID.fullmatch(request_id) else None
    unit = db.get(Unit, found.unit_code) if found else None
    if found is None or unit is None or not authority.may_read(unit):
        raise UnknownRequestError()
    return found, unit


def units_for(db: Session, authority: Authority) -> list[Unit]:
    """The units an administrator may read, by code."""
    query = select(Unit).order_by(Unit.code)
    if not authority.may_read_everything():
        query = query.where(
            Unit.province.in_(authority.provinces | authority.audited_provinces)
            | Unit.code.in_(authority.units | authority.audited_units)
        )
    return list(db.scalars(query))


def readable_requests(db: Session, authority: Authority) -> list[DesignationRequest]:
    """The latest requests of the units an administrator may read, newest first."""
    query = (
        select(DesignationRequest)
        .order_by(DesignationRequest.submitted_at.desc())
        .limit(_LIST_LIMIT)
    )
    if not authority.may_read_everything():
        codes = [u.code for u in units_for(db, authority)]
        query = query.where(DesignationRequest.unit_code.in_(codes))
    return list(db.scalars(query))


def decidable_requests(db: Session, authority: Authority) -> list[DesignationRequest]:
    """Pending requests this administrator may decide (never their own or about themselves),
    oldest first: the approval queue."""
    managed = [u.code for u in units_for(db, authority) if authority.may_manage(u)]
    if not managed:
        return []
    rows = db.scalars(
        select(DesignationRequest)
        .where(
            DesignationRequest.status == RequestStatus.PENDING,
            DesignationRequest.unit_code.in_(managed),
        )
        .order_by(DesignationRequest.submitted_at)
        .limit(_LIST_LIMIT)
    )
    me = authority.user_id
    return [r for r in rows if me not in (r.submitted_by, r.user_id, r.substitute_for)]


def units_with_people(codes: frozenset[str]) -> Units:
    """Units and their people: those issued to them and those who ever held a role there."""
    holders = select(RoleAssignment.user_id).where(RoleAssignment.unit_code.in_(codes))
    people = select(User.sub).where(User.unit_code.in_(codes) | User.id.in_(holders))
    return Units(codes=codes, people=people)


def trail_scope(db: Session, authority: Authority) -> Units | None:
    """What of the audit trail a reader sees: everything (None), or their units' events."""
    if authority.may_read_everything():
        return None
    return units_with_people(frozenset(u.code for u in units_for(db, authority)))
