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
from dataclasses import dataclass
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

_LEASE = timedelta(seconds=30)  # several times the send timeout
_MAX_ATTEMPTS = 12  # 2 s doubling to an hour: about three hours of trying
_MAX_DELAY = timedelta(hours=1)
_PER_RUN = 20


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would turn the POST into a GET without the token and then "succeed":
    # Back-Channel Logout 1.0 §2.8 expects the relying party to answer the POST itself.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


@dataclass(frozen=True)
class _Claim:
    notice_id: str
    client_id: str
    uri: str
    token: str
    attempt: int


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
        """Send the notices whose time has come, one claim at a time (so no claim outlives
        its lease while others are sent); return how many were accepted."""
        accepted = 0
        for _ in range(_PER_RUN):
            claim = self._claim()
            if claim is None:
                break
            error = self._post(claim.uri, claim.token)
            self._settle(claim, error)
            accepted += error is None
        return accepted

    def _claim(self) -> _Claim | None:
        now = self._clock.now()
        with self._sessions.begin() as session:
            notice = session.scalar(
                select(LogoutNotice)
                .where(
                    LogoutNotice.delivered_at.is_(None),
                    LogoutNotice.abandoned_at.is_(None),
                    LogoutNotice.next_attempt_at <= now,
                )
                .order_by(LogoutNotice.next_attempt_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if notice is None:
                return None
            notice.attempts += 1
            notice.next_attempt_at = now + _LEASE
            client = self._clients.get(notice.client_id)
            token = self._signer.issue_logout_token(
                client_id=notice.client_id,
                sub=notice.sub,
                sid=notice.sid,
                jti=notice.id,
                now=now,
                alg=(client.id_token_signed_response_alg if client else None) or self._default_alg,
            )
            return _Claim(notice.id, notice.client_id, notice.target_uri, token, notice.attempts)

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
            with _OPENER.open(request, timeout=self._timeout) as response:
                if response.status in (200, 204):
                    return None
                return f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return type(exc).__name__ + ": " + str(exc)[:150]

    def _settle(self, claim: _Claim, error: str | None) -> None:
        now = self._clock.now()
        client_id = claim.client_id
        with self._sessions.begin() as session:
            notice = session.get(LogoutNotice, claim.notice_id, with_for_update=True)
            if notice is None or notice.delivered_at is not None:
                return
            if notice.attempts != claim.attempt and error is not None:
                return  # our lease lapsed and another sender has it now
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
