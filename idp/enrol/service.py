"""Registration: start and finish identity proofing, with every outcome audited.

A failure at any step leaves the account as it was: the evidence summary is written only when
the verified person is the account's person, in the same transaction as the state change.
"""

from __future__ import annotations

import secrets
import unicodedata
from datetime import datetime
from datetime import timedelta

from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts.models import User
from idp.audit.service import AuditContext
from idp.audit.service import record
from idp.enrol.errors import IdentityMismatchError
from idp.enrol.errors import ProofingStateError
from idp.enrol.errors import RegistrationClosedError
from idp.enrol.flow import EnrolmentState
from idp.enrol.flow import InvalidTransitionError
from idp.enrol.flow import advance
from idp.enrol.kyc import VerifiedIdentity
from idp.enrol.models import Enrolment
from idp.mfa.models import Device
from idp.mfa.models import DeviceStatus
from idp.store.secrets import DataCipher

_VERIFIER_CONTEXT = "enrolments.proofing_verifier"


def check_window(*, now: datetime, opens_at: datetime | None, closes_at: datetime | None) -> None:
    """Raises RegistrationClosedError outside the registration window (settings)."""
    if (opens_at is not None and now < opens_at) or (closes_at is not None and now >= closes_at):
        raise RegistrationClosedError()


def get_enrolment(db: Session, user: User, *, now: datetime) -> Enrolment:
    """The user's registration, created at its first step."""
    enrolment = db.get(Enrolment, user.id)
    if enrolment is None:
        enrolment = Enrolment(
            user_id=user.id, state=EnrolmentState.STARTED, created_at=now, updated_at=now
        )
        db.add(enrolment)
        db.flush()
    return enrolment


def state_of(enrolment: Enrolment) -> EnrolmentState:
    return EnrolmentState(enrolment.state)


class Proofing:
    """Identity proofing at Paotang: the attempt's secrets, kept encrypted, and its result."""

    def __init__(self, *, cipher: DataCipher, ial: str) -> None:
        self._cipher = cipher
        self._ial = ial

    def start_proofing(
        self, db: Session, user: User, *, now: datetime, context: AuditContext
    ) -> tuple[str, str, str]:
        """Begin a proofing attempt; return (state, nonce, PKCE verifier) to send to Paotang.

        Raises:
            InvalidTransitionError: already proofed, or rejected.
        """
        enrolment = get_enrolment(db, user, now=now)
        if state_of(enrolment) == EnrolmentState.COMPLETED and has_active_device(db, user):
            raise InvalidTransitionError()
        enrolment.state = advance(state_of(enrolment), EnrolmentState.PROOFING)
        state, nonce, verifier = (secrets.token_urlsafe(24) for _ in range(3))
        enrolment.proofing_state = state
        enrolment.proofing_nonce = nonce
        enrolment.proofing_verifier_encrypted = self._cipher.encrypt(
            verifier.encode(), context=f"{_VERIFIER_CONTEXT}:{user.id}"
        )
        enrolment.proofing_started_at = now
        enrolment.updated_at = now
        record(db, "enrol.proofing_started", now=now, actor=user.sub, context=context)
        return state, nonce, verifier

    def pending_proofing(
        self, db: Session, user: User, *, state: str
    ) -> tuple[Enrolment, str, str]:
        """The attempt this answer belongs to: (enrolment, nonce, verifier).

        Raises:
            ProofingStateError: no attempt of this user with that state is under way.
        """
        enrolment = db.get(Enrolment, user.id)
        if (
            enrolment is None
            or state_of(enrolment) != EnrolmentState.PROOFING
            or not enrolment.proofing_state
            or not secrets.compare_digest(enrolment.proofing_state.encode(), state.encode())
            or enrolment.proofing_nonce is None
            or enrolment.proofing_verifier_encrypted is None
        ):
            raise ProofingStateError()
        verifier = self._cipher.decrypt(
            enrolment.proofing_verifier_encrypted, context=f"{_VERIFIER_CONTEXT}:{user.id}"
        ).decode()
        return enrolment, enrolment.proofing_nonce, verifier

    def record_proofing_result(
        self,
        db: Session,
        user: User,
        enrolment: Enrolment,
        identity: VerifiedIdentity,
        *,
        now: datetime,
        context: AuditContext,
    ) -> None:
        """Accept Paotang's verified identity for this account, or stop the registration.

        Durable on its own when the identity does not match: the rejection and its audit
        event are committed before the error is raised.

        Raises:
            IdentityMismatchError
        """
        _end_attempt(enrolment, now)
        if not matches_account(user, identity, self._cipher):
            enrolment.state = advance(state_of(enrolment), EnrolmentState.REJECTED)
            enrolment.rejected_reason = "identity_mismatch"
            record(
                db,
                "enrol.identity_mismatch",
                now=now,
                outcome="failure",
                actor=user.sub,
                context=context,
                provider_txn=identity.transaction,
            )
            db.commit()
            raise IdentityMismatchError()
        enrolment.state = advance(state_of(enrolment), EnrolmentState.PROOFED)
        user.identity_proofed_at = now
        user.identity_evidence = {
            "provider": "paotang",
            "trust_framework": identity.trust_framework,
            "evidence": "document",
            "document_type": "idcard",
            "check_methods": list(identity.check_methods),
            "verified_at": identity.verified_at.isoformat(),
            "ial": self._ial,
            "provider_txn": identity.transaction,
            # What Paotang vouched for: only these may later be released as verified claims.
            "verified_names": {
                "given_name": identity.given_name_th,
                "family_name": identity.family_name_th,
                "given_name#en": identity.given_name_en,
                "family_name#en": identity.family_name_en,
            },
        }
        record(
            db,
            "enrol.identity_proofed",
            now=now,
            actor=user.sub,
            context=context,
            trust_framework=identity.trust_framework,
            ial=self._ial,
            provider_txn=identity.transaction,
        )


def record_proofing_refused(
    db: Session,
    user: User,
    enrolment: Enrolment,
    *,
    reason: str,
    now: datetime,
    context: AuditContext,
) -> None:
    """Paotang did not verify the person (or could not be used): the attempt ends, the user
    may try again. Durable on its own (the answer to the user is an error page)."""
    _end_attempt(enrolment, now)
    record(
        db,
        "enrol.proofing_failed",
        now=now,
        outcome="failure",
        actor=user.sub,
        context=context,
        reason=reason[:64],
    )
    db.commit()


def expire_abandoned(db: Session, *, now: datetime, proofing_ttl: timedelta) -> int:
    """Forget half-done steps: proofing attempts never answered and activation codes past
    their time. The registration itself stays where it was, ready to resume."""
    expired = 0
    for enrolment in db.scalars(
        select(Enrolment).where(
            or_(
                Enrolment.proofing_started_at < now - proofing_ttl,
                Enrolment.activation_expires_at < now,
            )
        )
    ):
        started = enrolment.proofing_started_at
        if enrolment.proofing_state and started and started < now - proofing_ttl:
            _end_attempt(enrolment, now)
            expired += 1
        if enrolment.activation_expires_at and enrolment.activation_expires_at < now:
            enrolment.activation_code_hash = None
            enrolment.activation_expires_at = None
            enrolment.activation_nonce = None
            enrolment.activation_nonce_expires_at = None
            expired += 1
    return expired


def _end_attempt(enrolment: Enrolment, now: datetime) -> None:
    enrolment.proofing_state = None
    enrolment.proofing_nonce = None
    enrolment.proofing_verifier_encrypted = None
    enrolment.updated_at = now


def has_active_device(db: Session, user: User) -> bool:
    return (
        db.scalar(
            select(Device.id).where(Device.user_id == user.id, Device.status == DeviceStatus.ACTIVE)
        )
        is not None
    )


def proofing_is_fresh(user: User, *, now: datetime, valid_for: timedelta) -> bool:
    """A phone may be bound only shortly after the person proved who they are."""
    return user.identity_proofed_at is not None and now < user.identity_proofed_at + valid_for


def names_agree(ours: str, theirs: str) -> bool:
    return _same(ours, theirs)


def matches_account(user: User, identity: VerifiedIdentity, cipher: DataCipher) -> bool:
    """The verified citizen ID is the account's; the names agree, leniently (whitespace,
    case, Unicode forms; Thai or English spelling)."""
    if user.citizen_id_hash is None:
        return False
    if not secrets.compare_digest(
        cipher.keyed_hash(identity.citizen_id, purpose="citizen_id"), user.citizen_id_hash
    ):
        return False
    thai = _same(user.given_name_th, identity.given_name_th) and _same(
        user.family_name_th, identity.family_name_th
    )
    english = _same(user.given_name_en, identity.given_name_en) and _same(
        user.family_name_en, identity.family_name_en
    )
    return thai or english


def _same(ours: str, theirs: str) -> bool:
    def fold(value: str) -> str:
        return "".join(unicodedata.normalize("NFKC", value).casefold().split())

    return bool(fold(ours)) and fold(ours) == fold(theirs)
