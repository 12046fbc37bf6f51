"""The login interaction: one state machine, the only code that advances a pending login.

The protocol engine decides *that* a login is needed and stores the request; this module
decides which step of the login may run now, given the pending login and the facts (the user,
the phone bound when the password passed, what is due), and records each step as it passes.
Every page of the login asks it first (``verify_step``) and refuses anything else; when no step
is left the login finishes in one session (``complete_login``) and only that session resumes
the authorization (``verify_resume``), with the result (subject, ``acr``, ``amr``,
``auth_time``).

Modelled on node-oidc-provider's interaction policy (named prompts, each a list of named
checks, the first failing check naming what to ask) and on Hydra's login flow (one
transition function refusing illegal moves). ``LOGIN_STEPS`` is the policy: its order is the
order of the login, each rule's ``guard`` says when the step is due (docs/login.md is checked
against it). A further step is one more entry there.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Any

from idp.accounts.models import User
from idp.accounts.passwords import password_change_reason
from idp.errors import IdpError


class Step(enum.StrEnum):
    PASSWORD = "password"
    CONFIRM = "confirm"  # on the bound phone: push, its TOTP code, or a passkey
    CHANGE_PASSWORD = "change_password"


# RFC 8176 §2 authentication method reference values.
AMR_PASSWORD = "pwd"
# A push answered with the number from the page: a software-secured key (swk), multiple-channel
# authentication (mca), and with the password, multiple factors (mfa).
AMR_PUSH = ("swk", "mca", "mfa")
AMR_TOTP = ("otp", "mfa")
# A passkey with user verification: a hardware-backed key (hwk) unlocked by the user (user).
AMR_PASSKEY = ("hwk", "user", "mfa")
_SECOND_FACTORS = frozenset({"swk", "otp", "hwk"})


class Assurance(enum.StrEnum):
    """How the user authenticated: the last path segment of the ``acr`` URI."""

    PASSWORD = "aal1-pwd"
    SOFT_TOKEN = "aal2-softtoken"
    SOFT_TOKEN_TXN = "aal2-softtoken-txn"


def acr_uri(issuer: str, level: Assurance) -> str:
    return f"{issuer}/acr/{level.value}"


_RANK = {Assurance.PASSWORD: 1, Assurance.SOFT_TOKEN: 2, Assurance.SOFT_TOKEN_TXN: 3}


def assurance_of(issuer: str, acr: str) -> Assurance | None:
    """The level an ``acr`` URI of this issuer names, or None for someone else's value."""
    prefix = f"{issuer}/acr/"
    if not acr.startswith(prefix):
        return None
    try:
        return Assurance(acr.removeprefix(prefix))
    except ValueError:
        return None


def meets(level: Assurance | None, required: Assurance) -> bool:
    return level is not None and _RANK[level] >= _RANK[required]


def assurance_for(amr: list[str], *, transaction_confirmed: bool = False) -> Assurance:
    """The level a set of methods reaches: password alone is AAL1; password and the bound
    phone is AAL2, and names a confirmed transaction when there was one."""
    if AMR_PASSWORD in amr and _SECOND_FACTORS.intersection(amr):
        return Assurance.SOFT_TOKEN_TXN if transaction_confirmed else Assurance.SOFT_TOKEN
    return Assurance.PASSWORD


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(item) for item in value)
    return value


@dataclass
class LoginTransaction:
    """One pending authorization request and how far its login has got.

    Kept in the browser's interaction session between requests; read and changed only through
    the functions of this module.
    """

    id: str
    params: dict[str, str]
    client_id: str
    started_at: float
    user_id: str | None = None
    completed: list[str] = field(default_factory=list)
    amr: list[str] = field(default_factory=list)
    # A page of the IdP itself to return to (registration, account), instead of a client.
    return_to: str | None = None
    # The phone that must confirm this login (bound when the password step passed), and the
    # push challenge it was sent.
    device_id: str | None = None
    challenge_id: str | None = None
    # The least assurance the client asked for (acr_values, a transaction to confirm), and the
    # evidence of the confirmed transaction.
    required: str | None = None
    evidence_id: str | None = None
    # A step-up within a live session: the password was given earlier, in this browser.
    in_session: bool = False
    # The login session this login ended in: the one session that may resume it.
    session_id: str | None = None

    @classmethod
    def start(
        cls,
        params: dict[str, str],
        *,
        client_id: str,
        now: datetime,
        return_to: str | None = None,
        required: Assurance | None = None,
    ) -> LoginTransaction:
        return cls(
            id=secrets.token_urlsafe(16),
            params=params,
            client_id=client_id,
            started_at=now.timestamp(),
            return_to=return_to,
            required=required.value if required is not None else None,
        )

    def to_dict(self) -> dict[str, Any]:
        # What dataclasses.asdict gives, without its deep copy of every string (a tenth of a
        # millisecond per save, twice per login): the values are JSON's, containers copied.
        return {name: _plain(getattr(self, name)) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoginTransaction:
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    def _record(self, step: Step, amr: tuple[str, ...]) -> None:
        if step.value not in self.completed:
            self.completed.append(step.value)
        for method in amr:
            if method not in self.amr:
                self.amr.append(method)


@dataclass(frozen=True)
class LoginPolicy:
    """The settings the step rules apply (the web layer builds it from ``Settings``)."""

    # None: passwords do not expire by age.
    password_max_age: timedelta | None


@dataclass(frozen=True)
class Facts:
    """What the rules look at besides the pending login: its user as stored now, and when."""

    user: User | None
    now: datetime
    policy: LoginPolicy
    # The user of the browser's live login session, if any: a step-up's password is that
    # session's, and counts for nothing once the session has ended.
    signed_in: str | None = None


@dataclass(frozen=True)
class StepRule:
    step: Step
    # When the step is due, in words (the table in docs/login.md is checked against these).
    guard: str
    is_due: Callable[[LoginTransaction, Facts], bool]


def _password_due(tx: LoginTransaction, facts: Facts) -> bool:
    # SECURITY: once per login, whatever happens to its user since: a second password must
    # not inherit the first one's progress (a phone's approval among it).
    return Step.PASSWORD.value not in tx.completed


def _confirm_due(tx: LoginTransaction, facts: Facts) -> bool:
    return tx.device_id is not None and Step.CONFIRM.value not in tx.completed


def _change_password_due(tx: LoginTransaction, facts: Facts) -> bool:
    # Flagged (issued, reset, role changed) or older than the maximum age.
    return facts.user is not None and (
        password_change_reason(facts.user, now=facts.now, max_age=facts.policy.password_max_age)
        is not None
    )


LOGIN_STEPS: tuple[StepRule, ...] = (
    StepRule(
        Step.PASSWORD,
        "not yet passed in this login (a step-up in a live session starts with it passed)",
        _password_due,
    ),
    # SECURITY: proof of the phone before anything else, a password change included: the
    # password alone must never change the password (an account takeover).
    StepRule(
        Step.CONFIRM,
        "a phone was bound when the password passed, and it has not confirmed this login",
        _confirm_due,
    ),
    StepRule(
        Step.CHANGE_PASSWORD,
        "the password was issued, reset, changed roles or expired",
        _change_password_due,
    ),
)


@dataclass(frozen=True)
class Interaction:
    """Where a login stands: the one step that may run now (None: complete) and those done."""

    current: Step | None
    done: tuple[Step, ...]

    @property
    def is_complete(self) -> bool:
        return self.current is None


class StepNotAllowedError(IdpError):
    """A step that is not the current one of this login (skipped, repeated or out of order)."""

    code = "login_expired"
    message = "This step of the login is not the one due now."


def interaction(tx: LoginTransaction, facts: Facts) -> Interaction:
    """Name the step that may run now: the first one due, in the order of ``LOGIN_STEPS``."""
    done = tuple(Step(value) for value in tx.completed)
    for rule in LOGIN_STEPS:
        if rule.is_due(tx, facts):
            return Interaction(current=rule.step, done=done)
    return Interaction(current=None, done=done)


def next_step(tx: LoginTransaction, facts: Facts) -> Step | None:
    """The first step still due, or None when the login is complete."""
    return interaction(tx, facts).current


def verify_step(tx: LoginTransaction, step: Step, facts: Facts) -> None:
    """Refuse any step but the current one: pages call this before any side effect.

    Raises:
        StepNotAllowedError
    """
    if interaction(tx, facts).current != step or _session_gone(tx, facts):
        raise StepNotAllowedError()


def _session_gone(tx: LoginTransaction, facts: Facts) -> bool:
    # SECURITY: a step-up started with a stolen session cookie must not outlive the session:
    # once the owner ends it, the phone's answer opens no new session without the password.
    return tx.in_session and facts.signed_in != tx.user_id


def complete_password(
    tx: LoginTransaction, facts: Facts, *, user: User, device_id: str | None
) -> None:
    """The password step passed for ``user``; ``device_id`` is the phone bound now, the one
    that must confirm this login whatever happens to the account later.

    Raises:
        StepNotAllowedError
    """
    verify_step(tx, Step.PASSWORD, facts)
    tx.user_id = user.id
    tx.device_id = device_id
    tx._record(Step.PASSWORD, (AMR_PASSWORD,))


def start_step_up(tx: LoginTransaction, *, user: User, device_id: str) -> None:
    """A live session asks for more: its password counts, its phone confirms again."""
    if tx.completed or tx.user_id is not None:
        raise StepNotAllowedError()
    tx.user_id = user.id
    tx.device_id = device_id
    tx.in_session = True
    tx._record(Step.PASSWORD, (AMR_PASSWORD,))


def complete_confirmation(
    tx: LoginTransaction, facts: Facts, *, amr: tuple[str, ...], evidence_id: str | None = None
) -> None:
    """The bound phone (its push, its TOTP code) or a passkey confirmed this login.

    Raises:
        StepNotAllowedError
    """
    verify_step(tx, Step.CONFIRM, facts)
    tx.challenge_id = None
    tx.evidence_id = evidence_id
    tx._record(Step.CONFIRM, amr)


def complete_password_change(tx: LoginTransaction, facts: Facts) -> None:
    """The due password change was made (``facts.user`` as it was before the change).

    Raises:
        StepNotAllowedError
    """
    verify_step(tx, Step.CHANGE_PASSWORD, facts)
    tx._record(Step.CHANGE_PASSWORD, ())


def confirmed_by(tx: LoginTransaction) -> str | None:
    """The phone that confirmed this login: its suspension ends the session."""
    return tx.device_id if Step.CONFIRM.value in tx.completed else None


def complete_login(tx: LoginTransaction, facts: Facts, *, session_id: str) -> None:
    """No step is left: the login ended in the session ``session_id``.

    Raises:
        StepNotAllowedError: a step is still due.
    """
    verify_complete(tx, facts)
    tx.session_id = session_id


def verify_complete(tx: LoginTransaction, facts: Facts) -> None:
    """Refuse to finish a login with a step still due, finished already, or a step-up whose
    session has ended: the web layer asks before it opens a session.

    Raises:
        StepNotAllowedError
    """
    if not interaction(tx, facts).is_complete or tx.session_id is not None:
        raise StepNotAllowedError()
    if _session_gone(tx, facts):
        raise StepNotAllowedError()


def verify_resume(
    tx: LoginTransaction,
    *,
    user_id: str,
    session_id: str,
    session_level: Assurance | None,
    auth_time: datetime,
) -> None:
    """Only the session this very login ended in, of its user, at the assurance the request
    needed and not signed in again since at a lower one, resumes the authorization.

    Raises:
        StepNotAllowedError
    """
    # SECURITY: another session of the same user (a password-only one, opened after the
    # phone was suspended) must not pick up an application's pending login.
    if tx.session_id is None or tx.session_id != session_id or tx.user_id != user_id:
        raise StepNotAllowedError()
    if auth_time.timestamp() < tx.started_at:
        raise StepNotAllowedError()
    if session_level is None or not meets(session_level, resume_level(tx)):
        raise StepNotAllowedError()


def resume_level(tx: LoginTransaction) -> Assurance:
    """The least assurance of the session that resumes this login."""
    if tx.required is None:
        return Assurance.PASSWORD
    required = Assurance(tx.required)
    # A confirmed transaction is proved by its evidence; the session is at the phone's level.
    return Assurance.SOFT_TOKEN if required == Assurance.SOFT_TOKEN_TXN else required
