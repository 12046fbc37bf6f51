"""Designation requests: the head of a unit asks, with the written order attached; the
responsible treasury office or CGD decides. Only an approved request changes assignments, in
one transaction, and separation of duties is checked when asked and again when approved.

An order designates a person, ends a role from a day (the person left, retired or was
replaced), or changes one role for another: the old one ends the day before the new one
starts, in one approval, and separation of duties is checked on the result."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import date
from datetime import datetime
from datetime import timedelta
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
from idp.roles.errors import NothingToEndError
from idp.roles.errors import OverlappingDesignationError
from idp.roles.errors import OwnRequestError
from idp.roles.errors import ReasonRequiredError
from idp.roles.errors import SameRoleChangeError
from idp.roles.errors import SeparationOfDutiesError
from idp.roles.errors import SubstituteError
from idp.roles.errors import UnknownOrderKindError
from idp.roles.errors import UnknownPersonError
from idp.roles.errors import UnknownRequestError
from idp.roles.errors import UnknownRoleError
from idp.roles.models import DesignationRequest
from idp.roles.models import OrderFile
from idp.roles.models import OrderKind
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
    """What the head of unit asks for, as typed (usernames, not ids).

    For an order that ends a role, ``role`` is the role that ends and ``valid_from`` the first
    day without it; for a change, ``ends_role`` ends and ``role`` starts on ``valid_from``.
    """

    unit_code: str
    username: str
    role: str
    valid_from: date
    valid_until: date | None
    order_number: str
    order_date: date
    substitute_for: str | None = None  # username of the person acted for
    note: str = ""
    kind: str = OrderKind.DESIGNATE.value
    ends_role: str | None = None


@dataclass(frozen=True)
class Approval:
    """What an approved order did: the assignment it started (none for an end) and the
    assignments it ended or cut short."""

    assignment: RoleAssignment | None
    ended: list[RoleAssignment] = field(default_factory=list)


def submit_request(
    db: Session,
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
    unit = get_unit(db, designation.unit_code)
    by.require(by.may_designate(unit))
    kind = _kind(designation.kind)
    role = _role(designation.role)
    ends_role = None
    if kind == OrderKind.CHANGE:
        ends_role = _role(designation.ends_role or "")
        if ends_role == role:
            raise SameRoleChangeError()
    # An end has no period of its own: the role stops from ``valid_from`` on.
    until = None if kind == OrderKind.END else designation.valid_until
    period = _period(designation.valid_from, until)
    order_number = designation.order_number.strip()
    if (
        not order_number
        or not is_plain(order_number, limit=64)
        or designation.order_date > thai_date(now)
    ):
        raise InvalidOrderError()
    person = _person(db, designation.username)
    absent = (
        _person(db, designation.substitute_for)
        if designation.substitute_for and kind != OrderKind.END
        else None
    )
    _check_order(db, unit, person, kind, role, ends_role, period, absent, now=now)
    request = DesignationRequest(
        unit_code=unit.code,
        user_id=person.id,
        kind=kind,
        role=role,
        ends_role=ends_role,
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
    db.add(request)
    db.flush()
    db.add(OrderFile(request_id=request.id, content=order.content))
    record(
        db,
        "roles.designation_submitted",
        now=now,
        actor=submitter.sub,
        context=audit,
        request=request.id,
        **_what(request, person, absent),
    )
    return request


def approve_request(
    db: Session,
    by: Authority,
    request_id: str,
    *,
    decider: User,
    reason: str,
    now: datetime,
    audit: AuditContext,
) -> Approval:
    """Carry out a pending order (start, end or change a role), checking every rule again
    under a lock of the unit, so two approvals racing in one unit run one after the other.

    Raises:
        RoleError (each subclass says what is wrong)
    """
    request, unit = _pending_for_decision(db, by, request_id, decider)
    if not reason.strip():
        raise ReasonRequiredError()
    person = db.get(User, request.user_id)
    absent = db.get(User, request.substitute_for) if request.substitute_for else None
    if person is None:
        raise UnknownPersonError()
    kind = OrderKind(request.kind)
    period = Period(request.valid_from, request.valid_until)
    first_day = _effective(period.start, now) if kind != OrderKind.DESIGNATE else period.start
    ending = _check_order(
        db, unit, person, kind, request.role, request.ends_role, period, absent, now=now
    )
    why = f"{request.order_number} ({request.id})"
    ended = _end(ending, first_day, now=now, why=why) + _end(
        _acting_for(db, person, ending, first_day),
        first_day,
        now=now,
        why=f"{why}: {person.username} no longer holds the role",
    )
    assignment = None
    if kind != OrderKind.END:
        assignment = RoleAssignment(
            user_id=person.id,
            unit_code=unit.code,
            role=request.role,
            valid_from=first_day,
            valid_until=period.end,
            substitute_for=request.substitute_for,
            request_id=request.id,
            created_at=now,
        )
        db.add(assignment)
    _decide(request, RequestStatus.APPROVED, decider=decider, reason=reason, now=now)
    db.flush()
    record(
        db,
        "roles.designation_approved",
        now=now,
        actor=decider.sub,
        context=audit,
        request=request.id,
        assignment=assignment.id if assignment else None,
        ended=[a.id for a in ended],
        effective_from=first_day.isoformat(),
        reason=request.decision_reason,
        **_what(request, person, absent),
    )
    # The Ministry's rule: a new password right after a role change is approved.
    require_password_change(
        db, person, reason="role_changed", now=now, actor=decider.sub, context=audit
    )
    return Approval(assignment, ended)


def reject_request(
    db: Session,
    by: Authority,
    request_id: str,
    *,
    decider: User,
    reason: str,
    now: datetime,
    audit: AuditContext,
) -> DesignationRequest:
    """Raises RoleError (ReasonRequiredError without a reason)."""
    request, _ = _pending_for_decision(db, by, request_id, decider)
    if not reason.strip():
        raise ReasonRequiredError()
    _decide(request, RequestStatus.REJECTED, decider=decider, reason=reason, now=now)
    person = db.get(User, request.user_id)
    absent = db.get(User, request.substitute_for) if request.substitute_for else None
    record(
        db,
        "roles.designation_rejected",
        now=now,
        actor=decider.sub,
        context=audit,
        request=request.id,
        reason=request.decision_reason,
        **_what(request, person, absent),
    )
    return request


def assign_directly(
    db: Session,
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
    one_writer_at_a_time(db)
    unit = _locked_unit(db, unit_code)
    period = Period(valid_from, None)
    _check_designation(
        db,
        unit,
        user,
        _role(role),
        period,
        substitute_for,
        _assignments(db, user.id, unit.code),
    )
    assignment = RoleAssignment(
        user_id=user.id,
        unit_code=unit.code,
        role=role,
        valid_from=valid_from,
        valid_until=None,
        created_at=now,
        substitute_for=substitute_for.id if substitute_for else None,
    )
    db.add(assignment)
    db.flush()
    record(
        db,
        "roles.assigned",
        now=now,
        actor=actor,
        context=audit,
        user=user.sub,
        unit=unit.code,
        role=role,
        valid_from=valid_from.isoformat(),
        reason=reason,
        **({"substitute_for": substitute_for.sub} if substitute_for else {}),
    )
    return assignment


def order_file(db: Session, request_id: str) -> bytes | None:
    row = db.get(OrderFile, request_id)
    return row.content if row else None


# --- the rules ------------------------------------------------------------------------------


def _check_order(
    db: Session,
    unit: Unit,
    person: User,
    kind: OrderKind,
    role: str,
    ends_role: str | None,
    period: Period,
    absent: User | None,
    *,
    now: datetime,
) -> list[RoleAssignment]:
    """The rules an order must keep; return the assignments it would end or cut short."""
    held = _assignments(db, person.id, unit.code)
    if kind == OrderKind.DESIGNATE:
        _check_designation(db, unit, person, role, period, absent, held)
        return []
    first_day = _effective(period.start, now)
    if period.end is not None and period.end < first_day:
        raise InvalidPeriodError()
    stopping = role if kind == OrderKind.END else ends_role
    ending = [
        a
        for a in held
        if a.role == stopping and (a.valid_until is None or a.valid_until >= first_day)
    ]
    if not ending:
        raise NothingToEndError()
    if kind == OrderKind.CHANGE:
        # Separation of duties on the result: what is held once the old role has ended.
        after = [a for a in held if a not in ending] + [
            _cut(a, first_day) for a in ending if a.valid_from < first_day
        ]
        _check_designation(db, unit, person, role, Period(first_day, period.end), absent, after)
    return ending


def _effective(first_day: date, now: datetime) -> date:
    """The first day without the old role: the order's day, or today when that has passed
    (a day already gone was held; tokens were issued on it)."""
    return max(first_day, thai_date(now))


def _cut(assignment: RoleAssignment, first_day: date) -> RoleAssignment:
    """A detached copy of ``assignment`` ending the day before ``first_day``."""
    return RoleAssignment(
        user_id=assignment.user_id,
        unit_code=assignment.unit_code,
        role=assignment.role,
        valid_from=assignment.valid_from,
        valid_until=first_day - timedelta(days=1),
        substitute_for=assignment.substitute_for,
    )


def _acting_for(
    db: Session, person: User, ending: list[RoleAssignment], first_day: date
) -> list[RoleAssignment]:
    """The substitutes acting for ``person`` in a role of ``ending`` on or after ``first_day``:
    one acts for someone who holds the role, so their acting ends with it."""
    roles = {(a.unit_code, a.role) for a in ending if a.substitute_for is None}
    if not roles:
        return []
    acting = db.scalars(
        select(RoleAssignment).where(
            RoleAssignment.substitute_for == person.id, RoleAssignment.ended_at.is_(None)
        )
    )
    return [
        a
        for a in acting
        if (a.unit_code, a.role) in roles and (a.valid_until is None or a.valid_until >= first_day)
    ]


def _end(
    ending: list[RoleAssignment], first_day: date, *, now: datetime, why: str
) -> list[RoleAssignment]:
    """Cut each assignment short the day before ``first_day``; one not yet begun by then
    never takes effect (``ended_at``). Nothing is deleted."""
    for assignment in ending:
        if assignment.valid_from >= first_day:
            assignment.ended_at = now
        else:
            assignment.valid_until = first_day - timedelta(days=1)
        assignment.end_reason = f"order {why}"
    return ending


def _check_designation(
    db: Session,
    unit: Unit,
    person: User,
    role: str,
    period: Period,
    absent: User | None,
    held: list[RoleAssignment],
) -> None:
    """The rules a designation must keep against ``held``, the person's assignments in the
    unit in force now or later."""
    if absent is not None:
        if absent.id == person.id:
            raise SubstituteError()
        # One acts for someone who holds the role themselves (not as a substitute) for the
        # whole period of acting.
        covers = [
            Period(a.valid_from, a.valid_until)
            for a in _assignments(db, absent.id, unit.code)
            if a.role == role and a.substitute_for is None
        ]
        if not any(period.within(p) for p in covers):
            raise SubstituteError()
    for assignment in held:
        if assignment.role == role and Period(
            assignment.valid_from, assignment.valid_until
        ).overlaps(period):
            raise OverlappingDesignationError()
    holdings = [Holding(a.role, Period(a.valid_from, a.valid_until)) for a in held]
    pair = conflict(holdings, Holding(role, period), exclusive_pairs(db))
    if pair is not None:
        raise SeparationOfDutiesError(pair)


def _assignments(db: Session, user_id: str, unit_code: str) -> list[RoleAssignment]:
    """Assignments not ended (in force now, or starting later) of one person in one unit."""
    return list(
        db.scalars(
            select(RoleAssignment).where(
                RoleAssignment.user_id == user_id,
                RoleAssignment.unit_code == unit_code,
                RoleAssignment.ended_at.is_(None),
            )
        )
    )


def _pending_for_decision(
    db: Session, by: Authority, request_id: str, decider: User
) -> tuple[DesignationRequest, Unit]:
    # Who may decide is settled before anything is locked.
    _, remit = readable_request(db, by, request_id)
    by.require(by.may_manage(remit))
    one_writer_at_a_time(db)
    # SECURITY: the request row first (a stale second decision waits, then sees it decided),
    # then the unit (every change of assignments in a unit runs one after another).
    # populate_existing: the row as it is once locked, not as it was read a moment ago.
    request = db.scalar(
        select(DesignationRequest)
        .where(DesignationRequest.id == request_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if request is None:
        raise UnknownRequestError()
    unit = _locked_unit(db, request.unit_code)
    if decider.id in (request.submitted_by, request.user_id, request.substitute_for):
        raise OwnRequestError()
    if request.status != RequestStatus.PENDING:
        raise AlreadyDecidedError()
    return request, unit


def _note(text: str) -> str:
    return "".join(c for c in text.strip() if c.isprintable() or c in "\n\t")[:_MAX_NOTE]


def _decide(
    request: DesignationRequest,
    status: RequestStatus,
    *,
    decider: User,
    reason: str,
    now: datetime,
) -> None:
    request.status = status
    request.decided_by = decider.id
    request.decided_at = now
    request.decision_reason = _note(reason)


def _locked_unit(db: Session, code: str) -> Unit:
    unit = db.scalar(
        select(Unit)
        .where(Unit.code == code)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if unit is None:
        return get_unit(db, code)  # raises UnknownUnitError
    return unit


def _kind(value: str) -> OrderKind:
    try:
        return OrderKind(value)
    except ValueError as exc:
        raise UnknownOrderKindError() from exc


def _role(value: str) -> str:
    try:
        return Role(value).value
    except ValueError as exc:
        raise UnknownRoleError() from exc


def _period(start: date, end: date | None) -> Period:
    if end is not None and end < start:
        raise InvalidPeriodError()
    return Period(start, end)


def _person(db: Session, username: str) -> User:
    user = get_user_by_username(db, username) if is_plain(username, limit=64) else None
    if user is None:
        raise UnknownPersonError()
    return user


def _what(request: DesignationRequest, person: User | None, absent: User | None) -> dict[str, Any]:
    """Who and what, for the audit trail: enough to rebuild the decision without the file."""
    return {
        "user": person.sub if person else None,
        "unit": request.unit_code,
        "kind": request.kind,
        "role": request.role,
        "ends_role": request.ends_role,
        "valid_from": request.valid_from.isoformat(),
        "valid_until": request.valid_until.isoformat() if request.valid_until else None,
        "substitute_for": absent.sub if absent else None,
        "order_number": request.order_number,
        "order_sha256": request.order_sha256,
    }
