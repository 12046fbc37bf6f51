"""Disbursement units, who holds which role in them and why (the head of unit's written order),
the exclusive-role policy, and the IdP's own administrative roles."""

from __future__ import annotations

import enum
from datetime import date
from datetime import datetime

from sqlalchemy import CheckConstraint
from sqlalchemy import Date
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.accounts.models import new_id
from idp.store.db import Base


class Role(enum.StrEnum):
    """Roles in a disbursement unit, as the Ministry's letter names them."""

    RECORDER = "recorder"  # ผู้บันทึก
    APPROVE_1 = "approve-1"  # ผู้อนุมัติเบิกเงิน (อนุมัติ ๑)
    APPROVE_2 = "approve-2"  # ผู้อนุมัติจ่ายเงิน (อนุมัติ ๒)


class AdminRole(enum.StrEnum):
    """Roles inside the IdP itself: who may issue accounts, designate, decide, suspend, read."""

    CGD_ADMIN = "cgd-admin"  # everything, everywhere
    TREASURY_ADMIN = "treasury-admin"  # the units of one province
    HEAD_OF_UNIT = "head-of-unit"  # designation requests for one unit
    HELPDESK = "helpdesk"  # suspensions; never roles or passwords
    AUDITOR = "auditor"  # reads everything, changes nothing


class OrderKind(enum.StrEnum):
    """What a head of unit's order does to an assignment."""

    DESIGNATE = "designate"  # a person starts holding a role (or acts for someone)
    END = "end"  # a person stops holding a role from a day (left, retired, replaced)
    CHANGE = "change"  # one role ends and another starts on the same day, in one approval


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Unit(Base):
    """A disbursement unit (หน่วยงานผู้เบิก) and the treasury office responsible for it."""

    __tablename__ = "units"

    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    name_th: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    province: Mapped[str] = mapped_column(String(100), index=True)
    treasury_office: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class ExclusiveRolePair(Base):
    """Two roles one person may never hold in one unit at overlapping times (separation of
    duties). Data, not code: a further pair is a row."""

    __tablename__ = "exclusive_role_pairs"
    __table_args__ = (CheckConstraint("role_a < role_b", name="ordered"),)

    role_a: Mapped[str] = mapped_column(String(32), primary_key=True)
    role_b: Mapped[str] = mapped_column(String(32), primary_key=True)
    rule: Mapped[str] = mapped_column(String(300))


class DesignationRequest(Base):
    """A head of unit's request to designate a person (or a substitute) in a role, to end a
    role from a day, or to change one role for another, with the written order attached; only
    an approved request changes assignments.

    For ``end``, ``role`` is the role that ends and ``valid_from`` the first day without it;
    for ``change``, ``ends_role`` ends the day before ``valid_from`` and ``role`` starts then.
    """

    __tablename__ = "designation_requests"
    __table_args__ = (
        CheckConstraint("valid_until IS NULL OR valid_until >= valid_from", name="period"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[OrderKind] = mapped_column(
        String(16), default=OrderKind.DESIGNATE, server_default=OrderKind.DESIGNATE.value
    )
    role: Mapped[str] = mapped_column(String(32))
    ends_role: Mapped[str | None] = mapped_column(String(32))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    substitute_for: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    order_number: Mapped[str] = mapped_column(String(64))
    order_date: Mapped[date] = mapped_column(Date)
    order_filename: Mapped[str] = mapped_column(String(255))
    order_media_type: Mapped[str] = mapped_column(String(64))
    order_size: Mapped[int]
    order_sha256: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[RequestStatus] = mapped_column(String(16), default=RequestStatus.PENDING)
    submitted_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    submitted_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(Text)


class OrderFile(Base):
    """The order's bytes, apart from the request so that listing requests never loads them."""

    __tablename__ = "designation_order_files"

    request_id: Mapped[str] = mapped_column(
        ForeignKey("designation_requests.id", ondelete="CASCADE"), primary_key=True
    )
    content: Mapped[bytes] = mapped_column(LargeBinary)


class RoleAssignment(Base):
    """A person holds a role in a unit for a period, as an approved request (or an
    administrator's seeding) said; ``substitute_for`` when acting for another
    (ผู้ปฏิบัติงานแทน). Ended early by setting ``ended_at``, never deleted."""

    __tablename__ = "role_assignments"
    __table_args__ = (
        CheckConstraint("valid_until IS NULL OR valid_until >= valid_from", name="period"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"))
    role: Mapped[str] = mapped_column(String(32))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    substitute_for: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    request_id: Mapped[str | None] = mapped_column(ForeignKey("designation_requests.id"))
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(Text)


Index("ix_role_assignments_user_unit", RoleAssignment.user_id, RoleAssignment.unit_code)
Index("ix_role_assignments_unit", RoleAssignment.unit_code)


class AdminGrant(Base):
    """An administrative role inside the IdP, scoped to a province (treasury) or a unit
    (head of unit) where the role needs one."""

    __tablename__ = "admin_grants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[AdminRole] = mapped_column(String(32))
    province: Mapped[str | None] = mapped_column(String(100))
    unit_code: Mapped[str | None] = mapped_column(ForeignKey("units.code"))
    granted_at: Mapped[datetime]
    granted_by: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None]
