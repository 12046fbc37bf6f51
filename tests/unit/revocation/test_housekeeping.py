from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

from sqlalchemy import func
from sqlalchemy import select

from idp.revocation.housekeeping import purge_expired
from idp.revocation.models import Revocation
from idp.revocation.models import RevokedKind

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def test_only_expired_revocations_are_purged(sessions):
    with sessions.begin() as session:
        for value, minutes in (("old", -1), ("live", 5)):
            session.add(
                Revocation(
                    kind=RevokedKind.ACCESS_TOKEN,
                    value=value,
                    expires_at=NOW + timedelta(minutes=minutes),
                    revoked_at=NOW - timedelta(minutes=10),
                    reason="test",
                )
            )
    with sessions.begin() as session:
        assert purge_expired(session, now=NOW) == 1
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Revocation)) == 1
        assert session.scalar(select(Revocation.value)) == "live"
