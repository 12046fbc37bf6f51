"""CAEP security events owed to relying parties (OpenID CAEP 1.0 over the Shared Signals
Framework 1.0): when a user's Soft Token is suspended, every subscribed relying party learns
it, whether or not the user has a session there.

Events are queued in the notice outbox in the caller's transaction, one Security Event Token
per event and per client: RFC 8417 §2.2 forbids one ``events`` claim from expressing several
independent events, SSF 1.0 says it SHOULD hold one, and the CAEP Interoperability Profile
says MUST. The SETs of one change share a ``txn`` (SSF 1.0), so a receiver can tell that a
``session-revoked`` and a ``credential-change`` had one cause. The background sender signs and
pushes them (RFC 8935); see ``idp.oidc.backchannel``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.audit.service import record
from idp.clock import epoch
from idp.oidc.models import Client
from idp.revocation.models import NoticeKind
from idp.revocation.models import RelyingPartyNotice

CAEP_EVENT_TYPES = "https://schemas.openid.net/secevent/caep/event-type/"
# CAEP 1.0 §2: who or what caused the event.
INITIATING_ENTITIES = frozenset({"admin", "user", "policy", "system"})
# CAEP 1.0 §3.3.1, plus any type both sides agree on (so only the change type is checked).
CHANGE_TYPES = frozenset({"create", "revoke", "update", "delete"})


@dataclass(frozen=True)
class SessionRevoked:
    """CAEP 1.0 §3.1: the user's sessions are revoked.

    The subject is the user, so a receiver ends every session it holds for them, including
    those that no IdP session stands behind. ``sids`` names the IdP sessions that ended (the
    ``sid`` of their ID tokens), for receivers that keep it; SSF 1.0 lets a transmitter add
    fields and has receivers ignore those they do not understand.
    """

    sids: tuple[str, ...] = ()
    event_type: ClassVar[str] = CAEP_EVENT_TYPES + "session-revoked"

    def claims(self) -> dict[str, Any]:
        return {"sids": list(self.sids)} if self.sids else {}


@dataclass(frozen=True)
class CredentialChange:
    """CAEP 1.0 §3.3: a credential was created, changed, revoked or deleted; for a lost phone,
    the Soft Token app (``credential_type`` ``app``) is revoked."""

    credential_type: str = "app"
    change_type: str = "revoke"
    friendly_name: str | None = None
    event_type: ClassVar[str] = CAEP_EVENT_TYPES + "credential-change"

    def __post_init__(self) -> None:
        if self.change_type not in CHANGE_TYPES:
            raise ValueError(f"CAEP change_type must be one of {sorted(CHANGE_TYPES)}")
        if not self.credential_type:
            raise ValueError("CAEP credential_type is required")

    def claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "credential_type": self.credential_type,
            "change_type": self.change_type,
        }
        if self.friendly_name:
            claims["friendly_name"] = self.friendly_name
        return claims


CaepEvent = SessionRevoked | CredentialChange


def queue_security_events(
    db: Session,
    *,
    user_sub: str,
    events: list[CaepEvent],
    now: datetime,
    reason: str,
    initiating_entity: str,
) -> list[str]:
    """Owe every subscribed client (one that registered a ``security_event_uri``) one SET per
    event about the user ``user_sub``, in the caller's transaction; return the clients' ids.

    Clients are owed the events whether or not the user has a session with them: a relying
    party may hold sessions or data of its own that no IdP session stands behind. Call
    ``announce_notices`` after the commit so that delivery starts at once.

    ``reason`` becomes ``reason_admin`` (in English), which the CAEP Interoperability Profile
    requires to be non-empty; ``initiating_entity`` is one of CAEP 1.0's four.

    Raises:
        ValueError: no events, an empty reason or an unknown initiating entity.
    """
    if not events:
        raise ValueError("no events to send")
    if not reason:
        raise ValueError("reason_admin must not be empty")
    if initiating_entity not in INITIATING_ENTITIES:
        raise ValueError(f"initiating_entity must be one of {sorted(INITIATING_ENTITIES)}")
    subscribers = db.execute(
        select(Client.client_id, Client.security_event_uri)
        .where(Client.security_event_uri.is_not(None), Client.disabled_at.is_(None))
        .order_by(Client.client_id)
    ).all()
    txn = secrets.token_hex(16)
    common = {
        "event_timestamp": epoch(now),
        "initiating_entity": initiating_entity,
        "reason_admin": {"en": reason},
    }
    for client_id, uri in subscribers:
        for event in events:
            db.add(
                RelyingPartyNotice(
                    id=secrets.token_hex(16),
                    kind=NoticeKind.SECURITY_EVENT,
                    client_id=client_id,
                    target_uri=uri,
                    sub=user_sub,
                    payload={
                        "event_type": event.event_type,
                        "event": common | event.claims(),
                        "txn": txn,
                    },
                    created_at=now,
                    next_attempt_at=now,
                )
            )
    clients = [client_id for client_id, _ in subscribers]
    record(
        db,
        "security_event.queued",
        now=now,
        user=user_sub,
        txn=txn,
        events=[event.event_type.removeprefix(CAEP_EVENT_TYPES) for event in events],
        clients=clients,
        reason=reason,
    )
    return clients
