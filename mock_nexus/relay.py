"""The push relay: takes challenges from the IdP (API key), keeps them in each phone's inbox
until answered or expired, and carries the phone's signed answer back to the IdP."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Knobs:
    """What a test may turn on the running relay (NEXUS_TEST_CONTROL)."""

    latency_ms: int
    outage: bool
    drop_pushes: bool
    drop_answers: bool


@dataclass(frozen=True)
class Pushed:
    """A challenge as the phone receives it: never the number shown in the browser."""

    challenge_id: str
    nonce: str
    client_name: str
    context: dict[str, str]
    authorization_details: list[dict[str, Any]] | None
    expires_at: float
    answer_to: str
    # Scanned from a login page (the reverse path): it came from the IdP, not the relay. The
    # user still types the number the login page shows.
    scanned: bool = False
    # A backchannel (CIBA) request has no sign-in page to type a number from: the app shows
    # the application's binding message instead, and approving needs no number.
    number_matching: bool = True
    binding_message: str | None = None

    @property
    def via_relay(self) -> bool:
        return not self.scanned

    @classmethod
    def from_request(cls, body: dict[str, Any]) -> Pushed:
        """Raises KeyError, TypeError or ValueError on a malformed push."""
        details = body.get("authorization_details")
        if details is not None and not isinstance(details, list):
            raise ValueError("authorization_details must be a list")
        context = body["context"]
        if not isinstance(context, dict):
            raise ValueError("context must be an object")
        message = body.get("binding_message")
        if message is not None and not isinstance(message, str):
            raise ValueError("binding_message must be a string")
        number_matching = body.get("number_matching", True)
        if not isinstance(number_matching, bool):
            raise ValueError("number_matching must be a boolean")
        return cls(
            challenge_id=str(body["challenge_id"]),
            nonce=str(body["nonce"]),
            client_name=str(body["client_name"]),
            context={str(k): str(v) for k, v in context.items()},
            authorization_details=details,
            expires_at=float(body["expires_at"]),
            answer_to=str(body["answer_to"]),
            number_matching=number_matching,
            binding_message=message,
        )

    def view(self) -> dict[str, Any]:
        """What the phone shows: id, client, context, transaction details (never the number),
        and for a backchannel request the binding message, approved without a number."""
        return {
            "id": self.challenge_id,
            "client": self.client_name,
            "context": self.context,
            "authorization_details": self.authorization_details,
            "expires_at": self.expires_at,
            "scanned": not self.via_relay,
            "number_matching": self.number_matching,
            "binding_message": self.binding_message,
        }


class Inboxes:
    """Pending challenges per phone, in memory (a push is not worth keeping across restarts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inboxes: dict[str, dict[str, Pushed]] = {}

    def put(self, phone_id: str, pushed: Pushed) -> None:
        with self._lock:
            self._inboxes.setdefault(phone_id, {})[pushed.challenge_id] = pushed

    def pending(self, phone_id: str) -> list[Pushed]:
        now = time.time()
        with self._lock:
            inbox = self._inboxes.get(phone_id, {})
            for challenge_id in [c for c, p in inbox.items() if p.expires_at <= now]:
                del inbox[challenge_id]
            return sorted(inbox.values(), key=lambda p: p.expires_at)

    def peek(self, phone_id: str, challenge_id: str) -> Pushed | None:
        with self._lock:
            return self._inboxes.get(phone_id, {}).get(challenge_id)

    def take(self, phone_id: str, challenge_id: str) -> Pushed | None:
        """Remove a challenge to answer it: a phone answers each challenge once."""
        with self._lock:
            pushed = self._inboxes.get(phone_id, {}).pop(challenge_id, None)
        if pushed is None or pushed.expires_at <= time.time():
            return None
        return pushed
