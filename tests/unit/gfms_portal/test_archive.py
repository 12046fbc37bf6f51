"""The retention period (กค 0402.2/ว 3 ข้อ 3): nothing is deleted before it ends."""

from __future__ import annotations

from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy import select

from gfms_portal.archive import Period
from gfms_portal.archive import purge_expired
from gfms_portal.archive import retained_until
from gfms_portal.models import Document
from gfms_portal.models import Signature
from gfms_portal.store import make_engine
from gfms_portal.store import prepare

NOW = datetime(2026, 12, 2, 5, 0, tzinfo=UTC)


def _document(number: str, last_change: datetime) -> Document:
    return Document(number=number, type="travel", unit="0000000001", amount="1.00", payee="x",
                    description="", recorder_sub="s", recorder_name="n",
                    claimant_username="c", status="payment_approved",
                    created_at=last_change, updated_at=last_change)  # fmt: skip


def test_nothing_is_deleted_before_the_retention_period_ends():
    sessions = prepare(make_engine("sqlite://"))
    with sessions.begin() as db:
        young = _document("0001-2560-000001", NOW - timedelta(days=365 * 10 - 3))
        old = _document("0001-2555-000002", NOW - timedelta(days=365 * 10 + 5))
        db.add_all([young, old])
        db.flush()
        db.add(Signature(document_id=old.id, action="claim", signer_sub="s", signer_name="n",
                         access_token="t", evidence={}, txn_hash="h", document_sha256="d",
                         signed_at=old.updated_at))  # fmt: skip
    with sessions.begin() as db:
        assert purge_expired(db, now=NOW, years=10) == ["0001-2555-000002"]
    with sessions.begin() as db:
        assert db.scalars(select(Document.number)).all() == ["0001-2560-000001"]
        assert db.scalar(select(func.count()).select_from(Signature)) == 0
        # Eleven years on, under a twelve-year setting, the young one still stays.
        assert purge_expired(db, now=NOW + timedelta(days=365), years=12) == []


def test_the_retention_period_counts_from_the_last_change_in_thailand():
    document = _document("n", datetime(2026, 12, 31, 18, 0, tzinfo=UTC))  # 1 Jan 2027 in Thailand
    assert retained_until(document, years=10) == date(2037, 1, 2)
    leap = _document("n", datetime(2028, 2, 29, 1, 0, tzinfo=UTC))
    assert retained_until(leap, years=1) == date(2029, 3, 1)


def test_a_period_is_days_in_thailand():
    first, after = Period.parse("2026-12-01", "2026-12-01").bounds()
    assert first == datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    assert after - first == timedelta(days=1)
