"""The IdP's administrative roles and what each may do (issue 5):

- CGD administrator: everything;
- treasury administrator: the units of its province (accounts, decisions on requests);
- head of unit: designation requests for their own unit only;
- helpdesk: suspensions, never roles or passwords;
- auditor: reads everything, changes nothing; an internal auditor (ข้อ ๘ of the Soft Token
  letter) may be scoped to units or a province and then reads only those.

Nobody decides a request they submitted or one that concerns themselves (``designations``).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts.models import User
from idp.audit.service import AuditContext
from idp.audit.service import record
from idp.roles.errors import InvalidUnitError
from idp.roles.errors import NotAllowedError
from idp.roles.errors import UnknownUnitError
from idp.roles.models import AdminGrant
from idp.roles.models import AdminRole
from idp.roles.models import Unit


@dataclass(frozen=True)
class Authority:
    """What one person (or a client acting for a system) may do in the IdP's administration."""

    user_id: str | None = None
    roles: frozenset[AdminRole] = frozenset()
    provinces: frozenset[str] = field(default_factory=frozenset)  # as treasury administrator
    units: frozenset[str] = field(default_factory=frozenset)  # as head of unit
    # As an auditor scoped to provinces or units (a global auditor has AUDITOR in ``roles``).
    audited_provinces: frozenset[str] = field(default_factory=frozenset)
    audited_units: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_cgd(self) -> bool:
        return AdminRole.CGD_ADMIN in self.roles

    @property
    def is_administrative(self) -> bool:
        return bool(self.roles) or self.audits_somewhere

    @property
    def audits_somewhere(self) -> bool:
        return bool(self.audited_provinces or self.audited_units)

    def may_manage(self, unit: Unit) -> bool:
        """Issue accounts in the unit and decide its designation requests."""
        return self.is_cgd or unit.province in self.provinces

    def may_designate(self, unit: Unit) -> bool:
        return self.is_cgd or unit.code in self.units

    def may_read(self, unit: Unit) -> bool:
        return (
            self.may_manage(unit)
            or unit.code in self.units
            or AdminRole.AUDITOR in self.roles
            or self.audits(unit)
        )

    def audits(self, unit: Unit) -> bool:
        return unit.province in self.audited_provinces or unit.code in self.audited_units

    def may_read_trail(self) -> bool:
        """The audit trail: CGD and auditors (a scoped auditor, of their units only)."""
        return self.may_read_everything() or self.audits_somewhere

    def may_read_everything(self) -> bool:
        return self.is_cgd or AdminRole.AUDITOR in self.roles

    def may_suspend(self) -> bool:
        return self.is_cgd or AdminRole.HELPDESK in self.roles

    def may_follow_cases(self) -> bool:
        """Lost-device cases: the helpdesk and readers of everything; a head of unit, theirs."""
        return self.may_suspend() or self.may_read_everything() or bool(self.units)

    def require(self, allowed: bool) -> None:
        if not allowed:
            raise NotAllowedError()


NOBODY = Authority()
# The operator at the console (the ``idp`` command, the demo seed): whoever can run it can
# change the database anyway, so it acts with CGD's authority, and the trail says who.
SYSTEM = Authority(roles=frozenset({AdminRole.CGD_ADMIN}))


@dataclass(frozen=True)
class Acting:
    """Who acts, with what authority, when and in which request: what a console page or an
    API call hands to every change it asks for."""

    by: Authority
    actor: str
    now: datetime
    audit: AuditContext


def authority_of(db: Session, user_id: str) -> Authority:
    rows = db.execute(
        select(AdminGrant.role, AdminGrant.province, AdminGrant.unit_code).where(
            AdminGrant.user_id == user_id, AdminGrant.revoked_at.is_(None)
        )
    ).all()
    # SECURITY: a scoped auditor's grant is not the global auditor role, or it would read
    # every unit.
    scoped = [
        (p, u)
        for role, p, u in rows
        if role == AdminRole.AUDITOR and (p is not None or u is not None)
    ]
    return Authority(
        user_id=user_id,
        roles=frozenset(
            AdminRole(role)
            for role, p, u in rows
            if role != AdminRole.AUDITOR or (p is None and u is None)
        ),
        audited_provinces=frozenset(p for p, _ in scoped if p is not None),
        audited_units=frozenset(u for _, u in scoped if u is not None),
        provinces=frozenset(
            p for role, p, _ in rows if role == AdminRole.TREASURY_ADMIN and p is not None
        ),
        units=frozenset(
            u for role, _, u in rows if role == AdminRole.HEAD_OF_UNIT and u is not None
        ),
    )


def grant_admin_role(
    db: Session,
    by: Authority,
    user: User,
    role: AdminRole,
    *,
    now: datetime,
    actor: str | None,
    audit: AuditContext,
    province: str | None = None,
    unit_code: str | None = None,
) -> AdminGrant:
    """Only a CGD administrator grants administrative roles (the CLI acts as one).

    Raises:
        NotAllowedError, InvalidUnitError, UnknownUnitError
    """
    by.require(by.is_cgd)
    if role == AdminRole.TREASURY_ADMIN and not province:
        raise InvalidUnitError("A treasury administrator is granted for a province.")
    if role == AdminRole.HEAD_OF_UNIT and not unit_code:
        raise InvalidUnitError("A head of unit is granted for a unit.")
    if unit_code and db.get(Unit, unit_code) is None:
        raise UnknownUnitError()
    existing = db.scalar(
        select(AdminGrant).where(
            AdminGrant.user_id == user.id,
            AdminGrant.role == role,
            AdminGrant.revoked_at.is_(None),
            AdminGrant.province.is_(province)
            if province is None
            else AdminGrant.province == province,
            AdminGrant.unit_code.is_(unit_code)
            if unit_code is None
            else AdminGrant.unit_code == unit_code,
        )
    )
    if existing is not None:
        return existing
    grant = AdminGrant(
        user_id=user.id,
        role=role,
        province=province,
        unit_code=unit_code,
        granted_at=now,
        granted_by=actor,
    )
    db.add(grant)
    db.flush()
    record(
        db,
        "admin.role_granted",
        now=now,
        actor=actor,
        context=audit,
        user=user.sub,
        role=role.value,
        province=grant.province,
        unit=grant.unit_code,
    )
    return grant
