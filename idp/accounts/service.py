"""Issuing accounts, checking passwords and changing them."""

from __future__ import annotations

import logging
from datetime import datetime
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from idp.accounts import citizen_id as citizen_ids
from idp.accounts.errors import AttemptThrottledError
from idp.accounts.errors import InvalidCredentialsError
from idp.accounts.errors import UsernameTakenError
from idp.accounts.models import LoginFailure
from idp.accounts.models import PasswordHistory
from idp.accounts.models import User
from idp.accounts.passwords import ChangeReason
from idp.accounts.passwords import hash_password
from idp.accounts.passwords import needs_rehash
from idp.accounts.passwords import validate_new_password
from idp.accounts.passwords import verify_password
from idp.accounts.throttle import ThrottlePolicy
from idp.audit.service import NO_CONTEXT
from idp.audit.service import AuditContext
from idp.audit.service import record
from idp.store.db import is_postgresql
from idp.store.ephemeral import EphemeralStore
from idp.store.ephemeral import EphemeralStoreError
from idp.store.ephemeral import Keys
from idp.store.secrets import DataCipher

log = logging.getLogger(__name__)


def normalise_username(username: str) -> str:
    return username.strip().casefold()


def get_user_by_username(db: Session, username: str) -> User | None:
    return db.scalar(select(User).where(User.username == normalise_username(username)))


class Accounts:
    """Issuing accounts and changing passwords, under the password rules of this process."""

    def __init__(
        self, *, cipher: DataCipher, temporary_ttl: int, min_length: int, history: int
    ) -> None:
        """``history`` is how many recent passwords, the current one included, may not be
        chosen again."""
        self._cipher = cipher
        self._temporary_ttl = temporary_ttl
        self._min_length = min_length
        self._history = history

    def create_user(
        self,
        db: Session,
        *,
        username: str,
        password: str,
        now: datetime,
        temporary: bool,
        citizen_id: str | None = None,
        given_name_th: str = "",
        family_name_th: str = "",
        given_name_en: str = "",
        family_name_en: str = "",
        email: str | None = None,
        actor: str | None = None,
        context: AuditContext = NO_CONTEXT,
    ) -> User:
        """Issue an account; a temporary password must be changed at first login.

        Raises:
            UsernameTakenError, CitizenIdError, PasswordPolicyError.
        """
        name = normalise_username(username)
        if not name or get_user_by_username(db, name) is not None:
            raise UsernameTakenError()
        validate_new_password(
            password, username=name, min_length=self._min_length, current_hash=None
        )
        expires_at = now + timedelta(seconds=self._temporary_ttl) if temporary else None
        user = User(
            username=name,
            password_hash=hash_password(password),
            must_change_password=temporary,
            password_change_reason=ChangeReason.ISSUED if temporary else None,
            password_changed_at=None if temporary else now,
            temporary_password_expires_at=expires_at,
            given_name_th=given_name_th,
            family_name_th=family_name_th,
            given_name_en=given_name_en,
            family_name_en=family_name_en,
            email=email,
            created_at=now,
        )
        if citizen_id is not None:
            number = citizen_ids.validate(citizen_id)
            user.citizen_id_encrypted = self._cipher.encrypt(
                number.encode(), context="users.citizen_id"
            )
            user.citizen_id_hash = self._cipher.keyed_hash(number, purpose="citizen_id")
        db.add(user)
        db.flush()
        record(db, "account.created", now=now, actor=actor, context=context, user=user.sub)
        return user

    def change_password(
        self,
        db: Session,
        user: User,
        *,
        new_password: str,
        now: datetime,
        reason: str | None = None,
        context: AuditContext = NO_CONTEXT,
    ) -> None:
        """Set a password the user chose (after the old one was verified by the caller).

        The current hash joins the history and older entries are deleted. ``reason`` is why
        the change was asked for (a ``ChangeReason``), for the audit trail.

        Raises:
            PasswordPolicyError
        """
        former = _password_history(db, user)
        recent = self._history - 1  # the current password, on the user, is one of them
        validate_new_password(
            new_password,
            username=user.username,
            min_length=self._min_length,
            current_hash=user.password_hash,
            previous_hashes=[entry.password_hash for entry in former[:recent]],
        )
        _remember_current(db, user, former, recent=recent, now=now)
        user.password_hash = hash_password(new_password)
        user.must_change_password = False
        user.password_change_reason = None
        user.temporary_password_expires_at = None
        user.password_changed_at = now
        record(
            db,
            "account.password_changed",
            now=now,
            actor=user.sub,
            context=context,
            reason=reason,
        )

    def reset_login_failures(self, db: Session, username: str) -> None:
        """Lift a lock-out (an administrator's action)."""
        key = self._cipher.keyed_hash(normalise_username(username), purpose="login_username")
        db.execute(update(LoginFailure).where(LoginFailure.username_hash == key).values(failures=0))


class PasswordAuthenticator:
    """The password step: verify a password under brute-force protection."""

    def __init__(
        self,
        *,
        policy: ThrottlePolicy,
        cipher: DataCipher,
        store: EphemeralStore,
        keys: Keys,
    ) -> None:
        self._policy = policy
        self._cipher = cipher
        self._store = store
        self._keys = keys

    def verify_password_login(
        self,
        db: Session,
        *,
        username: str,
        password: str,
        now: datetime,
        context: AuditContext,
    ) -> User:
        """Return the user whose password this is, or raise one generic error.

        Durable on its own: commits the failure count and the audit event before raising, so
        that the caller's rollback cannot undo them.

        Raises:
            InvalidCredentialsError: for every kind of failure alike.
        """
        name = normalise_username(username)[:64]
        if self._ip_is_blocked(context.client_ip):
            return self._fail(db, name, now, context, reason="ip_throttled", count=False)
        key = self._cipher.keyed_hash(name, purpose="login_username")
        counter = self._lock_counter(db, key, now)
        if self._policy.is_blocked(counter.failures, counter.last_failure_at, now):
            # SECURITY: while blocked the password is not checked and the attempt is not
            # counted, so a locked account cannot be brute-forced nor locked for longer.
            return self._fail(db, name, now, context, reason="throttled", count=False)

        user = db.scalar(select(User).where(User.username == name))
        password_ok = verify_password(user.password_hash if user else None, password)
        if user is None or not password_ok:
            return self._fail(db, name, now, context, reason="bad_credentials")
        if not user.is_active:
            return self._fail(db, name, now, context, reason="account_suspended")
        # Only an issued (temporary) password stops working; an expired one, or one to change
        # after a role change, still signs in and is changed as a step of the login.
        expiry = user.temporary_password_expires_at
        if user.must_change_password and expiry is not None and expiry <= now:
            return self._fail(db, name, now, context, reason="temporary_password_expired")

        # The run of consecutive failures ends when the whole login succeeds (``succeeded``),
        # not here: a right password followed by wrong phone answers is still a failed run.
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        record(db, "login.password", now=now, actor=user.sub, context=context)
        return user

    def verify_may_attempt(
        self, db: Session, user: User, *, now: datetime, context: AuditContext
    ) -> None:
        """Lock the account's failure counter for a later factor's attempt (a code, a passkey,
        the current password), and refuse it while the failures block one.

        The lock is held until the caller's transaction ends, so parallel attempts are
        evaluated one after another and never more than the throttle allows (NIST SP 800-63B-4
        §3.2.2). Refusals are audited but not counted, as at the password step.

        Raises:
            AttemptThrottledError: durable on its own (commits the audit event).
        """
        counter = self._lock_counter(db, self._key(user.username), now)
        if self._policy.is_blocked(counter.failures, counter.last_failure_at, now):
            record(
                db,
                "login.failed",
                now=now,
                outcome="failure",
                actor=user.sub,
                context=context,
                reason="throttled",
            )
            db.commit()
            raise AttemptThrottledError()

    def verify_current_password(
        self, db: Session, user: User, password: str, *, now: datetime, context: AuditContext
    ) -> None:
        """The current password asked again (at a password change): counted exactly like a
        wrong password at the password step, under the same lock and lock-out.

        Raises:
            AttemptThrottledError, InvalidCredentialsError: durable (they commit).
        """
        self.verify_may_attempt(db, user, now=now, context=context)
        if not verify_password(user.password_hash, password):
            self.count_failure(db, user, now=now, context=context, reason="wrong_current_password")
            raise InvalidCredentialsError()

    def is_throttled(self, db: Session, user: User, now: datetime) -> bool:
        """Whether the account's failures block a further attempt now (any factor). A read
        without a lock: for decisions that evaluate no answer (whether to send a push)."""
        counter = db.get(LoginFailure, self._key(user.username))
        return counter is not None and self._policy.is_blocked(
            counter.failures, counter.last_failure_at, now
        )

    def count_failure(
        self, db: Session, user: User, *, now: datetime, context: AuditContext, reason: str
    ) -> None:
        """A failed later factor (wrong number, wrong code) counts as a failed attempt of the
        account, as a wrong password does (NIST SP 800-63B-4 §3.2.2). Durable: commits."""
        counter = self._lock_counter(db, self._key(user.username), now)
        counter.failures += 1
        counter.last_failure_at = now
        self._count_ip_failure(context.client_ip)
        record(
            db,
            "login.failed",
            now=now,
            outcome="failure",
            actor=user.sub,
            context=context,
            reason=reason,
        )
        db.commit()

    def succeeded(self, db: Session, user: User) -> None:
        """NIST SP 800-63B-4 §3.2.2: a complete login ends the run of consecutive failures.
        The row stays (reset), so a parallel attempt waiting for its lock still finds it."""
        db.execute(
            update(LoginFailure)
            .where(LoginFailure.username_hash == self._key(user.username))
            .values(failures=0)
        )

    def _key(self, username: str) -> str:
        return self._cipher.keyed_hash(normalise_username(username), purpose="login_username")

    def _lock_counter(self, db: Session, key: str, now: datetime) -> LoginFailure:
        # Every username gets a row to lock, so parallel guesses at one account are counted
        # one after another and cannot slip past the cap together.
        locked = select(LoginFailure).where(LoginFailure.username_hash == key).with_for_update()
        postgres = is_postgresql(db)
        if postgres:
            # A username tried before has its row: the lock alone is then one round trip
            # (inserting first cost another on every login). Whether the row exists tells
            # only that the name was tried, never whether the account exists.
            counter = db.scalar(locked)
            if counter is not None:
                return counter
        # SQLite ignores FOR UPDATE: there the insert (even of nothing) takes the database's
        # write lock first, which serialises the attempts instead.
        insert = postgresql.insert if postgres else sqlite.insert
        for _ in range(3):
            db.execute(
                insert(LoginFailure)
                .values(username_hash=key, failures=0, last_failure_at=now)
                .on_conflict_do_nothing(index_elements=["username_hash"])
            )
            counter = db.scalar(locked)
            if counter is not None:
                return counter
            # Purged between the insert and the lock (housekeeping): insert it again.
        raise RuntimeError("login failure counter could not be locked")

    def _fail(
        self,
        db: Session,
        name: str,
        now: datetime,
        context: AuditContext,
        *,
        reason: str,
        count: bool = True,
    ) -> User:
        if count:
            key = self._cipher.keyed_hash(name, purpose="login_username")
            counter = db.get(LoginFailure, key)
            if counter is not None:
                counter.failures += 1
                counter.last_failure_at = now
            self._count_ip_failure(context.client_ip)
        record(
            db,
            "login.failed",
            now=now,
            outcome="failure",
            actor=name,
            context=context,
            reason=reason,
        )
        db.commit()
        raise InvalidCredentialsError()

    def _ip_is_blocked(self, ip: str | None) -> bool:
        if not ip:
            return False
        try:
            value = self._store.get(self._keys.login_ip_failures(ip))
        except EphemeralStoreError:
            log.warning("idp.login.ip_counter_unavailable")
            return False  # the per-account counter in the database still holds
        return value is not None and int(value) >= self._policy.ip_failure_limit

    def _count_ip_failure(self, ip: str | None) -> None:
        if not ip:
            return
        try:
            self._store.incr(self._keys.login_ip_failures(ip), ttl=self._policy.ip_window)
        except EphemeralStoreError:
            log.warning("idp.login.ip_counter_unavailable")


def _password_history(db: Session, user: User) -> list[PasswordHistory]:
    """The user's former passwords, newest first."""
    query = (
        select(PasswordHistory)
        .where(PasswordHistory.user_id == user.id)
        .order_by(PasswordHistory.id.desc())
    )
    return list(db.scalars(query))


def _remember_current(
    db: Session, user: User, former: list[PasswordHistory], *, recent: int, now: datetime
) -> None:
    """Move the current hash into the history and delete all but the ``recent`` newest."""
    if recent == 0:
        stale = former
    else:
        db.add(PasswordHistory(user_id=user.id, password_hash=user.password_hash, created_at=now))
        stale = former[recent - 1 :]  # the entry just added takes one of the places
    for entry in stale:
        db.delete(entry)


def require_password_change(
    db: Session,
    user: User,
    *,
    reason: str,
    now: datetime,
    actor: str | None,
    context: AuditContext = NO_CONTEXT,
) -> None:
    """Make the user choose a new password at the next login, after the phone confirmation.

    The Soft Token letter: passwords are changed immediately after an approved role change
    (``reason="role_changed"``). The current password still signs in (unlike an expired
    issued one): the change is a step of the login, not a lock-out.

    Raises:
        ValueError: ``reason`` is not a ``ChangeReason`` value (a programming error).
    """
    why = ChangeReason(reason).value
    user.must_change_password = True
    user.password_change_reason = why
    record(
        db,
        "account.password_change_required",
        now=now,
        actor=actor,
        context=context,
        user=user.sub,
        reason=why,
    )
