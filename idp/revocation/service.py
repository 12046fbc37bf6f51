"""Revoking tokens and sessions, and answering "is this still good?" fast.

The database is the truth. Redis mirrors what is revoked, so that introspection answers with
one round trip; when Redis has lost its contents (it runs without persistence) the mirror is
rebuilt from the database before anything is answered, and when Redis is down the database is
asked directly. A periodic reconciliation re-mirrors recent revocations, for the case where a
mirror write was lost while Redis itself kept running.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from datetime import timedelta

from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts.models import UserSession
from idp.audit.service import NO_CONTEXT
from idp.audit.service import AuditContext
from idp.audit.service import record
from idp.oidc.models import Grant
from idp.oidc.models import GrantAccessToken
from idp.oidc.models import GrantKind
from idp.revocation.models import Revocation
from idp.revocation.models import RevokedKind
from idp.store.ephemeral import EphemeralStore
from idp.store.ephemeral import EphemeralStoreError
from idp.store.ephemeral import Keys

log = logging.getLogger(__name__)

_LOADED_MARKER_TTL = 86400.0
_RECONCILE_LOOKBACK = timedelta(seconds=60)


class RevocationList:
    def __init__(self, store: EphemeralStore, keys: Keys) -> None:
        self._store = store
        self._keys = keys

    def revoke(
        self,
        session: Session,
        kind: RevokedKind,
        value: str,
        *,
        expires_at: datetime,
        now: datetime,
        reason: str,
    ) -> None:
        """Record a revocation in the caller's transaction and mirror it at once.

        The mirror is written before the commit: if the commit then fails, the token looks
        revoked a little early, which is the safe way to be wrong.
        """
        if expires_at <= now:
            return
        session.merge(
            Revocation(kind=kind, value=value, expires_at=expires_at, revoked_at=now, reason=reason)
        )
        self._mirror([(kind, value, expires_at)], now)

    def is_revoked(
        self,
        *,
        jti: str | None,
        sid: str | None,
        now: datetime,
        open_session: Callable[[], Session],
    ) -> bool:
        """True when the access token ``jti`` or the session ``sid`` was revoked."""
        wanted = [(RevokedKind.ACCESS_TOKEN, jti), (RevokedKind.SESSION, sid)]
        present = [(kind, value) for kind, value in wanted if value]
        try:
            values = self._store.mget(
                [self._keys.revocations_loaded()]
                + [self._keys.revoked(kind.value, value) for kind, value in present]
            )
        except EphemeralStoreError:
            log.warning("idp.revocation.store_unavailable")
            return self._ask_database(open_session, present, now)
        if values[0] is None:
            # Redis restarted empty: rebuild the mirror, answer from the database meanwhile.
            with open_session() as session:
                self.reload(session, now)
            return self._ask_database(open_session, present, now)
        return any(value is not None for value in values[1:])

    def reload(self, session: Session, now: datetime) -> int:
        """Mirror every unexpired revocation, then mark the mirror complete."""
        rows = session.execute(
            select(Revocation.kind, Revocation.value, Revocation.expires_at).where(
                Revocation.expires_at > now
            )
        ).all()
        self._mirror([(RevokedKind(k), v, e) for k, v, e in rows], now)
        try:
            self._store.set(self._keys.revocations_loaded(), b"1", ttl=_LOADED_MARKER_TTL)
        except EphemeralStoreError:
            log.warning("idp.revocation.store_unavailable")
        return len(rows)

    def reconcile(self, session: Session, now: datetime) -> None:
        """Re-mirror what was revoked in the last minute (mirror writes can be lost)."""
        rows = session.execute(
            select(Revocation.kind, Revocation.value, Revocation.expires_at).where(
                Revocation.revoked_at >= now - _RECONCILE_LOOKBACK, Revocation.expires_at > now
            )
        ).all()
        self._mirror([(RevokedKind(k), v, e) for k, v, e in rows], now)

    def _mirror(self, items: list[tuple[RevokedKind, str, datetime]], now: datetime) -> None:
        try:
            self._store.set_many(
                (self._keys.revoked(kind.value, value), b"1", (expires - now).total_seconds())
                for kind, value, expires in items
                if expires > now
            )
        except EphemeralStoreError:
            log.warning("idp.revocation.mirror_failed")

    @staticmethod
    def _ask_database(
        open_session: Callable[[], Session], present: list[tuple[RevokedKind, str]], now: datetime
    ) -> bool:
        if not present:
            return False
        with open_session() as session:
            found = session.scalar(
                select(Revocation.value)
                .where(
                    or_(*[(Revocation.kind == k) & (Revocation.value == v) for k, v in present]),
                    Revocation.expires_at > now,
                )
                .limit(1)
            )
        return found is not None


def revoke_grant(
    session: Session,
    revocations: RevocationList,
    grant: Grant,
    *,
    reason: str,
    now: datetime,
    context: AuditContext = NO_CONTEXT,
) -> None:
    """Revoke a token family: its refresh tokens and every unexpired access token from it."""
    if grant.revoked_at is not None:
        return
    grant.revoked_at = now
    grant.revoke_reason = reason
    tokens = session.scalars(
        select(GrantAccessToken).where(
            GrantAccessToken.grant_id == grant.id, GrantAccessToken.expires_at > now
        )
    ).all()
    for token in tokens:
        revocations.revoke(
            session,
            RevokedKind.ACCESS_TOKEN,
            token.jti,
            expires_at=token.expires_at,
            now=now,
            reason=reason,
        )
    record(
        session,
        "token.grant_revoked",
        now=now,
        client_id=grant.client_id,
        context=context,
        grant=grant.id,
        reason=reason,
        access_tokens=len(tokens),
    )


def end_session(
    session: Session,
    revocations: RevocationList,
    sid: str,
    *,
    reason: str,
    now: datetime,
    access_token_ttl: int,
    actor: str | None = None,
    context: AuditContext = NO_CONTEXT,
) -> UserSession | None:
    """End an IdP session, the token families bound to it and its access tokens."""
    user_session = session.get(UserSession, sid)
    if user_session is None or user_session.ended_at is not None:
        return None
    user_session.ended_at = now
    user_session.end_reason = reason
    # Access tokens carry the sid; none issued under this session outlives this window.
    revocations.revoke(
        session,
        RevokedKind.SESSION,
        sid,
        expires_at=now + timedelta(seconds=access_token_ttl),
        now=now,
        reason=reason,
    )
    grants = session.scalars(
        select(Grant).where(
            Grant.session_id == sid, Grant.kind == GrantKind.SESSION, Grant.revoked_at.is_(None)
        )
    ).all()
    for grant in grants:
        revoke_grant(session, revocations, grant, reason=reason, now=now, context=context)
    record(session, "session.ended", now=now, actor=actor, context=context, sid=sid, reason=reason)
    return user_session
