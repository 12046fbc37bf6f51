"""Password hashing (argon2id at OWASP's parameters) and the password policy."""

from __future__ import annotations

import enum
import functools
import unicodedata
from collections.abc import Sequence
from datetime import datetime
from datetime import timedelta
from importlib import resources

from argon2 import PasswordHasher
from argon2 import Type
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError

from idp.accounts.errors import PasswordPolicyError
from idp.accounts.models import User

MAX_PASSWORD_LENGTH = 128

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
# Verified against when the username is unknown, so both paths cost the same.
_DUMMY_HASH = _hasher.hash("dummy password that never matches anything")


def normalise(password: str) -> str:
    # NIST SP 800-63B-4 §3.1.1.2: normalise Unicode so one password has one form.
    return unicodedata.normalize("NFKC", password)


class ChangeReason(enum.StrEnum):
    """Why a user must choose a new password before a login completes."""

    ISSUED = "issued"  # the password was issued (temporary), not chosen
    RESET = "reset"  # an administrator or the helpdesk reset it
    ROLE_CHANGED = "role_changed"  # the Soft Token letter: right after an approved role change
    EXPIRED = "expired"  # older than the maximum age (the Ministry's 3-month rule)


def hash_password(password: str) -> str:
    return _hasher.hash(normalise(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check ``password`` against ``password_hash`` in constant work even when it is None."""
    if len(password) > MAX_PASSWORD_LENGTH:
        password = password[:MAX_PASSWORD_LENGTH]
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, normalise(password)) and (
            password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def validate_new_password(
    password: str,
    *,
    username: str,
    min_length: int,
    current_hash: str | None,
    previous_hashes: Sequence[str] = (),
) -> None:
    """Apply the password policy to a chosen password.

    The cheap checks come first; each hash in ``previous_hashes`` (the password history,
    newest first) costs one argon2 verification, acceptable on a password change only.

    Raises:
        PasswordPolicyError: with a ``reason`` the page turns into a localised message.
    """
    value = normalise(password)
    if len(value) < min_length:
        raise PasswordPolicyError("too_short", f"Use at least {min_length} characters.")
    if len(value) > MAX_PASSWORD_LENGTH:
        raise PasswordPolicyError("too_long", f"Use at most {MAX_PASSWORD_LENGTH} characters.")
    if username.casefold() in value.casefold():
        raise PasswordPolicyError("contains_username", "The password may not contain the username.")
    # SECURITY: listed passwords are the first guesses of dictionary and spraying attacks.
    if is_common_password(password):
        raise PasswordPolicyError("common", "The password is too common and easily guessed.")
    if current_hash is not None and verify_password(current_hash, password):
        raise PasswordPolicyError("unchanged", "Choose a password different from the current one.")
    # SECURITY: a forced change (expiry, role change) back to a recent password, possibly a
    # leaked one, would change nothing.
    if any(verify_password(previous, password) for previous in previous_hashes):
        raise PasswordPolicyError("reused", "The password was used recently; choose another.")


def is_common_password(password: str) -> bool:
    """Whether the password, or the word before its trailing digits and symbols, is listed.

    NIST SP 800-63B-4 §3.1.1.2: refuse passwords from lists of commonly used or compromised
    values. "Password2025!" is "password" with the usual decorations, so the word alone counts.
    """
    value = normalise(password).casefold()
    listed = _common_passwords()
    return value in listed or _strip_decorations(value) in listed


def _strip_decorations(value: str) -> str:
    # Numbers, punctuation, symbols and spaces (Unicode categories N, P, S, Z): Thai digits and
    # full-width "！" are decorations too, while Thai vowel and tone marks (M) are not.
    end = len(value)
    while end > 0 and unicodedata.category(value[end - 1])[0] in "NPSZ":
        end -= 1
    return value[:end]


@functools.cache
def _common_passwords() -> frozenset[str]:
    """The shipped list, read once per process (about 5,000 entries)."""
    text = resources.files("idp.accounts").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(
        normalise(line.strip()).casefold()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )


def password_change_reason(user: User, *, now: datetime, max_age: timedelta | None) -> str | None:
    """Why ``user`` must change the password now (a ``ChangeReason`` value), or None.

    A flagged change (``must_change_password``) comes with its recorded reason; flags set
    before reasons were recorded were all issued passwords. Otherwise the password is due when
    it is older than ``max_age`` (None: no age limit), computed here rather than flagged, so
    that a change of the setting applies to everyone at once.
    """
    if user.must_change_password:
        return user.password_change_reason or ChangeReason.ISSUED
    if password_expired(user, now=now, max_age=max_age):
        return ChangeReason.EXPIRED
    return None


def password_expired(user: User, *, now: datetime, max_age: timedelta | None) -> bool:
    """Whether the password is older than ``max_age``.

    A password without a date (``password_changed_at`` None) counts as not expired: this
    service dates every password it sets (an issued one once it is changed), so only accounts
    written by other means lack a date, and there is no day to count the maximum age from.
    """
    changed_at = user.password_changed_at
    return max_age is not None and changed_at is not None and changed_at + max_age <= now
