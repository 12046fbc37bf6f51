"""The wait ticket: what lets a login page ask the waiter about its own push, and nothing more.

The page reaches the waiter cross-origin and without cookies, so the confirmation page hands
its script a ticket signed with a key derived from the IdP's secret key. It names one
challenge, the login transaction and the user it was sent for, and expires shortly after the
challenge. It only reveals whether that challenge was answered: the login itself still
continues through the IdP, in the browser's own session.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

# A page that asks just after the expiry still learns "expired" from the waiter.
GRACE = 30.0
_PURPOSE = b"idp/wait-ticket/v1"


@dataclass(frozen=True)
class Ticket:
    challenge_id: str
    login_tx: str
    user_id: str
    expires_at: float


def _key(secret_key: str) -> bytes:
    # Its own key: a ticket can never pass for a session cookie or a CSRF token, nor the reverse.
    return hmac.new(secret_key.encode(), _PURPOSE, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(secret_key: str, ticket: Ticket) -> str:
    body = json.dumps(
        {
            "c": ticket.challenge_id,
            "t": ticket.login_tx,
            "u": ticket.user_id,
            "e": int(ticket.expires_at + GRACE),
        },
        separators=(",", ":"),
    ).encode()
    payload = _b64(body)
    mac = hmac.new(_key(secret_key), payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b64(mac)}"


def read(secret_key: str, text: str, *, now: float) -> Ticket | None:
    """The ticket, when it is ours, intact and not expired; None for anything else."""
    if len(text) > 512 or text.count(".") != 1:
        return None
    payload, _, signature = text.partition(".")
    expected = hmac.new(_key(secret_key), payload.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(signature)
        fields = json.loads(_unb64(payload))
    except (binascii.Error, ValueError):
        return None
    if not hmac.compare_digest(given, expected):
        return None
    if not isinstance(fields, dict):
        return None
    challenge_id, login_tx, user_id, expires = (fields.get(k) for k in ("c", "t", "u", "e"))
    if not all(isinstance(v, str) and v for v in (challenge_id, login_tx, user_id)):
        return None
    if not isinstance(expires, int) or now >= expires:
        return None
    return Ticket(str(challenge_id), str(login_tx), str(user_id), float(expires))
