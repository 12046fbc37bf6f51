"""Who holds which role where, today: the source of role-scoped tokens."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import aliased

from idp.accounts.models import User
from idp.audit.alerts import raise_alert
from idp.audit.service import AuditContext
from idp.audit.service import record
from idp.roles.models import Role
from idp.roles.models import RoleAssignment
from idp.roles.separation import exclusive_pairs
from idp.roles.separation import pairs_held_together

ROLE_SCOPE_PREFIX = "role:"
ROLE_SCOPES = tuple(f"{ROLE_SCOPE_PREFIX}{role.value}" for role in Role)


@dataclass(frozen=True)
class HeldRole:
    unit: str
    role: str
    substitute_for: str | None = None  # the ``sub`` of the person acted for

    def claim(self) -> dict[str, str]:
        value = {"unit": self.unit, "role": self.role}
        if self.substitute_for:
            value["substitute_for"] = self.substitute_for
        return value


def in_force(day: date) -> Any:
    """The SQL condition of an assignment in force on ``day``."""
    return (
        RoleAssignment.ended_at.is_(None)
        & (RoleAssignment.valid_from <= day)
        & or_(RoleAssignment.valid_until.is_(None), RoleAssignment.valid_until >= day)
    )


def held_roles(db: Session, user_id: str, day: date) -> list[HeldRole]:
    """Every role ``user_id`` holds on ``day``, in one query."""
    absent = aliased(User)
    rows = db.execute(
        select(RoleAssignment.unit_code, RoleAssignment.role, absent.sub)
        .outerjoin(absent, absent.id == RoleAssignment.substitute_for)
        .where(RoleAssignment.user_id == user_id, in_force(day))
        .order_by(RoleAssignment.unit_code, RoleAssignment.role)
    )
    return [HeldRole(unit=unit, role=role, substitute_for=sub) for unit, role, sub in rows]


def requested_roles(scope: str) -> set[str]:
    return {
        s.removeprefix(ROLE_SCOPE_PREFIX) for s in scope.split() if s.startswith(ROLE_SCOPE_PREFIX)
    }


@dataclass(frozen=True)
class RoleGrant:
    """What a token may say about roles: the scope narrowed to roles held now, and the
    ``gfms_roles`` claim."""

    scope: str
    gfms_roles: list[dict[str, str]]

    def claims(self) -> dict[str, Any]:
        return {"gfms_roles": self.gfms_roles} if self.gfms_roles else {}


def grant_roles(
    db: Session,
    user: User,
    *,
    scope: str,
    now: datetime,
    day: date,
    may_hold_roles: bool,
    client_id: str,
    audit: AuditContext,
) -> RoleGrant:
    """Narrow ``scope``'s role scopes to the roles ``user`` holds today (none at all when the
    login may not carry roles), and list them for ``gfms_roles``.

    Separation of duties is checked once more here: should a person hold both roles of an
    exclusive pair in a unit today (a rule added later, data repaired by hand), neither is
    granted in that unit, and the helpdesk is alerted.
    """
    asked = requested_roles(scope)
    if not asked:
        return RoleGrant(scope=scope, gfms_roles=[])
    # A role change takes effect with the new password the Ministry's rule asks for after it;
    # until then (or for a login without the phone) no role is granted.
    allowed = may_hold_roles and not user.must_change_password
    held = held_roles(db, user.id, day) if allowed else []
    by_unit: dict[str, set[str]] = defaultdict(set)
    for holding in held:
        by_unit[holding.unit].add(holding.role)
    blocked: set[tuple[str, str]] = set()
    if any(len(roles) > 1 for roles in by_unit.values()):
        pairs = exclusive_pairs(db)
        for unit, roles in by_unit.items():
            for pair in pairs_held_together(roles, pairs):
                blocked |= {(unit, pair[0]), (unit, pair[1])}
                record(
                    db,
                    "roles.separation_of_duties_blocked",
                    now=now,
                    outcome="failure",
                    actor=user.sub,
                    client_id=client_id,
                    context=audit,
                    unit=unit,
                    roles=list(pair),
                )
                raise_alert(
                    db,
                    "separation_of_duties",
                    user_id=user.id,
                    now=now,
                    unit=unit,
                    roles=list(pair),
                )
    granted = [h for h in held if h.role in asked and (h.unit, h.role) not in blocked]
    granted_roles = {h.role for h in granted}
    words = [
        s
        for s in scope.split()
        if not s.startswith(ROLE_SCOPE_PREFIX) or s.removeprefix(ROLE_SCOPE_PREFIX) in granted_roles
    ]
    return RoleGrant(scope=" ".join(words), gfms_roles=[h.claim() for h in granted])
