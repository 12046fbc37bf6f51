"""Push challenges: what the phone is asked, and the one answer each may get.

A challenge lives in the ephemeral store (every instance sees it; losing it only restarts a
login). Its number is shown in the browser and never sent to the phone: the user carries it
over (NIST SP 800-63B-4 §3.1.3.2, a transfer of a secret). The answer is written once, with
SET NX, so a duplicate or a race cannot change it.

A backchannel (CIBA) challenge has no browser to show a number in: it has no number, and the
phone shows the client's binding message instead, which the client shows on its own screen
(CIBA Core 1.0 §7.1, ``binding_message``).
"""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import secrets
from dataclasses import asdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from idp.store.ephemeral import EphemeralStore
from idp.store.ephemeral import EphemeralStoreError
from idp.store.ephemeral import Keys

log = logging.getLogger(__name__)

# The channel (under the Redis namespace) that carries the id of every challenge whose outcome
# was just written: the waiter wakes the pages waiting for that one.
ANSWERS_TOPIC = "mfa-answers"


class Outcome(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"  # "no" on the phone
    REPORTED = "reported"  # "this was not me"
    WRONG_NUMBER = "wrong_number"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Challenge:
    id: str
    user_id: str
    device_id: str
    login_tx: str
    nonce: str
    number: int | None  # None: a backchannel (CIBA) challenge, approved without a number
    client_id: str
    client_name: str
    context: dict[str, str]
    authorization_details: list[dict[str, Any]] | None
    txn_hash: str | None
    created_at: float
    expires_at: float
    # Sent for a live session (a step-up, a transaction): not something a password alone starts.
    in_session: bool = False
    binding_message: str | None = None

    @property
    def is_backchannel(self) -> bool:
        return self.number is None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Challenge:
        return cls(**json.loads(raw))

    def relay_view(self) -> dict[str, Any]:
        """What the phone is shown: everything but the number."""
        return {
            "challenge_id": self.id,
            "nonce": self.nonce,
            "client_name": self.client_name,
            "context": self.context,
            "authorization_details": self.authorization_details,
            "expires_at": self.expires_at,
            # Whether the user types a number from a sign-in page (never the number itself);
            # a backchannel request shows the binding message instead.
            "number_matching": not self.is_backchannel,
            "binding_message": self.binding_message,
        }


def transaction_hash(authorization_details: list[dict[str, Any]] | None) -> str | None:
    """SHA-256 over the canonical JSON of what the user is asked to approve (RFC 9396)."""
    if not authorization_details:
        return None
    canonical = json.dumps(
        authorization_details, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def new_challenge_id() -> str:
    return secrets.token_urlsafe(16)


def new_challenge(
    *,
    user_id: str,
    device_id: str,
    login_tx: str,
    client_id: str,
    client_name: str,
    context: dict[str, str],
    authorization_details: list[dict[str, Any]] | None,
    now: datetime,
    ttl: int,
    in_session: bool = False,
    backchannel: bool = False,
    binding_message: str | None = None,
    challenge_id: str | None = None,
) -> Challenge:
    return Challenge(
        id=challenge_id or new_challenge_id(),
        user_id=user_id,
        device_id=device_id,
        login_tx=login_tx,
        nonce=secrets.token_urlsafe(24),
        # Two digits, never 00-09, so it reads the same on every keyboard.
        number=None if backchannel else 10 + secrets.randbelow(90),
        client_id=client_id,
        client_name=client_name,
        context=context,
        authorization_details=authorization_details,
        txn_hash=transaction_hash(authorization_details),
        created_at=now.timestamp(),
        expires_at=now.timestamp() + ttl,
        in_session=in_session,
        binding_message=binding_message,
    )


class ChallengeStore:
    def __init__(self, store: EphemeralStore, keys: Keys) -> None:
        self._store = store
        self._keys = keys

    def claim_pending_slot(
        self, user_id: str, challenge_id: str, *, ttl: float, now: datetime
    ) -> bool:
        """One pending challenge per user: take the slot, or report that it is taken."""
        key = self._keys.pending_push(user_id)
        if self._store.set(key, challenge_id.encode(), ttl=ttl, only_if_new=True):
            return True
        # Held by a challenge that is over (answered, or past its expiry on our clock while
        # the slot's own TTL has not run out yet): take it over.
        if self.pending_for(user_id, now=now) is not None:
            return False
        self._store.set(key, challenge_id.encode(), ttl=ttl)
        return True

    def pending_for(self, user_id: str, *, now: datetime) -> Challenge | None:
        """The user's challenge that is still waiting for an answer, if any."""
        holder_id = self._store.get(self._keys.pending_push(user_id))
        holder = self.get(holder_id.decode()) if holder_id else None
        if holder is None or self.outcome(holder, now=now) != Outcome.PENDING:
            return None
        return holder

    def release_pending_slot(self, user_id: str, challenge_id: str) -> None:
        key = self._keys.pending_push(user_id)
        if self._store.get(key) == challenge_id.encode():
            self._store.delete(key)

    def save(self, challenge: Challenge, *, ttl: float) -> None:
        self._store.set(self._keys.push_challenge(challenge.id), challenge.to_json(), ttl=ttl)

    def get(self, challenge_id: str) -> Challenge | None:
        raw = self._store.get(self._keys.push_challenge(challenge_id))
        return Challenge.from_json(raw) if raw else None

    def record_outcome(self, challenge_id: str, outcome: Outcome, *, ttl: float) -> bool:
        """Write the one answer a challenge gets; False when it already had one."""
        written = self._store.set(
            self._keys.push_answer(challenge_id), outcome.value.encode(), ttl=ttl, only_if_new=True
        )
        if written:
            try:
                self._store.publish(self._keys.channel(ANSWERS_TOPIC), challenge_id.encode())
            except EphemeralStoreError:
                # The outcome is written: a page waiting at the waiter learns it when its wait
                # ends (or at once when the waiter's subscription comes back), only later.
                log.warning("idp.mfa.answer_not_published")
        return written

    def withdraw(self, challenge: Challenge, *, now: datetime) -> None:
        """The login went on another way (the TOTP code): the push may no longer be answered,
        and no longer blocks another login of the user."""
        ttl = max(challenge.expires_at - now.timestamp(), 1.0)
        self.record_outcome(challenge.id, Outcome.EXPIRED, ttl=ttl)
        self.release_pending_slot(challenge.user_id, challenge.id)

    def outcome(self, challenge: Challenge, *, now: datetime) -> Outcome:
        raw = self._store.get(self._keys.push_answer(challenge.id))
        return outcome_of(raw, expires_at=challenge.expires_at, now=now.timestamp())


def outcome_of(answer: bytes | None, *, expires_at: float, now: float) -> Outcome:
    """A challenge's outcome from its stored answer: the one rule both ways of waiting use."""
    if answer is not None:
        return Outcome(answer.decode())
    return Outcome.EXPIRED if now >= expires_at else Outcome.PENDING
