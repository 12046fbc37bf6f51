"""Disbursement units (หน่วยงานผู้เบิก): codes are opaque 10-digit strings, never parsed."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy.orm import Session

from idp.audit.service import AuditContext
from idp.audit.service import record
from idp.roles.authority import Authority
from idp.roles.errors import InvalidUnitError
from idp.roles.errors import UnitExistsError
from idp.roles.errors import UnknownUnitError
from idp.roles.models import Unit
from idp.text import is_plain

UNIT_CODE = re.compile(r"[0-9]{10}")
_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")


def normalise_code(code: str) -> str:
    """Thai digits are accepted wherever people type a code."""
    return code.strip().translate(_THAI_DIGITS)


def get_unit(db: Session, code: str) -> Unit:
    """Raises UnknownUnitError."""
    code = normalise_code(code)
    unit = db.get(Unit, code) if UNIT_CODE.fullmatch(code) else None
    if unit is None:
        raise UnknownUnitError()
    return unit


def create_unit(
    db: Session,
    by: Authority,
    *,
    code: str,
    name_th: str,
    province: str,
    treasury_office: str,
    name_en: str = "",
    now: datetime,
    actor: str | None,
    audit: AuditContext,
) -> Unit:
    """Only CGD creates units.

    Raises:
        NotAllowedError, InvalidUnitError, UnitExistsError
    """
    by.require(by.is_cgd)
    code = normalise_code(code)
    fields = [name_th.strip(), province.strip(), treasury_office.strip()]
    limits = (200, 100, 200)
    if (
        not UNIT_CODE.fullmatch(code)
        or not all(fields)
        or not all(is_plain(f, limit=n) for f, n in zip(fields, limits, strict=True))
        or not is_plain(name_en, limit=200)
    ):
        raise InvalidUnitError()
    if db.get(Unit, code) is not None:
        raise UnitExistsError()
    unit = Unit(
        code=code,
        name_th=fields[0],
        name_en=name_en.strip()[:200],
        province=fields[1],
        treasury_office=fields[2],
        created_at=now,
    )
    db.add(unit)
    db.flush()
    record(
        db,
        "roles.unit_created",
        now=now,
        actor=actor,
        context=audit,
        unit=code,
        province=unit.province,
    )
    return unit
