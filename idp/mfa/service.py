"""Per-login confirmation on the bound phone: send a push, accept its answer."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.accounts.models import User
from idp.accounts.models import UserSession
from idp.audit.alerts import raise_alert
from idp.audit.catalogue import EventName
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
from idp.mfa.errors import PushLimitError
from idp.mfa.errors import PushPausedError
from idp.mfa.errors import PushUnavailableError
from idp.mfa.fatigue import PushPolicy
from idp.mfa.fatigue import check_push_allowed
from idp.mfa.fatigue import record_denial
from idp.mfa.models import Device
from idp.mfa.models import DeviceStatus
from idp.mfa.models import TransactionEvidence
from idp.mfa.push import PushGateway
from idp.revocation.service import RevocationList
from idp.revocation.service import end_backchannel_requests
from idp.revocation.service import end_session
from idp.store.ephemeral import EphemeralStore
from idp.store.ephemeral import EphemeralStoreError
from idp.store.ephemeral import Keys

# Outcomes are kept a little longer than their challenge, for the page that waits on them.
_OUTCOME_GRACE = 60.0
# The audit event of each answer a challenge can end with; only an approval is a success.
_ANSWER_EVENTS: dict[Outcome, EventName] = {
    Outcome.APPROVED: "mfa.push_approved",
    Outcome.DENIED: "mfa.push_denied",
    Outcome.REPORTED: "mfa.push_reported",
    Outcome.WRONG_NUMBER: "mfa.push_wrong_number",
    Outcome.EXPIRED: "mfa.push_expired",
}


def active_device(db: Session, user_id: str) -> Device | None:
    return db.scalar(
        select(Device).where(Device.user_id == user_id, Device.status == DeviceStatus.ACTIVE)
    )


def active_device_id(db: Session, user_id: str) -> str | None:
    """The id of the user's active phone: the password step needs no more of its row."""
    return db.scalar(
        select(Device.id).where(Device.user_id == user_id, Device.status == DeviceStatus.ACTIVE)
    )


def device_still_active(db: Session, device_id: str) -> bool:
    """Whether the phone may still stand behind a new db, holding its row (FOR SHARE)
    until the session is committed, so a suspension waits for it or is seen by it."""
    status = db.scalar(
        select(Device.status).where(Device.id == device_id).with_for_update(read=True)
    )
    return status == DeviceStatus.ACTIVE


class PushConfirmation:
    """Per-login confirmation on the bound phone, built once per process: what stays the
    same from one login to the next is given here, each call brings its login's values."""

    def __init__(
        self,
        *,
        challenges: ChallengeStore,
        gateway: PushGateway,
        policy: PushPolicy,
        store: EphemeralStore,
        keys: Keys,
        answer_to: str,
        ttl: int,
        revocations: RevocationList,
        access_token_ttl: int,
    ) -> None:
        self._challenges = challenges
        self._gateway = gateway
        self._policy = policy
        self._store = store
        self._keys = keys
        self._answer_to = answer_to
        self._ttl = ttl
        self._revocations = revocations
        self._access_token_ttl = access_token_ttl

    def start_push(
        self,
        db: Session,
        *,
        user: User,
        device: Device,
        login_tx: str,
        client_id: str,
        client_name: str,
        context: dict[str, str],
        authorization_details: list[dict[str, Any]] | None,
        now: datetime,
        audit: AuditContext,
        in_session: bool = False,
        backchannel: bool = False,
        binding_message: str | None = None,
        challenge_id: str | None = None,
        ttl: int | None = None,
    ) -> Challenge:
        """Send a challenge to the user's phone; a ``backchannel`` one (CIBA) has no number
        and shows the ``binding_message``. ``ttl`` replaces a login's when the request sets
        its own expiry (CIBA).

        Raises:
            ChallengePendingError: another challenge of this user is waiting (anti-fatigue).
            PushLimitError, PushPausedError: anti-fatigue (``idp.mfa.fatigue``).
            PushUnavailableError: the relay did not take it; the user can use the TOTP code.
        """
        ttl = self._ttl if ttl is None else ttl
        challenges = self._challenges
        challenge = new_challenge(
            user_id=user.id,
            device_id=device.id,
            login_tx=login_tx,
            client_id=client_id,
            client_name=client_name,
            context=context,
            authorization_details=authorization_details,
            now=now,
            ttl=ttl,
            in_session=in_session,
            backchannel=backchannel,
            binding_message=binding_message,
            challenge_id=challenge_id,
        )
        if not challenges.claim_pending_slot(user.id, challenge.id, ttl=ttl, now=now):
            raise ChallengePendingError()
        try:
            # Fatigue limits stop pushes a password alone can start; a live session's step-up
            # is not counted against them, so a password-holder cannot block the owner's work.
            if not in_session:
                check_push_allowed(
                    db, user.id, policy=self._policy, store=self._store, keys=self._keys, now=now
                )
        except (PushLimitError, PushPausedError) as refusal:
            challenges.release_pending_slot(user.id, challenge.id)
            record(
                db,
                "mfa.push_refused",
                now=now,
                outcome="failure",
                actor=user.sub,
                context=audit,
                reason=refusal.code,
            )
            raise
        except EphemeralStoreError as exc:
            challenges.release_pending_slot(user.id, challenge.id)
            raise PushUnavailableError() from exc
        challenges.save(challenge, ttl=ttl + _OUTCOME_GRACE)
        try:
            self._gateway.send(
                challenge, push_address=device.push_address, answer_to=self._answer_to
            )
        except PushUnavailableError:
            challenges.release_pending_slot(user.id, challenge.id)
            record(
                db,
                "mfa.push_unavailable",
                now=now,
                outcome="failure",
                actor=user.sub,
                context=audit,
                device=device.id,
            )
            raise
        record(
            db,
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
        self, db: Session, *, answer: str, proof: DpopProof, now: datetime, audit: AuditContext
    ) -> tuple[Challenge, Outcome]:
        """Take the phone's answer to a challenge, once.

        Raises:
            AnswerRejectedError: unknown or expired challenge, not this device's key, a proof
                of possession by another key, a signature that does not cover this challenge,
                or a second answer.
        """
        challenges = self._challenges
        challenge = challenges.get(read_challenge_id(answer))
        if challenge is None or now.timestamp() >= challenge.expires_at:
            raise AnswerRejectedError()
        device = db.get(Device, challenge.device_id)
        if device is None or proof.thumbprint != device.key_thumbprint:
            raise AnswerRejectedError()
        verified = verify_answer(answer, challenge=challenge, device=device, now=now)
        if verified.decision == "deny":
            outcome = Outcome.REPORTED if verified.report else Outcome.DENIED
        elif challenge.is_backchannel or verified.number == challenge.number:
            outcome = Outcome.APPROVED
        else:
            outcome = Outcome.WRONG_NUMBER
        evidence = None
        if outcome == Outcome.APPROVED and challenge.authorization_details:
            # Kept before the outcome is told: the page that learns "approved" finds it.
            evidence = _keep_evidence(db, challenge, device, signed=verified.signed, now=now)
        ttl = max(challenge.expires_at - now.timestamp(), 0) + _OUTCOME_GRACE
        if not challenges.record_outcome(challenge.id, outcome, ttl=ttl):
            if evidence is not None:
                db.delete(evidence)  # answered already: this approval was never used
                db.commit()
            raise AnswerRejectedError()  # answered already: a challenge gets one answer
        challenges.release_pending_slot(challenge.user_id, challenge.id)
        if outcome in (Outcome.DENIED, Outcome.REPORTED):
            record_denial(db, challenge.user_id, now=now)
        user_sub = db.scalar(select(User.sub).where(User.id == challenge.user_id))
        record(
            db,
            _ANSWER_EVENTS[outcome],
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
        self, db: Session, *, challenge_id: str, proof: DpopProof, now: datetime
    ) -> Challenge:
        """The reverse path: a phone that scanned the login page's QR code fetches what it is
        asked to confirm. Only the phone the challenge was made for gets it, and only while
        open.

        Raises:
            AnswerRejectedError
        """
        challenge = self._challenges.get(challenge_id)
        if challenge is None or self._challenges.outcome(challenge, now=now) != Outcome.PENDING:
            raise AnswerRejectedError()
        device = db.get(Device, challenge.device_id)
        if (
            device is None
            or device.status != DeviceStatus.ACTIVE
            or proof.thumbprint != device.key_thumbprint
        ):
            raise AnswerRejectedError()
        return challenge

    def report_not_me(
        self,
        db: Session,
        challenge: Challenge,
        *,
        suspend: bool,
        now: datetime,
        audit: AuditContext,
    ) -> None:
        """ "This was not me": the helpdesk is alerted and, by policy, the phone's Soft Token
        is suspended (someone knows the password; the phone may be in the wrong hands too)."""
        device = db.get(Device, challenge.device_id)
        raise_alert(
            db,
            "mfa.reported_not_me",
            user_id=challenge.user_id,
            now=now,
            device=challenge.device_id,
            challenge=challenge.id,
            client=challenge.client_name,
            context=challenge.context,
        )
        if suspend and device is not None:
            suspend_device(
                db,
                device,
                reason="reported_not_me",
                revocations=self._revocations,
                access_token_ttl=self._access_token_ttl,
                now=now,
                audit=audit,
            )


def suspend_device(
    db: Session,
    device: Device,
    *,
    reason: str,
    revocations: RevocationList,
    access_token_ttl: int,
    now: datetime,
    audit: AuditContext,
    actor: str | None = None,
) -> bool:
    """The phone confirms nothing any more, and every session it confirmed ends (with its
    tokens and back-channel logout notices). False when it was suspended already."""
    if device.status == DeviceStatus.SUSPENDED:
        return False
    device.status = DeviceStatus.SUSPENDED
    device.suspended_at = now
    user_sub = db.scalar(select(User.sub).where(User.id == device.user_id))
    record(
        db,
        "mfa.device_suspended",
        now=now,
        actor=actor or user_sub,
        context=audit,
        user=user_sub,
        device=device.id,
        reason=reason,
    )
    confirmed = db.scalars(
        select(UserSession.id).where(
            UserSession.device_id == device.id, UserSession.ended_at.is_(None)
        )
    ).all()
    for sid in confirmed:
        end_session(
            db,
            revocations,
            sid,
            reason="device_suspended",
            now=now,
            access_token_ttl=access_token_ttl,
            actor=actor or user_sub,
            context=audit,
        )
    # A backchannel request this phone was asked, or approved but whose tokens were not
    # fetched yet, gives no tokens now.
    end_backchannel_requests(
        db,
        device.id,
        reason="device_suspended",
        now=now,
        actor=actor or user_sub,
        context=audit,
    )
    return True


def _keep_evidence(
    db: Session, challenge: Challenge, device: Device, *, signed: str, now: datetime
) -> TransactionEvidence:
    """Store the signed confirmation; committed at once.

    Raises:
        AnswerRejectedError: this challenge has evidence already (a duplicate answer).
    """
    if not challenge.authorization_details or not challenge.txn_hash:
        raise AnswerRejectedError()
    evidence = TransactionEvidence(
        id=secrets.token_hex(16),
        user_id=challenge.user_id,
        client_id=challenge.client_id,
        device_id=device.id,
        device_public_jwk=device.public_jwk,
        challenge_id=challenge.id,
        login_tx=challenge.login_tx,
        authorization_details=challenge.authorization_details,
        txn_hash=challenge.txn_hash,
        signed_answer=signed,
        confirmed_at=now,
    )
    db.add(evidence)
    try:
        db.commit()
    except IntegrityError as exc:
        db.rollback()
        raise AnswerRejectedError() from exc
    return evidence


def evidence_for(db: Session, challenge_id: str) -> TransactionEvidence | None:
    return db.scalar(
        select(TransactionEvidence).where(TransactionEvidence.challenge_id == challenge_id)
    )
