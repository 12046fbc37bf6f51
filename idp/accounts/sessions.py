"""Server-side login sessions: 24 h at most overall and 1 h idle (settings)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts.models import User
from idp.accounts.models import UserSession
from idp.audit.service import AuditContext
from idp.audit.service import record
from idp.store.secrets import sha256_hex

# Writing last_seen_at on every request would turn each page view into a write; a minute of
# slack on a one-hour idle limit is harmless.
_TOUCH_INTERVAL = timedelta(seconds=60)


@dataclass(frozen=True)
class SessionPolicy:
    max_age: int
    idle_timeout: int


class LoginSessions:
    """The browser's login sessions (rows of ``UserSession``), under this process's limits."""

    def __init__(self, policy: SessionPolicy) -> None:
        self._policy = policy

    def start(
        self,
        db: Session,
        user: User,
        *,
        acr: str,
        amr: list[str],
        now: datetime,
        context: AuditContext,
        device_id: str | None = None,
    ) -> tuple[UserSession, str]:
        """Open a login session after a completed login; return it and the cookie value.

        The cookie value is 256 random bits and only its hash is stored.
        """
        cookie_value = secrets.token_urlsafe(32)
        user_session = UserSession(
            id=secrets.token_urlsafe(24),
            token_hash=sha256_hex(cookie_value),
            user_id=user.id,
            auth_time=now,
            acr=acr,
            amr=amr,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(seconds=self._policy.max_age),
            client_ip=context.client_ip,
            user_agent=(context.user_agent or "")[:255] or None,
            device_id=device_id,
        )
        db.add(user_session)
        db.flush()
        record(
            db,
            "session.started",
            now=now,
            actor=user.sub,
            context=context,
            sid=user_session.id,
            acr=acr,
            amr=amr,
        )
        return user_session, cookie_value

    def reauthenticate(
        self,
        db: Session,
        user_session: UserSession,
        user: User,
        *,
        acr: str,
        amr: list[str],
        now: datetime,
        context: AuditContext,
        device_id: str | None = None,
    ) -> str:
        """Record a fresh login by the same user in their existing login session; return a
        new cookie.

        The session keeps its ``sid``, so relying parties holding tokens from it keep them;
        the cookie value changes, as it does at every login.
        """
        cookie_value = secrets.token_urlsafe(32)
        user_session.token_hash = sha256_hex(cookie_value)
        user_session.auth_time = now
        user_session.acr = acr
        user_session.amr = amr
        user_session.device_id = device_id
        user_session.last_seen_at = now
        user_session.expires_at = now + timedelta(seconds=self._policy.max_age)
        record(
            db,
            "session.reauthenticated",
            now=now,
            actor=user.sub,
            context=context,
            sid=user_session.id,
            acr=acr,
            amr=amr,
        )
        return cookie_value

    def active(
        self, db: Session, cookie_value: str, *, now: datetime
    ) -> tuple[UserSession, User] | None:
        """The live login session named by a cookie, its idle timer refreshed, or None."""
        row = db.execute(
            select(UserSession, User)
            .join(User, User.id == UserSession.user_id)
            .where(UserSession.token_hash == sha256_hex(cookie_value))
        ).first()
        if row is None:
            return None
        user_session, user = row
        if not is_live(user_session, now=now, policy=self._policy) or not user.is_active:
            return None
        if now - user_session.last_seen_at >= _TOUCH_INTERVAL:
            user_session.last_seen_at = now
        return user_session, user


def is_live(user_session: UserSession, *, now: datetime, policy: SessionPolicy) -> bool:
    if user_session.ended_at is not None or now >= user_session.expires_at:
        return False
    return now < user_session.last_seen_at + timedelta(seconds=policy.idle_timeout)
