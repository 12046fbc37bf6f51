"""People and units by name: what the IdP releases with ``profile`` (userinfo's names and
``gfms_directory``) kept per ``sub`` and unit code, and the one lookup every page uses.

A name kept with a record (the recorder's, a signer's at the time of signing) wins on Thai
pages; the latest names the IdP released fill in the English ones and anything older.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from gfms_portal.models import KnownPerson
from gfms_portal.models import KnownUnit

UNKNOWN = "—"


def names_of(claims: dict[str, Any]) -> tuple[str, str]:
    """(Thai, English) display names from OIDC claims (OIDC Core §5.1, §5.2 tags)."""
    thai = str(
        claims.get("name")
        or " ".join(str(claims.get(part) or "") for part in ("given_name", "family_name")).strip()
    )
    english = str(
        claims.get("name#en")
        or " ".join(
            str(claims.get(f"{part}#en") or "") for part in ("given_name", "family_name")
        ).strip()
    )
    return thai, english


def remember(db: Session, claims: dict[str, Any], *, now: datetime) -> None:
    """Keep the names the IdP released about the signed-in person, the units of their roles
    and the people they act for."""
    thai, english = names_of(claims)
    if thai or english:
        _keep(db, KnownPerson, str(claims["sub"]), thai or english, english, now)
    directory = claims.get("gfms_directory")
    if not isinstance(directory, dict):
        return
    for model, entries in ((KnownUnit, directory.get("units")),
                           (KnownPerson, directory.get("people"))):  # fmt: skip
        for key, value in (entries or {}).items() if isinstance(entries, dict) else ():
            if isinstance(key, str) and isinstance(value, dict):
                thai, english = names_of(value)
                if thai:
                    _keep(db, model, key, thai, english, now)


def _keep(db: Session, model: type[KnownPerson] | type[KnownUnit], key: str, thai: str,
          english: str, now: datetime) -> None:  # fmt: skip
    row: KnownPerson | KnownUnit | None = (
        db.get(KnownPerson, key) if model is KnownPerson else db.get(KnownUnit, key)
    )
    if row is None:
        row = KnownPerson(sub=key) if model is KnownPerson else KnownUnit(code=key)
        db.add(row)
    row.name_th, row.name_en, row.updated_at = thai[:200], english[:200], now


def person_name(db: Session, sub: str | None, lang: str, *, stored: str | None = None) -> str:
    """The name to show for ``sub``: the one stored with the record on Thai pages (as it was
    then), the English one on English pages, and never the ``sub`` itself."""
    if stored == sub:
        stored = None  # records kept before the portal asked for names held the sub
    known = db.get(KnownPerson, sub) if sub else None
    if lang == "en" and known is not None and known.name_en:
        return known.name_en
    return stored or (known.name_th if known is not None else "") or UNKNOWN


def unit_name(db: Session, code: str, lang: str) -> str:
    """``หน่วยทดลอง (0000000001)``: the unit by name, with its code."""
    known = db.get(KnownUnit, code)
    if known is None:
        return code
    name = known.name_en if lang == "en" and known.name_en else known.name_th
    return f"{name} ({code})"
