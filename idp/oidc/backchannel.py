"""OpenID Connect Back-Channel Logout 1.0: send the logout tokens the revocation package
queued when a session ended, retrying until each relying party accepts its token.

Delivery is at least once: a notice is claimed for a short lease, sent outside any database
transaction, then marked delivered or rescheduled with a growing delay. A process that dies
mid-send leaves the lease to lapse, and another sender picks the notice up.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from idp.audit.service import record
from idp.clock import Clock
from idp.oidc.clients import ClientRegistry
from idp.oidc.tokens import TokenSigner
from idp.revocation.models import LogoutNotice

log = logging.getLogger(__name__)

_LEASE = timedelta(seconds=30)
_MAX_ATTEMPTS = 12  # 2 s doubling to an hour: about three hours of trying
_MAX_DELAY = timedelta(hours=1)
_BATCH = 10


class LogoutSender:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        signer: TokenSigner,
        clients: ClientRegistry,
        clock: Clock,
        *,
        default_alg: str,
        timeout: float = 5.0,
    ) -> None:
        self._sessions = sessions
        self._signer = signer
        self._clients = clients
        self._clock = clock
        self._default_alg = default_alg
        self._timeout = timeout

    def send_due(self) -> int:
        """Send every notice whose time has come; return how many were accepted."""
        claimed = self._claim()
        accepted = 0
        for notice_id, client_id, uri, token in claimed:
            error = self._post(uri, token)
            self._settle(notice_id, client_id, error)
            accepted += error is None
        return accepted

    def _claim(self) -> list[tuple[str, str, str, str]]:
        now = self._clock.now()
        with self._sessions.begin() as session:
            notices = session.scalars(
                select(LogoutNotice)
                .where(
                    LogoutNotice.delivered_at.is_(None),
                    LogoutNotice.abandoned_at.is_(None),
                    LogoutNotice.next_attempt_at <= now,
                )
                .order_by(LogoutNotice.next_attempt_at)
                .limit(_BATCH)
                .with_for_update(skip_locked=True)
            ).all()
            claimed = []
            for notice in notices:
                notice.attempts += 1
                notice.next_attempt_at = now + _LEASE
                client = self._clients.get(notice.client_id)
                token = self._signer.issue_logout_token(
                    client_id=notice.client_id,
                    sub=notice.sub,
                    sid=notice.sid,
                    jti=notice.id,
                    now=now,
                    alg=(client.id_token_signed_response_alg if client else None)
                    or self._default_alg,
                )
                claimed.append((notice.id, notice.client_id, notice.target_uri, token))
            return claimed

    def _post(self, uri: str, token: str) -> str | None:
        """Send one logout token (Back-Channel Logout 1.0 §2.5); None when it was accepted."""
        body = urllib.parse.urlencode({"logout_token": token}).encode()
        request = urllib.request.Request(  # noqa: S310 - a registered https or loopback URI
            uri,
            data=body,
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                if response.status in (200, 204):
                    return None
                return f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return type(exc).__name__ + ": " + str(exc)[:150]

    def _settle(self, notice_id: str, client_id: str, error: str | None) -> None:
        now = self._clock.now()
        with self._sessions.begin() as session:
            notice = session.get(LogoutNotice, notice_id)
            if notice is None:
                return
            if error is None:
                notice.delivered_at = now
                record(
                    session, "session.logout_delivered", now=now, client_id=client_id,
                    sid=notice.sid, attempts=notice.attempts,
                )  # fmt: skip
                return
            notice.last_error = error[:200]
            if notice.attempts >= _MAX_ATTEMPTS:
                notice.abandoned_at = now
                record(
                    session, "session.logout_undeliverable", now=now, outcome="failure",
                    client_id=client_id, sid=notice.sid, error=notice.last_error,
                )  # fmt: skip
                log.warning("idp.backchannel.abandoned")
                return
            delay = min(timedelta(seconds=2**notice.attempts), _MAX_DELAY)
            notice.next_attempt_at = now + delay
