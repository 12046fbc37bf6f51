"""Designation requests: the head of a unit asks, with the written order attached; the
responsible treasury office or CGD decides. Only an approved request changes assignments, in
one transaction, and separation of duties is checked when asked and again when approved."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts.models import User
from idp.accounts.service import get_user_by_username
from idp.accounts.service import require_password_change
from idp.audit.service import AuditContext
from idp.audit.service import record
from idp.roles.authority import Authority
from idp.roles.errors import AlreadyDecidedError
from idp.roles.errors import InvalidOrderError
from idp.roles.errors import InvalidPeriodError
from idp.roles.errors import OverlappingDesignationError
from idp.roles.errors import OwnRequestError
from idp.roles.errors import ReasonRequiredError
from idp.roles.errors import SeparationOfDutiesError
from idp.roles.errors import SubstituteError
from idp.roles.errors import UnknownPersonError
from idp.roles.errors import UnknownRequestError
from idp.roles.errors import UnknownRoleError
from idp.roles.models import DesignationRequest
from idp.roles.models import OrderFile
from idp.roles.models import RequestStatus
from idp.roles.models import Role
from idp.roles.models import RoleAssignment
from idp.roles.models import Unit
from idp.roles.orders import OrderDocument
from idp.roles.periods import Period
from idp.roles.periods import thai_date
from idp.roles.queries import readable_request
from idp.roles.separation import Holding
from idp.roles.separation import conflict
from idp.roles.separation import exclusive_pairs
from idp.roles.units import get_unit
from idp.store.db import one_writer_at_a_time
from idp.text import is_plain

_MAX_NOTE = 2000


@dataclass(frozen=True)
class Designation:
    """What the head of unit asks for, as typed (usernames, not ids)."""

    unit_code: str
    username: str
    role: str
    valid_from: date
    valid_until: date | None
    order_number: str
    order_date: date
    substitute_for: str | None = None  # username of the person acted for
    note: str = ""


def submit_request(
    session: Session,
    by: Authority,
    designation: Designation,
    order: OrderDocument,
    *,
    submitter: User,
    now: datetime,
    audit: AuditContext,
) -> DesignationRequest:
    """Record a designation request with its order.

    Raises:
        RoleError (each subclass says what is wrong)
    """
    unit = get_unit(session, designation.unit_code)
    by.require(by.may_designate(unit))
    role = _role(designation.role)
    period = _period(designation.valid_from, designation.valid_until)
    order_number = designation.order_number.strip()
    if (
        not order_number
        or not is_plain(order_number, limit=64)
        or designation.order_date > thai_date(now)
    ):
        raise InvalidOrderError()
    person = _person(session, designation.username)
    absent = _person(session, designation.substitute_for) if designation.substitute_for else None
    _check_designation(session, unit, person, role, period, absent)
    request = DesignationRequest(
        unit_code=unit.code,
        user_id=person.id,
        role=role,
        valid_from=period.start,
        valid_until=period.end,
        substitute_for=absent.id if absent else None,
        order_number=order_number,
        order_date=designation.order_date,
        order_filename=order.filename,
        order_media_type=order.media_type,
        order_size=order.size,
        order_sha256=order.sha256,
        note=_note(designation.note),
        status=RequestStatus.PENDING,
        submitted_by=submitter.id,
        submitted_at=now,
    )
    session.add(request)
    session.flush()
    session.add(OrderFile(request_id=request.id, content=order.content))
    record(session, "roles.designation_submitted", now=now, actor=submitter.sub, context=audit,
           request=request.id, **_what(request, person, absent))  # fmt: skip
    return request


def approve_request(
    session: Session,
    by: Authority,
    request_id: str,
    *,
    decider: User,
    reason: str,
    now: datetime,
    audit: AuditContext,
) -> RoleAssignment:
    """Turn a pending request into an assignment, checking every rule again under a lock of
    the unit, so two approvals racing in one unit run one after the other.

    Raises:
        RoleError (each subclass says what is wrong)
    """
    request, unit = _pending_for_decision(session, by, request_id, decider)
    if not reason.strip():
        raise ReasonRequiredError()
    person = session.get(User, request.user_id)
    absent = session.get(User, request.substitute_for) if request.substitute_for else None
    if person is None:
        raise UnknownPersonError()
    period = Period(request.valid_from, request.valid_until)
    _check_designation(session, unit, person, request.role, period, absent)
    assignment = RoleAssignment(
        user_id=person.id,
        unit_code=unit.code,
        role=request.role,
        valid_from=period.start,
        valid_until=period.end,
        substitute_for=request.substitute_for,
        request_id=request.id,
        created_at=now,
    )
    session.add(assignment)
    _decide(request, RequestStatus.APPROVED, decider=decider, reason=reason, now=now)
    session.flush()
    record(session, "roles.designation_approved", now=now, actor=decider.sub, context=audit,
           request=request.id, assignment=assignment.id, reason=request.decision_reason,
           **_what(request, person, absent))  # fmt: skip
    # The Ministry's rule: a new password right after a role change is approved.
    require_password_change(session, person, reason="role_changed", now=now, actor=decider.sub,
                            context=audit)  # fmt: skip
    return assignment


def reject_request(
    session: Session,
    by: Authority,
    request_id: str,
    *,
    decider: User,
    reason: str,
    now: datetime,
    audit: AuditContext,
) -> DesignationRequest:
    """Raises RoleError (ReasonRequiredError without a reason)."""
    request, _ = _pending_for_decision(session, by, request_id, decider)
    if not reason.strip():
        raise ReasonRequiredError()
    _decide(request, RequestStatus.REJECTED, decider=decider, reason=reason, now=now)
    person = session.get(User, request.user_id)
    absent = session.get(User, request.substitute_for) if request.substitute_for else None
    record(session, "roles.designation_rejected", now=now, actor=decider.sub, context=audit,
           request=request.id, reason=request.decision_reason,
           **_what(request, person, absent))  # fmt: skip
    return request


def assign_directly(
    session: Session,
    *,
    unit_code: str,
    user: User,
    role: str,
    valid_from: date,
    now: datetime,
    actor: str,
    reason: str,
    audit: AuditContext,
    substitute_for: User | None = None,
) -> RoleAssignment:
    """An assignment without a request (seeding a demo, migrating from the legacy system);
    the same rules hold, for a substitute too (``substitute_for``, the person acted for).

    Raises:
        RoleError
    """
    one_writer_at_a_time(session)
    unit = _locked_unit(session, unit_code)
    period = Period(valid_from, None)
    _check_designation(session, unit, user, _role(role), period, substitute_for)
    assignment = RoleAssignment(
        user_id=user.id, unit_code=unit.code, role=role, valid_from=valid_from,
        valid_until=None, created_at=now,
        substitute_for=substitute_for.id if substitute_for else None,
    )  # fmt: skip
    session.add(assignment)
    session.flush()
    record(session, "roles.assigned", now=now, actor=actor, context=audit, user=user.sub,
           unit=unit.code, role=role, valid_from=valid_from.isoformat(), reason=reason,
           **({"substitute_for": substitute_for.sub} if substitute_for else {}))  # fmt: skip
    return assignment


def order_file(session: Session, request_id: str) -> bytes | None:
    row = session.get(OrderFile, request_id)
    return row.content if row else None


# --- the rules ------------------------------------------------------------------------------


def _check_designation(
    session: Session,
    unit: Unit,
    person: User,
    role: str,
    period: Period,
    absent: User | None,
) -> None:
    """The rules a designation must keep against the assignments in force now or later."""
    if absent is not None:
        if absent.id == person.id:
            raise SubstituteError()
        # One acts for someone who holds the role themselves (not as a substitute) for the
        # whole period of acting.
        covers = [
            Period(a.valid_from, a.valid_until)
            for a in _assignments(session, absent.id, unit.code)
            if a.role == role and a.substitute_for is None
        ]
        if not any(period.within(p) for p in covers):
            raise SubstituteError()
    held = _assignments(session, person.id, unit.code)
    for assignment in held:
        if assignment.role == role and Period(
            assignment.valid_from, assignment.valid_until
        ).overlaps(period):
            raise OverlappingDesignationError()
    holdings = [Holding(a.role, Period(a.valid_from, a.valid_until)) for a in held]
    pair = conflict(holdings, Holding(role, period), exclusive_pairs(session))
    if pair is not None:
        raise SeparationOfDutiesError(pair)


def _assignments(session: Session, user_id: str, unit_code: str) -> list[RoleAssignment]:
    """Assignments not ended (in force now, or starting later) of one person in one unit."""
    return list(
        session.scalars(
            select(RoleAssignment).where(
                RoleAssignment.user_id == user_id,
                RoleAssignment.unit_code == unit_code,
                RoleAssignment.ended_at.is_(None),
            )
        )
    )


def _pending_for_decision(
    session: Session, by: Authority, request_id: str, decider: User
) -> tuple[DesignationRequest, Unit]:
    # Who may decide is settled before anything is locked.
    _, remit = readable_request(session, by, request_id)
    by.require(by.may_manage(remit))
    one_writer_at_a_time(session)
    # SECURITY: the request row first (a stale second decision waits, then sees it decided),
    # then the unit (every change of assignments in a unit runs one after another).
    # populate_existing: the row as it is once locked, not as it was read a moment ago.
    request = session.scalar(
        select(DesignationRequest)
        .where(DesignationRequest.id == request_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if request is None:
        raise UnknownRequestError()
    unit = _locked_unit(session, request.unit_code)
    if decider.id in (request.submitted_by, request.user_id, request.substitute_for):
        raise OwnRequestError()
    if request.status != RequestStatus.PENDING:
        raise AlreadyDecidedError()
    return request, unit


def _note(text: str) -> str:
    return "".join(c for c in text.strip() if c.isprintable() or c in "\n\t")[:_MAX_NOTE]


def _decide(
    request: DesignationRequest, status: RequestStatus, *, decider: User, reason: str,
    now: datetime,
) -> None:  # fmt: skip
    request.status = status
    request.decided_by = decider.id
    request.decided_at = now
    request.decision_reason = _note(reason)


def _locked_unit(session: Session, code: str) -> Unit:
    unit = session.scalar(
        select(Unit)
        .where(Unit.code == code)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if unit is None:
        return get_unit(session, code)  # raises UnknownUnitError
    return unit


def _role(value: str) -> str:
    try:
        return Role(value).value
    except ValueError as exc:
        raise UnknownRoleError() from exc


def _period(start: date, end: date | None) -> Period:
    if end is not None and end < start:
        raise InvalidPeriodError()
    return Period(start, end)


def _person(session: Session, username: str) -> User:
    user = get_user_by_username(session, username) if is_plain(username, limit=64) else None
    if user is None:
        raise UnknownPersonError()
    return user


def _what(request: DesignationRequest, person: User | None, absent: User | None) -> dict[str, Any]:
    """Who and what, for the audit trail: enough to rebuild the decision without the file."""
    return {
        "user": person.sub if person else None,
        "unit": request.unit_code,
        "role": request.role,
        "valid_from": request.valid_from.isoformat(),
        "valid_until": request.valid_until.isoformat() if request.valid_until else None,
        "substitute_for": absent.sub if absent else None,
        "order_number": request.order_number,
        "order_sha256": request.order_sha256,
    }
