"""Anti-fatigue (push bombing, as in the 2022 Uber breach): a cap on pushes per user and
window, a growing back-off after each denial, and a pause after repeated denials.

The pause stops pushes only: the user still signs in with the TOTP code (or a passkey), which
an attacker holding just the password cannot, and that success ends the pause. Locking the
whole account instead would let anyone with the password lock its owner out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from idp.mfa.errors import PushLimitError
from idp.mfa.errors import PushPausedError
from idp.mfa.models import PushDenials
from idp.store.db import is_postgresql
from idp.store.ephemeral import EphemeralStore
from idp.store.ephemeral import Keys


@dataclass(frozen=True)
class PushPolicy:
    limit: int = 10
    window: int = 900
    backoff: int = 30
    pause_after: int = 5


def check_push_allowed(
    db: Session,
    user_id: str,
    *,
    policy: PushPolicy,
    store: EphemeralStore,
    keys: Keys,
    now: datetime,
) -> None:
    """Take one push from the user's allowance, or say why not.

    Raises:
        PushPausedError: too many consecutive denials.
        PushLimitError: in a back-off after a denial, or over the cap of the window.
    """
    denials = db.get(PushDenials, user_id)
    if denials is not None and denials.consecutive > 0:
        if denials.consecutive >= policy.pause_after:
            raise PushPausedError()
        exponent = min(denials.consecutive - 1, 16)
        until = denials.last_denied_at + timedelta(seconds=policy.backoff * 2**exponent)
        if now < until:
            raise PushLimitError(retry_after=int((until - now).total_seconds()) + 1)
    # Counted in the shared store, across instances; an outage of the store is an outage of
    # pushes (the caller offers the TOTP code), never unlimited pushes.
    if store.incr(keys.push_count(user_id), ttl=policy.window) > policy.limit:
        raise PushLimitError(retry_after=policy.window)


def record_denial(db: Session, user_id: str, *, now: datetime) -> int:
    """Count a declined push; return the run of consecutive denials."""
    insert = postgresql.insert if is_postgresql(db) else sqlite.insert
    db.execute(
        insert(PushDenials)
        .values(user_id=user_id, consecutive=0, last_denied_at=now)
        .on_conflict_do_nothing(index_elements=["user_id"])
    )
    denials = db.scalar(select(PushDenials).where(PushDenials.user_id == user_id).with_for_update())
    assert denials is not None  # noqa: S101 - inserted just above, in this transaction
    denials.consecutive += 1
    denials.last_denied_at = now
    return denials.consecutive


def reset_denials(db: Session, user_id: str) -> None:
    """A login that succeeded ends the run of denials."""
    db.execute(delete(PushDenials).where(PushDenials.user_id == user_id))
