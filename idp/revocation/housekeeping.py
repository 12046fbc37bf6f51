"""Deleting what has expired on its own: nothing here can be revoked or redeemed any more."""

from __future__ import annotations

from datetime import datetime
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from idp.accounts.models import LoginFailure
from idp.oidc.models import AuthorizationCode
from idp.oidc.models import GrantAccessToken
from idp.revocation.models import Revocation

# Codes are kept a day past expiry: a late replay still finds its code and revokes the grant.
_CODE_GRACE = timedelta(days=1)
# A reset failure counter carries no state; it is kept a while only to be locked again.
_RESET_COUNTER_AGE = timedelta(days=1)


def purge_expired(db: Session, *, now: datetime) -> int:
    """Delete expired revocations, access-token records, long-expired codes and failure
    counters that were reset a day ago or more."""
    deleted = 0
    for statement in (
        delete(Revocation).where(Revocation.expires_at <= now),
        delete(GrantAccessToken).where(GrantAccessToken.expires_at <= now),
        delete(AuthorizationCode).where(AuthorizationCode.expires_at <= now - _CODE_GRACE),
        delete(LoginFailure).where(
            LoginFailure.failures == 0, LoginFailure.last_failure_at <= now - _RESET_COUNTER_AGE
        ),
    ):
        deleted += db.execute(statement).rowcount  # type: ignore[attr-defined]
    return deleted
