"""Per-login confirmation on the bound phone: send a push, accept its answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts.models import User
from idp.audit.service import AuditContext
from idp.audit.service import record
from idp.mfa.answers import read_challenge_id
from idp.mfa.answers import verify_answer
from idp.mfa.challenges import Challenge
from idp.mfa.challenges import ChallengeStore
from idp.mfa.challenges import Outcome
from idp.mfa.challenges import new_challenge
from idp.mfa.dpop import DpopProof
from idp.mfa.errors import AnswerRejectedError
from idp.mfa.errors import ChallengePendingError
from idp.mfa.errors import PushUnavailableError
from idp.mfa.models import Device
from idp.mfa.models import DeviceStatus
from idp.mfa.push import PushGateway

# Outcomes are kept a little longer than their challenge, for the page that waits on them.
_OUTCOME_GRACE = 60.0


def active_device(session: Session, user_id: str) -> Device | None:
    return session.scalar(
        select(Device).where(Device.user_id == user_id, Device.status == DeviceStatus.ACTIVE)
    )


def start_push(
    session: Session,
    *,
    user: User,
    device: Device,
    login_tx: str,
    client_name: str,
    context: dict[str, str],
    authorization_details: list[dict[str, Any]] | None,
    challenges: ChallengeStore,
    gateway: PushGateway,
    answer_to: str,
    ttl: int,
    now: datetime,
    audit: AuditContext,
) -> Challenge:
    """Send a challenge to the user's phone.

    Raises:
        ChallengePendingError: another challenge of this user is waiting (anti-fatigue).
        PushUnavailableError: the relay did not take it; the user can use the TOTP code.
    """
    challenge = new_challenge(
        user_id=user.id,
        device_id=device.id,
        login_tx=login_tx,
        client_name=client_name,
        context=context,
        authorization_details=authorization_details,
        now=now,
        ttl=ttl,
    )
    if not challenges.claim_pending_slot(user.id, challenge.id, ttl=ttl):
        raise ChallengePendingError()
    challenges.save(challenge, ttl=ttl + _OUTCOME_GRACE)
    try:
        gateway.send(challenge, push_address=device.push_address, answer_to=answer_to)
    except PushUnavailableError:
        challenges.release_pending_slot(user.id, challenge.id)
        record(session, "mfa.push_unavailable", now=now, outcome="failure", actor=user.sub,
               context=audit, device=device.id)  # fmt: skip
        raise
    record(
        session,
        "mfa.push_sent",
        now=now,
        actor=user.sub,
        context=audit,
        device=device.id,
        challenge=challenge.id,
        transaction=challenge.txn_hash,
    )
    return challenge


def accept_answer(
    session: Session,
    *,
    answer: str,
    proof: DpopProof,
    challenges: ChallengeStore,
    now: datetime,
    audit: AuditContext,
) -> tuple[Challenge, Outcome]:
    """Take the phone's answer to a challenge, once.

    Raises:
        AnswerRejectedError: unknown or expired challenge, not this device's key, a proof of
            possession by another key, a signature that does not cover this challenge, or a
            second answer.
    """
    challenge = challenges.get(read_challenge_id(answer))
    if challenge is None or now.timestamp() >= challenge.expires_at:
        raise AnswerRejectedError()
    device = session.get(Device, challenge.device_id)
    if device is None or proof.thumbprint != device.key_thumbprint:
        raise AnswerRejectedError()
    verified = verify_answer(answer, challenge=challenge, device=device, now=now)
    if verified.decision == "deny":
        outcome = Outcome.REPORTED if verified.report else Outcome.DENIED
    elif verified.number == challenge.number:
        outcome = Outcome.APPROVED
    else:
        outcome = Outcome.WRONG_NUMBER
    ttl = max(challenge.expires_at - now.timestamp(), 0) + _OUTCOME_GRACE
    if not challenges.record_outcome(challenge.id, outcome, ttl=ttl):
        raise AnswerRejectedError()  # answered already: a challenge gets one answer
    challenges.release_pending_slot(challenge.user_id, challenge.id)
    user_sub = session.scalar(select(User.sub).where(User.id == challenge.user_id))
    record(
        session,
        f"mfa.push_{outcome.value}",
        now=now,
        outcome="success" if outcome == Outcome.APPROVED else "failure",
        actor=user_sub,
        context=audit,
        device=device.id,
        challenge=challenge.id,
        transaction=challenge.txn_hash,
    )
    return challenge, outcome


def challenge_for_phone(
    session: Session, *, challenge_id: str, proof: DpopProof, challenges: ChallengeStore,
    now: datetime,
) -> Challenge:  # fmt: skip
    """The reverse path: a phone that scanned the login page's QR code fetches what it is
    asked to confirm. Only the phone the challenge was made for gets it, and only while open.

    Raises:
        AnswerRejectedError
    """
    challenge = challenges.get(challenge_id)
    if challenge is None or challenges.outcome(challenge, now=now) != Outcome.PENDING:
        raise AnswerRejectedError()
    device = session.get(Device, challenge.device_id)
    if (
        device is None
        or device.status != DeviceStatus.ACTIVE
        or proof.thumbprint != device.key_thumbprint
    ):
        raise AnswerRejectedError()
    return challenge
