"""The archive kept for the State Audit Office (กค 0402.2/ว 3 ข้อ 3-4): how long documents and
their evidence are kept, what an auditor may read, and an export of a period's bundles in one
file that ``gfms-portal verify`` checks. Works on a SQLAlchemy ``Session``; never reads the
request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.orm import Session

from gfms_portal.bundle import EXPORT_FORMAT
from gfms_portal.bundle import Report
from gfms_portal.bundle import TrustAnchor
from gfms_portal.bundle import export_bundle
from gfms_portal.bundle import verify_archive
from gfms_portal.evidence import canonical_json
from gfms_portal.models import Attachment
from gfms_portal.models import AuthRequest
from gfms_portal.models import Document
from gfms_portal.models import Signature

BANGKOK = ZoneInfo("Asia/Bangkok")


def retained_until(document: Document, *, years: int) -> date:
    """The first day the document and its evidence may be deleted: ``years`` after its last
    change (its last signature), in Thailand's calendar."""
    moment = document.updated_at
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    day = moment.astimezone(BANGKOK).date()
    try:
        return day.replace(year=day.year + years) + timedelta(days=1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28) + timedelta(days=1)


def purge_expired(db: Session, *, now: datetime, years: int) -> list[str]:
    """Delete the documents (attachments, signatures, evidence) whose retention period has
    ended; nothing younger. Returns the numbers deleted."""
    today = now.astimezone(BANGKOK).date()
    gone = [d for d in db.scalars(select(Document)) if retained_until(d, years=years) <= today]
    ids = [d.id for d in gone]
    if ids:
        db.execute(delete(Attachment).where(Attachment.document_id.in_(ids)))
        db.execute(delete(Signature).where(Signature.document_id.in_(ids)))
        db.execute(delete(AuthRequest).where(AuthRequest.document_id.in_(ids)))
        db.execute(delete(Document).where(Document.id.in_(ids)))
        db.flush()
    return [str(d.number) for d in gone]


@dataclass(frozen=True)
class Period:
    """Days in Thailand, both included."""

    start: date
    end: date

    @classmethod
    def parse(cls, start: str, end: str) -> Period:
        """Raises: ValueError (not ISO dates, or the end before the start)."""
        period = cls(date.fromisoformat(start), date.fromisoformat(end))
        if period.end < period.start:
            raise ValueError("the period ends before it starts")
        return period

    def bounds(self) -> tuple[datetime, datetime]:
        first = datetime.combine(self.start, time(0), BANGKOK)
        after = datetime.combine(self.end + timedelta(days=1), time(0), BANGKOK)
        return first.astimezone(UTC), after.astimezone(UTC)


def documents_in(db: Session, units: set[str], period: Period | None = None) -> list[Document]:
    """The documents of these units, recorded in the period (all when None), oldest first."""
    if not units:
        return []
    query = select(Document).where(Document.unit.in_(sorted(units)))
    if period is not None:
        first, after = period.bounds()
        query = query.where(Document.created_at >= first, Document.created_at < after)
    return list(db.scalars(query.order_by(Document.id)))


def export_period(
    documents: list[Document], *, period: Period, units: set[str], issuer: str,
    client_id: str, key_history: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """Every bundle of the period in one file (``gfms-portal-export/1``), verified like a
    bundle by ``gfms-portal verify``."""
    return {
        "format": EXPORT_FORMAT,
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "units": sorted(units),
        "bundles": [
            export_bundle(d, issuer=issuer, client_id=client_id, jwks=key_history)
            for d in documents
            if d.signatures
        ],
    }


def verify_documents(documents: list[Document], trust: TrustAnchor) -> dict[int, Report]:
    """Each document's bundle checked as the State Audit Office would check it."""
    return {
        d.id: verify_archive(canonical_json(_bundle(d, trust)), trust=trust)
        for d in documents
        if d.signatures
    }


def _bundle(document: Document, trust: TrustAnchor) -> dict[str, Any]:
    return export_bundle(document, issuer=trust.issuer, client_id=trust.client_id, jwks={})
