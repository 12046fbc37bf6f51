"""The login transaction: the steps a browser must pass before an authorization resumes.

The protocol engine (``idp.oidc``) decides *that* a login is needed and stores the request;
the steps below run the interaction; when none is left the authorization resumes with the
result (subject, ``acr``, ``amr``, ``auth_time``). A further step is one more entry in
``LOGIN_STEPS``.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from typing import Any

from idp.accounts.models import User
from idp.accounts.passwords import password_change_reason


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
    """How the user authenticated (DESIGN §5): the last path segment of the ``acr`` URI."""

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


@dataclass
class LoginTransaction:
    """One pending authorization request and how far its login has got."""

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

    @classmethod
    def start(
        cls,
        params: dict[str, str],
        *,
        client_id: str,
        now: datetime,
        return_to: str | None = None,
    ) -> LoginTransaction:
        return cls(
            id=secrets.token_urlsafe(16),
            params=params,
            client_id=client_id,
            started_at=now.timestamp(),
            return_to=return_to,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoginTransaction:
        return cls(**data)

    def complete(self, step: Step, *, amr: list[str] | None = None) -> None:
        if step.value not in self.completed:
            self.completed.append(step.value)
        for method in amr or []:
            if method not in self.amr:
                self.amr.append(method)


@dataclass(frozen=True)
class LoginPolicy:
    """The settings the step rules apply (the web layer builds it from ``Settings``)."""

    # None: passwords do not expire by age.
    password_max_age: timedelta | None


@dataclass(frozen=True)
class StepRule:
    step: Step
    is_due: Callable[[LoginTransaction, User | None, datetime, LoginPolicy], bool]


def _password_due(
    tx: LoginTransaction, user: User | None, now: datetime, policy: LoginPolicy
) -> bool:
    return Step.PASSWORD.value not in tx.completed or user is None


def _confirm_due(
    tx: LoginTransaction, user: User | None, now: datetime, policy: LoginPolicy
) -> bool:
    return tx.device_id is not None and Step.CONFIRM.value not in tx.completed


def _change_password_due(
    tx: LoginTransaction, user: User | None, now: datetime, policy: LoginPolicy
) -> bool:
    # Flagged (issued, reset, role changed) or older than the maximum age.
    return user is not None and (
        password_change_reason(user, now=now, max_age=policy.password_max_age) is not None
    )


LOGIN_STEPS: tuple[StepRule, ...] = (
    StepRule(Step.PASSWORD, _password_due),
    # Proof of the phone before anything else, a password change included.
    StepRule(Step.CONFIRM, _confirm_due),
    StepRule(Step.CHANGE_PASSWORD, _change_password_due),
)


def next_step(
    tx: LoginTransaction, user: User | None, now: datetime, policy: LoginPolicy
) -> Step | None:
    """The first step still due, or None when the login is complete."""
    for rule in LOGIN_STEPS:
        if rule.is_due(tx, user, now, policy):
            return rule.step
    return None
