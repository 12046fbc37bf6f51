"""Tokens owed to relying parties, sent over the back channel from the persisted outbox:
logout tokens (OpenID Connect Back-Channel Logout 1.0), Security Event Tokens pushed per
RFC 8935 (CAEP events) and CIBA ping notifications (CIBA Core 1.0 §10.2), each retried until
the relying party accepts it.

Delivery is at least once: a notice is claimed for a short lease, sent outside any database
transaction, then marked delivered or rescheduled with a growing delay. A process that dies
mid-send leaves the lease to lapse, and another sender picks the notice up. A notice given up
on (too many failures, or a SET the receiver refused) raises a helpdesk alert.

Each instance runs one sender thread. It polls the outbox, and is woken at once when any
instance announces new notices (``idp.revocation.service.announce_notices``, Redis pub/sub);
the poll stays as the fallback, since the database, not Redis, holds the notices. It hands
deliveries to a pool of workers, with at most a few in flight per destination, and keeps
claiming while some are in flight: a relying party that hangs until the timeout occupies its
own share of the pool, never the logouts of the others.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import FIRST_COMPLETED
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime
from datetime import timedelta

from joserfc.errors import JoseError
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from idp.audit.alerts import raise_alert
from idp.audit.catalogue import EventName
from idp.audit.service import record
from idp.clock import Clock
from idp.oidc.clients import ClientRegistry
from idp.oidc.models import BackchannelRequest
from idp.oidc.tokens import TokenSigner
from idp.revocation.models import NoticeKind
from idp.revocation.models import RelyingPartyNotice
from idp.store.secrets import DataCipher

log = logging.getLogger(__name__)

_LEASE = timedelta(seconds=30)  # several times the send timeout
_MAX_ATTEMPTS = 12  # 2 s doubling to an hour: about three hours of trying
_MAX_DELAY = timedelta(hours=1)
# Claimed one at a time; a run goes on while notices are due (a burst of logouts is not left
# for the next poll), up to this many.
_PER_RUN = 200
# Deliveries in flight at once, in all and to one destination (one URI).
_WORKERS = 8
_PER_DESTINATION = 2
# While deliveries are in flight, look for newly due notices this often.
_RECLAIM_EVERY = 0.1
_ERROR_BODY_LIMIT = 4096
# What the audit trail calls each kind's outcome.
_AUDIT_EVENTS: dict[NoticeKind, tuple[EventName, EventName]] = {
    NoticeKind.LOGOUT: ("session.logout_delivered", "session.logout_undeliverable"),
    NoticeKind.SECURITY_EVENT: ("security_event.delivered", "security_event.undeliverable"),
    NoticeKind.CIBA_PING: ("ciba.ping_delivered", "ciba.ping_undeliverable"),
}


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would turn the POST into a GET without the token and then "succeed":
    # Back-Channel Logout 1.0 §2.8 and RFC 8935 §2 expect the receiver to answer the POST.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


@dataclass(frozen=True)
class _Claim:
    notice_id: str
    kind: NoticeKind
    uri: str
    token: str | None  # None: it could not be signed (``unsigned`` says why)
    attempt: int
    unsigned: str = ""
    body: bytes = b""  # a ping's JSON body; ``token`` is then the client notification token


@dataclass(frozen=True)
class _Answer:
    """How a relying party answered one delivery."""

    error: str | None = None  # None: accepted
    refused: bool = False  # a permanent refusal: sending it again cannot help


_ACCEPTED = _Answer()


class NoticeSender:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        signer: TokenSigner,
        clients: ClientRegistry,
        clock: Clock,
        *,
        default_alg: str,
        timeout: float = 5.0,
        workers: int = _WORKERS,
        per_destination: int = _PER_DESTINATION,
        cipher: DataCipher | None = None,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher  # derives the auth_req_id a CIBA ping names
        self._signer = signer
        self._clients = clients
        self._clock = clock
        self._default_alg = default_alg
        self._timeout = timeout
        self._wake = threading.Event()
        self._workers = workers
        self._per_destination = per_destination
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="idp-notice")

    def wake(self) -> None:
        """Send now rather than at the next poll (called on an announcement)."""
        self._wake.set()

    def run(self, stop: threading.Event, *, poll_interval: float) -> None:
        """Send what is due until ``stop`` is set (then ``wake`` to end the wait): at start,
        at every poll, and whenever woken."""
        while not stop.is_set():
            self._wake.clear()  # before sending: an announcement during a run is not lost
            try:
                self.send_due()
            except Exception:  # a background job must outlive a database blip
                log.exception("idp.notices.send_failed")
            self._wake.wait(poll_interval)

    def send_due(self) -> int:
        """Send the notices whose time has come, in parallel (at most ``per_destination`` to
        one URI), claiming each just before it is sent (so no claim outlives its lease while
        others are sent); return how many were accepted."""
        accepted = claimed = 0
        in_flight: dict[Future[bool], str] = {}
        per_uri: Counter[str] = Counter()
        while True:
            while len(in_flight) < self._workers and claimed < _PER_RUN:
                busy = [uri for uri, count in per_uri.items() if count >= self._per_destination]
                claim = self._claim(busy)
                if claim is None:
                    break
                claimed += 1
                in_flight[self._pool.submit(self._deliver, claim)] = claim.uri
                per_uri[claim.uri] += 1
            if not in_flight:
                return accepted
            done, _ = wait(in_flight, timeout=_RECLAIM_EVERY, return_when=FIRST_COMPLETED)
            for future in done:
                per_uri[in_flight.pop(future)] -= 1
                try:
                    accepted += future.result()
                except Exception:  # settled by the lease: it is tried again later
                    log.exception("idp.notices.send_failed")

    def _deliver(self, claim: _Claim) -> bool:
        if claim.token is None:
            answer = _Answer(claim.unsigned)
        elif claim.kind == NoticeKind.SECURITY_EVENT:
            answer = self._push_security_event(claim.uri, claim.token)
        elif claim.kind == NoticeKind.CIBA_PING:
            answer = self._ping(claim.uri, claim.token, claim.body)
        else:
            answer = self._post_logout_token(claim.uri, claim.token)
        self._settle(claim, answer)
        return answer.error is None

    def _claim(self, busy: list[str] | None = None) -> _Claim | None:
        now = self._clock.now()
        with self._sessions.begin() as db:
            notice = db.scalar(
                select(RelyingPartyNotice)
                .where(
                    RelyingPartyNotice.delivered_at.is_(None),
                    RelyingPartyNotice.abandoned_at.is_(None),
                    RelyingPartyNotice.next_attempt_at <= now,
                    RelyingPartyNotice.target_uri.not_in(busy or []),
                )
                # First attempts before retries: a subscriber that is down must not hold up
                # the logouts of everyone else.
                .order_by(RelyingPartyNotice.attempts, RelyingPartyNotice.next_attempt_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if notice is None:
                return None
            notice.attempts += 1
            notice.next_attempt_at = now + _LEASE
            kind = NoticeKind(notice.kind)  # the column reads back as a plain string
            claim = _Claim(notice.id, kind, notice.target_uri, None, notice.attempts)
            try:
                if kind == NoticeKind.CIBA_PING:
                    token, body = self._ping_of(db, notice)
                    return replace(claim, token=token, body=body)
                return replace(claim, token=self._sign(notice, now))
            except (KeyError, ValueError, JoseError) as exc:
                # Retried and in the end given up like a failed delivery, never left to
                # block the notices behind it.
                log.exception("idp.notices.unsigned")
                return replace(claim, unsigned=f"cannot sign: {type(exc).__name__}")

    def _sign(self, notice: RelyingPartyNotice, now: datetime) -> str:
        """The notice's token, signed afresh for each attempt with the same jti."""
        client = self._clients.get(notice.client_id)
        alg = (client.id_token_signed_response_alg if client else None) or self._default_alg
        if notice.kind == NoticeKind.SECURITY_EVENT:
            payload = notice.payload or {}
            return self._signer.issue_security_event(
                client_id=notice.client_id,
                sub=notice.sub,
                jti=notice.id,
                txn=payload["txn"],
                event_type=payload["event_type"],
                event=payload["event"],
                now=now,
                alg=alg,
            )
        if notice.sid is None:
            raise ValueError(f"logout notice {notice.id} has no sid")
        return self._signer.issue_logout_token(
            client_id=notice.client_id,
            sub=notice.sub,
            sid=notice.sid,
            jti=notice.id,
            now=now,
            alg=alg,
        )

    def _ping_of(self, db: Session, notice: RelyingPartyNotice) -> tuple[str, bytes]:
        """The client notification token and the JSON body of a CIBA ping.

        Raises:
            ValueError: the request or its token is gone, or no cipher was given.
        """
        request_id = (notice.payload or {}).get("request")
        request = db.get(BackchannelRequest, request_id) if request_id else None
        if request is None or not request.client_notification_token or self._cipher is None:
            raise ValueError(f"ping {notice.id} has no request to name")
        auth_req_id = derive_auth_req_id(self._cipher, request.id)
        body = json.dumps({"auth_req_id": auth_req_id}).encode()
        return request.client_notification_token, body

    def _ping(self, uri: str, token: str, body: bytes) -> _Answer:
        """CIBA Core 1.0 §10.2: POST {auth_req_id} with the client notification token as a
        bearer token; the client answers 204 (200 is accepted too)."""
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        return self._post(uri, body, headers, accepted=(204, 200), read_refusal=False)

    def _post_logout_token(self, uri: str, token: str) -> _Answer:
        """Send one logout token (Back-Channel Logout 1.0 §2.5); accepted with 200 (§2.8)."""
        body = urllib.parse.urlencode({"logout_token": token}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return self._post(uri, body, headers, accepted=(200, 204), read_refusal=False)

    def _push_security_event(self, uri: str, token: str) -> _Answer:
        """Push one SET (RFC 8935 §2.1): the SET is the body; accepted with 202 (§2.2)."""
        headers = {"Content-Type": "application/secevent+jwt", "Accept": "application/json"}
        return self._post(uri, token.encode(), headers, accepted=(202, 200, 204), read_refusal=True)

    def _post(
        self,
        uri: str,
        body: bytes,
        headers: dict[str, str],
        *,
        accepted: tuple[int, ...],
        read_refusal: bool,
    ) -> _Answer:
        request = urllib.request.Request(  # noqa: S310 - a registered https or loopback URI
            uri, data=body, method="POST", headers=headers
        )
        try:
            with _OPENER.open(request, timeout=self._timeout) as response:
                if response.status in accepted:
                    return _ACCEPTED
                return _Answer(f"HTTP {response.status}")
        except urllib.error.HTTPError as exc:
            return _refusal(exc) if read_refusal else _Answer(f"HTTP {exc.code}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            return _Answer(type(exc).__name__ + ": " + str(exc)[:150])

    def _settle(self, claim: _Claim, answer: _Answer) -> None:
        now = self._clock.now()
        delivered_event, undeliverable_event = _AUDIT_EVENTS[claim.kind]
        with self._sessions.begin() as db:
            notice = db.get(RelyingPartyNotice, claim.notice_id, with_for_update=True)
            if notice is None or notice.delivered_at is not None:
                return
            if notice.attempts != claim.attempt and answer.error is not None:
                return  # our lease lapsed and another sender has it now
            client_id = notice.client_id
            if answer.error is None:
                notice.delivered_at = now
                record(
                    db,
                    delivered_event,
                    now=now,
                    client_id=client_id,
                    sid=notice.sid,
                    jti=notice.id,
                    attempts=notice.attempts,
                )
                return
            notice.last_error = answer.error[:200]
            if answer.refused or notice.attempts >= _MAX_ATTEMPTS:
                notice.abandoned_at = now
                record(
                    db,
                    undeliverable_event,
                    now=now,
                    outcome="failure",
                    client_id=client_id,
                    sid=notice.sid,
                    jti=notice.id,
                    error=notice.last_error,
                    refused=answer.refused,
                )
                if claim.kind == NoticeKind.CIBA_PING:
                    return  # the client can still poll: nothing for a person to follow up
                # A relying party that never learned of a logout or a suspension may still
                # be letting the user in: a person must follow it up.
                raise_alert(
                    db,
                    "notice_undeliverable",
                    user_id=None,
                    now=now,
                    client=client_id,
                    uri=notice.target_uri,
                    error=notice.last_error,
                    notice=claim.kind.value,
                    jti=notice.id,
                )
                log.warning("idp.notices.abandoned")
                return
            delay = min(timedelta(seconds=2**notice.attempts), _MAX_DELAY)
            notice.next_attempt_at = now + delay


def derive_auth_req_id(cipher: DataCipher, request_id: str) -> str:
    """The auth_req_id of a backchannel request: a keyed hash of its id (256 bits, CIBA Core
    1.0 §7.3 asks at least 128), so only its hash is stored and a ping can still name it."""
    return cipher.keyed_hash(request_id, purpose="ciba_auth_req_id")


def _refusal(error: urllib.error.HTTPError) -> _Answer:
    """Read an RFC 8935 §2.3 error: a 400 whose JSON body names the error (``err``, from the
    Security Event Token Error Codes registry, with a ``description``) refuses this SET for
    good; any other error status is worth another try."""
    if error.code != 400:
        return _Answer(f"HTTP {error.code}")
    try:
        body = json.loads(error.read(_ERROR_BODY_LIMIT))
    except (OSError, ValueError):
        return _Answer("HTTP 400")
    if not isinstance(body, dict) or not isinstance(body.get("err"), str):
        return _Answer("HTTP 400")
    description = body.get("description")
    detail = f": {description}" if isinstance(description, str) else ""
    return _Answer(f"HTTP 400 {body['err']}{detail}", refused=True)
