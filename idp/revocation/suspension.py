"""Lost phones and suspended accounts: one operation ends everything the phone (or the
account) could still do, and a lost-device case waits for the head of unit's letter.

Suspending a phone, in the caller's transaction: the device confirms nothing any more; every
session it confirmed ends, with its token families (offline ones too) and access tokens, and
the relying parties are owed back-channel logout tokens; pending pushes are withdrawn; a case
is opened with the letter due in three Thai working days; subscribed relying parties are owed
CAEP session-revoked and credential-change events. The caller commits, then announces the
notices so every instance's sender delivers them at once.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.accounts.models import User
from idp.accounts.models import UserSession
from idp.accounts.models import UserStatus
from idp.audit.service import AuditContext
from idp.audit.service import record
from idp.errors import IdpError
from idp.mfa.challenges import ChallengeStore
from idp.mfa.models import Device
from idp.mfa.models import DeviceStatus
from idp.mfa.passkeys import suspend_passkeys
from idp.mfa.service import suspend_device
from idp.oidc.models import Grant
from idp.revocation.loss import Loss
from idp.revocation.models import LETTER_REASONS
from idp.revocation.models import AccessPass
from idp.revocation.models import CallerCheck
from idp.revocation.models import CaseKind
from idp.revocation.models import CaseLetter
from idp.revocation.models import LostDeviceCase
from idp.revocation.models import SuspensionReason
from idp.revocation.security_events import CredentialChange
from idp.revocation.security_events import SessionRevoked
from idp.revocation.security_events import queue_security_events
from idp.revocation.service import RevocationList
from idp.revocation.service import end_backchannel_requests
from idp.revocation.service import end_session
from idp.revocation.service import revoke_grant
from idp.revocation.working_days import WorkingCalendar
from idp.roles.authority import Acting
from idp.roles.authority import Authority
from idp.roles.models import Unit
from idp.roles.orders import OrderDocument
from idp.roles.periods import thai_date
from idp.store.db import one_writer_at_a_time
from idp.store.ephemeral import EphemeralStoreError
from idp.store.secrets import sha256_hex

log = logging.getLogger(__name__)


class SuspensionError(IdpError):
    code = "invalid_request"


class NoPhoneError(SuspensionError):
    code = "no_phone"
    message = "This user has no phone bound to the Soft Token."


class UnknownReasonError(SuspensionError):
    code = "invalid_reason"
    message = "The reason must be lost, stolen, compromised or other."


class UnknownCaseError(SuspensionError):
    code = "unknown_case"
    message = "No lost-device case has that id."


class CaseClosedError(SuspensionError):
    code = "case_closed"
    message = "The letter for this case has been received already."


class NoLetterDueError(SuspensionError):
    code = "no_letter_due"
    message = "This case is an investigation: no letter is due unless the phone was lost."


class NotInvestigationError(SuspensionError):
    code = "not_investigation"
    message = "Only an open investigation can be declared a lost phone or closed."


class NotSuspendedError(SuspensionError):
    code = "not_suspended"
    message = "The account is not suspended."


CALLER_CHECKS = tuple(CallerCheck)


class UnknownCheckError(SuspensionError):
    code = "invalid_verified"
    message = "verified lists caller checks: citizen_id, unit, callback, head_of_unit."


def validate_checks(items: object) -> list[str]:
    """The caller checks named, in the checklist's order.

    Raises:
        UnknownCheckError
    """
    if items is None:
        return []
    # Each item a string before comparing: a list of objects is a refusal, not a TypeError.
    if not isinstance(items, list) or not all(
        isinstance(item, str) and item in CALLER_CHECKS for item in items
    ):
        raise UnknownCheckError()
    return [item.value for item in CALLER_CHECKS if item in items]


@dataclass(frozen=True)
class Revoker:
    """What ending things needs from the running IdP."""

    revocations: RevocationList
    challenges: ChallengeStore
    access_token_ttl: int


@dataclass(frozen=True)
class PhoneSuspension:
    case: LostDeviceCase
    already_suspended: bool  # the phone was suspended before: nothing more was done
    sessions_ended: int


def reason_of(value: str) -> SuspensionReason:
    try:
        return SuspensionReason(value)
    except ValueError as exc:
        raise UnknownReasonError() from exc


class Suspensions:
    """Suspending phones and accounts, lost-device cases and Temporary Access Passes, built
    once per process with what never changes in it; each call takes the database session
    ``db`` and what the request brings."""

    def __init__(
        self,
        revoker: Revoker,
        calendar: WorkingCalendar,
        *,
        letter_days: int,
        access_pass_ttl: timedelta,
    ) -> None:
        self.revoker = revoker
        self.calendar = calendar
        self.letter_days = letter_days
        self.access_pass_ttl = access_pass_ttl

    def suspend_phone(
        self,
        db: Session,
        user: User,
        *,
        reason: SuspensionReason,
        loss: Loss,
        channel: str,
        actor: str,
        now: datetime,
        audit: AuditContext,
        verified: Sequence[str] = (),
    ) -> PhoneSuspension:
        """Suspend the user's bound phone; idempotent (a second call answers with the open
        case). A lost or stolen phone's letter is due ``letter_days`` Thai working days after
        the day of the ``loss``; any other reason opens an investigation. ``verified``: what the
        helpdesk checked of the caller, recorded (a suspension never waits for it: it is the
        safe way).

        Raises:
            NoPhoneError: the user never bound a phone.
        """
        report = _Report(reason, loss, channel, actor, now, tuple(verified))
        # SECURITY: the device row is locked, and a login finishing now locks it too before it
        # creates its session: either that session exists and is ended here, or the login sees
        # the phone suspended and creates none. (SQLite: its one write lock, taken first.)
        one_writer_at_a_time(db)
        device = db.scalar(
            select(Device)
            .where(Device.user_id == user.id, Device.status == DeviceStatus.ACTIVE)
            .with_for_update()
        )
        if device is None:
            return self._already_suspended(db, user, report)
        revoker = self.revoker
        confirmed = select(UserSession.id).where(UserSession.device_id == device.id)
        sids = list(db.scalars(confirmed.where(UserSession.ended_at.is_(None))))
        suspend_device(
            db,
            device,
            reason=reason.value,
            revocations=revoker.revocations,
            access_token_ttl=revoker.access_token_ttl,
            now=now,
            audit=audit,
            actor=actor,
        )
        # Every token family a login on this phone started, offline ones of sessions that ended
        # long ago included: a refresh token must not outlive the phone that stood behind it.
        self._revoke_grants(
            db, Grant.session_id.in_(confirmed), reason="device_suspended", now=now, audit=audit
        )
        # A passkey may live on the lost phone, or have been added by whoever holds it.
        passkeys = suspend_passkeys(
            db, user, reason=f"phone_{reason.value}", now=now, actor=actor, audit=audit
        )
        self._withdraw_pushes(user, now)
        case = self._open_case(db, user, device, report)
        queue_security_events(
            db,
            user_sub=user.sub,
            events=[
                SessionRevoked(sids=tuple(sids)),
                CredentialChange(friendly_name="Nexus Smart ID phone"),
            ],
            now=now,
            reason=f"phone reported {reason.value}",
            initiating_entity="user" if channel == "self" else "admin",
        )
        record(
            db,
            "revocation.phone_suspended",
            now=now,
            actor=actor,
            context=audit,
            user=user.sub,
            device=device.id,
            reason=reason.value,
            channel=channel,
            case=case.id,
            kind=case.kind.value,
            sessions=len(sids),
            passkeys=passkeys,
            lost_on=case.lost_on.isoformat(),
            letter_due=case.letter_due.isoformat() if case.letter_due else None,
            overdue_when_reported=overdue_when_reported(case),
            verified=list(verified),
        )
        return PhoneSuspension(case=case, already_suspended=False, sessions_ended=len(sids))

    def _already_suspended(self, db: Session, user: User, report: _Report) -> PhoneSuspension:
        """No working phone: answer with the case of the phone suspended last. A phone
        suspended another way ("this was not me") gets its case now, so the letter is still
        asked for.

        Raises:
            NoPhoneError: the user never bound a phone.
        """
        device = db.scalar(
            select(Device)
            .where(Device.user_id == user.id, Device.status == DeviceStatus.SUSPENDED)
            .order_by(Device.suspended_at.desc())
            .limit(1)
        )
        if device is None:
            raise NoPhoneError()
        case = db.scalar(select(LostDeviceCase).where(LostDeviceCase.device_id == device.id))
        if case is None:
            case = self._open_case(db, user, device, report)
        return PhoneSuspension(case=case, already_suspended=True, sessions_ended=0)

    def _open_case(
        self, db: Session, user: User, device: Device, report: _Report
    ) -> LostDeviceCase:
        lost = report.reason in LETTER_REASONS
        loss = report.loss
        case = LostDeviceCase(
            id=secrets.token_hex(16),
            user_id=user.id,
            device_id=device.id,
            reason=report.reason,
            kind=CaseKind.LOST if lost else CaseKind.INVESTIGATION,
            verified=list(report.verified),
            channel=report.channel,
            reported_at=report.now,
            reported_by=report.actor,
            lost_on=loss.day,
            lost_at=loss.moment,
            letter_due=loss.letter_due(self.calendar, self.letter_days) if lost else None,
        )
        db.add(case)
        return case

    def suspend_account(
        self,
        db: Session,
        user: User,
        acting: Acting,
        *,
        reason: str,
    ) -> bool:
        """ระงับสิทธิ: the account signs in nowhere; every session and token family ends.
        The helpdesk or CGD may; False when it was suspended already.

        Raises:
            NotAllowedError
        """
        by = acting.by
        by.require(by.may_suspend())
        locked = db.scalar(select(User).where(User.id == user.id).with_for_update())
        if locked is None or locked.status == UserStatus.SUSPENDED:
            return False
        locked.status = UserStatus.SUSPENDED
        sids = list(
            db.scalars(
                select(UserSession.id).where(
                    UserSession.user_id == user.id, UserSession.ended_at.is_(None)
                )
            )
        )
        for sid in sids:
            end_session(
                db,
                self.revoker.revocations,
                sid,
                reason="account_suspended",
                now=acting.now,
                access_token_ttl=self.revoker.access_token_ttl,
                actor=acting.actor,
                context=acting.audit,
            )
        self._revoke_grants(
            db,
            Grant.user_id == user.id,
            reason="account_suspended",
            now=acting.now,
            audit=acting.audit,
        )
        self._withdraw_pushes(user, acting.now)
        # SECURITY: a backchannel request approved but not yet redeemed gives tokens to no one,
        # not even once the suspension is lifted (as for a suspended phone).
        end_backchannel_requests(
            db,
            user_id=user.id,
            reason="account_suspended",
            now=acting.now,
            actor=acting.actor,
            context=acting.audit,
        )
        queue_security_events(
            db,
            user_sub=user.sub,
            events=[SessionRevoked(sids=tuple(sids))],
            now=acting.now,
            reason="account suspended",
            initiating_entity="admin",
        )
        record(
            db,
            "account.suspended",
            now=acting.now,
            actor=acting.actor,
            context=acting.audit,
            user=user.sub,
            reason=reason[:500],
            sessions=len(sids),
        )
        return True

    def lift_account_suspension(
        self,
        db: Session,
        user: User,
        acting: Acting,
        *,
        reason: str,
    ) -> None:
        """Only an administrator lifts a suspension (CGD, or the treasury office of the user's
        unit); never the helpdesk that suspends.

        Raises:
            NotAllowedError, NotSuspendedError
        """
        unit = db.get(Unit, user.unit_code) if user.unit_code else None
        by = acting.by
        by.require(by.is_cgd or (unit is not None and by.may_manage(unit)))
        if user.status != UserStatus.SUSPENDED:
            raise NotSuspendedError()
        user.status = UserStatus.ACTIVE
        record(
            db,
            "account.suspension_lifted",
            now=acting.now,
            actor=acting.actor,
            context=acting.audit,
            user=user.sub,
            reason=reason[:500],
        )

    def receive_letter(
        self,
        db: Session,
        case_id: str,
        letter: OrderDocument,
        acting: Acting,
    ) -> LostDeviceCase:
        """The head of unit's letter (or the helpdesk filing it on their behalf) closes the
        case.

        Raises:
            UnknownCaseError, CaseClosedError, NotAllowedError
        """
        case, user = _locked_case(db, case_id)
        unit = db.get(Unit, user.unit_code) if user and user.unit_code else None
        by = acting.by
        by.require(by.may_suspend() or (unit is not None and unit.code in by.units))
        if case.closed_at is not None:
            raise CaseClosedError()
        if case.letter_due is None:
            raise NoLetterDueError()
        case.letter_filename = letter.filename
        case.letter_media_type = letter.media_type
        case.letter_sha256 = letter.sha256
        case.letter_received_at = acting.now
        case.letter_received_by = acting.actor
        case.closed_at = acting.now
        db.add(CaseLetter(case_id=case.id, content=letter.content))
        record(
            db,
            "revocation.case_letter_received",
            now=acting.now,
            actor=acting.actor,
            context=acting.audit,
            case=case.id,
            user=user.sub if user else None,
            sha256=letter.sha256,
            late=thai_date(acting.now) > case.letter_due,
        )
        return case

    def declare_lost(
        self,
        db: Session,
        case_id: str,
        loss: Loss,
        acting: Acting,
    ) -> LostDeviceCase:
        """The head of unit says the phone of an investigation was lost after all: from now on
        the letter is due, counted from the day of the loss.

        Raises:
            UnknownCaseError, NotAllowedError, NotInvestigationError
        """
        case, user = _locked_case(db, case_id)
        acting.by.require(user is not None and user.unit_code in acting.by.units)
        if case.kind != CaseKind.INVESTIGATION or case.closed_at is not None:
            raise NotInvestigationError()
        case.kind = CaseKind.LOST
        case.lost_on, case.lost_at = loss.day, loss.moment
        case.letter_due = loss.letter_due(self.calendar, self.letter_days)
        record(
            db,
            "revocation.case_declared_lost",
            now=acting.now,
            actor=acting.actor,
            context=acting.audit,
            case=case.id,
            user=user.sub if user else None,
            lost_on=loss.day.isoformat(),
            letter_due=case.letter_due.isoformat(),
        )
        return case

    def close_investigation(
        self,
        db: Session,
        case_id: str,
        finding: str,
        acting: Acting,
    ) -> LostDeviceCase:
        """The helpdesk closes an investigation with what it found; the phone stays suspended.

        Raises:
            UnknownCaseError, NotAllowedError, NotInvestigationError
        """
        by = acting.by
        by.require(by.may_suspend())
        case, user = _locked_case(db, case_id)
        if case.kind != CaseKind.INVESTIGATION or case.closed_at is not None:
            raise NotInvestigationError()
        case.closed_at = acting.now
        record(
            db,
            "revocation.investigation_closed",
            now=acting.now,
            actor=acting.actor,
            context=acting.audit,
            case=case.id,
            user=user.sub if user else None,
            finding=finding[:500],
        )
        return case

        # --- Temporary Access Pass --------------------------------------------------------------

    def issue_access_pass(
        self,
        db: Session,
        user: User,
        acting: Acting,
    ) -> str:
        """A one-time pass, shown once to the helpdesk who verified the caller; it only lets
        the user start registering a new phone. Earlier unused passes of the user die.

        Raises:
            NotAllowedError, SuspensionError (the user still has a working phone)
        """
        by = acting.by
        by.require(by.may_suspend())
        working = select(Device.id).where(
            Device.user_id == user.id, Device.status == DeviceStatus.ACTIVE
        )
        if db.scalar(working):
            raise SuspensionError(
                "The user's phone still works: suspend it before re-registration."
            )
        for earlier in db.scalars(
            select(AccessPass).where(AccessPass.user_id == user.id, AccessPass.used_at.is_(None))
        ):
            earlier.expires_at = min(earlier.expires_at, acting.now)
        code = "-".join("".join(secrets.choice(_PASS_ALPHABET) for _ in range(4)) for _ in range(3))
        ttl = self.access_pass_ttl
        db.add(
            AccessPass(
                id=secrets.token_hex(16),
                user_id=user.id,
                code_hash=sha256_hex(_norm(code)),
                issued_by=acting.actor,
                issued_at=acting.now,
                expires_at=acting.now + ttl,
            )
        )
        record(
            db,
            "revocation.access_pass_issued",
            now=acting.now,
            actor=acting.actor,
            context=acting.audit,
            user=user.sub,
            expires_in=int(ttl.total_seconds()),
        )
        return code

    def redeem_access_pass(
        self, db: Session, user: User, code: str, *, now: datetime, audit: AuditContext
    ) -> bool:
        """Use the pass (once); False for a wrong, used or expired one."""
        row = db.scalar(
            select(AccessPass)
            .where(AccessPass.code_hash == sha256_hex(_norm(code)), AccessPass.user_id == user.id)
            .with_for_update()
        )
        if row is None or row.used_at is not None or row.expires_at <= now:
            record(
                db,
                "revocation.access_pass_refused",
                now=now,
                outcome="failure",
                actor=user.sub,
                context=audit,
            )
            return False
        row.used_at = now
        record(db, "revocation.access_pass_used", now=now, actor=user.sub, context=audit)
        return True

    def _revoke_grants(
        self, db: Session, condition: object, *, reason: str, now: datetime, audit: AuditContext
    ) -> None:
        """Every live token family matching ``condition``, offline ones included."""
        grants = db.scalars(select(Grant).where(condition, Grant.revoked_at.is_(None)))  # type: ignore[arg-type]
        for grant in grants.all():
            revoke_grant(db, self.revoker.revocations, grant, reason=reason, now=now, context=audit)

    def _withdraw_pushes(self, user: User, now: datetime) -> None:
        """A push waiting on the lost phone can no longer be answered (it could not be anyway:
        answers need an active device; this tells the waiting page at once)."""
        challenges = self.revoker.challenges
        try:
            pending = challenges.pending_for(user.id, now=now)
            if pending is not None:
                challenges.withdraw(pending, now=now)
        except EphemeralStoreError:
            log.warning("idp.revocation.push_withdrawal_failed")


@dataclass(frozen=True)
class _Report:
    """What the suspension of a phone was told: its case records it."""

    reason: SuspensionReason
    loss: Loss
    channel: str
    actor: str
    now: datetime
    verified: tuple[str, ...]


def _locked_case(db: Session, case_id: str) -> tuple[LostDeviceCase, User | None]:
    """Raises UnknownCaseError."""
    case = db.scalar(select(LostDeviceCase).where(LostDeviceCase.id == case_id).with_for_update())
    if case is None:
        raise UnknownCaseError()
    return case, db.get(User, case.user_id)


def cases_for(db: Session, by: Authority, *, open_only: bool = True) -> list[LostDeviceCase]:
    """The helpdesk, CGD and auditors see every case; a head of unit those of their unit."""
    query = select(LostDeviceCase).order_by(
        LostDeviceCase.letter_due.is_(None), LostDeviceCase.letter_due, LostDeviceCase.reported_at
    )
    if open_only:
        query = query.where(LostDeviceCase.closed_at.is_(None))
    if not (by.may_suspend() or by.may_read_everything()):
        query = query.join(User, User.id == LostDeviceCase.user_id).where(
            User.unit_code.in_(by.units)
        )
    return list(db.scalars(query.limit(500)))


def may_see_case(by: Authority, user: User) -> bool:
    """As ``cases_for``: the helpdesk, CGD and auditors every case, a head of unit their unit's."""
    return by.may_suspend() or by.may_read_everything() or user.unit_code in by.units


def usernames(db: Session, user_ids: set[str]) -> dict[str, str]:
    rows = db.execute(select(User.id, User.username).where(User.id.in_(user_ids)))
    return {user_id: username for user_id, username in rows}


def is_overdue(case: LostDeviceCase, now: datetime) -> bool:
    return (
        case.closed_at is None and case.letter_due is not None and thai_date(now) > case.letter_due
    )


def overdue_when_reported(case: LostDeviceCase) -> bool:
    """Reported after the letter's last day: the case opens late and says so."""
    return case.letter_due is not None and thai_date(case.reported_at) > case.letter_due


_PASS_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def needs_access_pass(db: Session, user: User) -> bool:
    """A user whose phone was suspended and who has no working one: re-registration starts
    with the helpdesk's pass (the password alone may be what the finder of the phone has)."""
    statuses = set(db.scalars(select(Device.status).where(Device.user_id == user.id)))
    return DeviceStatus.SUSPENDED in statuses and DeviceStatus.ACTIVE not in statuses


def _norm(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())
