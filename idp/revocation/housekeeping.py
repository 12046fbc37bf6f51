"""Deleting what has expired on its own: nothing here can be revoked or redeemed any more."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from idp.oidc.models import AuthorizationCode
from idp.oidc.models import GrantAccessToken
from idp.revocation.models import Revocation

# Codes are kept a day past expiry: a late replay still finds its code and revokes the grant.
_CODE_GRACE = timedelta(days=1)


def purge_expired(session: Session, *, now: datetime) -> int:
    """Delete expired revocations, access-token records and long-expired codes."""
    deleted = 0
    for statement in (
        delete(Revocation).where(Revocation.expires_at <= now),
        delete(GrantAccessToken).where(GrantAccessToken.expires_at <= now),
        delete(AuthorizationCode).where(AuthorizationCode.expires_at <= now - _CODE_GRACE),
    ):
        deleted += session.execute(statement).rowcount  # type: ignore[attr-defined]
    return deleted
