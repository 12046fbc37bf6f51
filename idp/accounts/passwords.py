"""Password hashing (argon2id at OWASP's parameters) and the password policy."""

from __future__ import annotations

import unicodedata

from argon2 import PasswordHasher
from argon2 import Type
from argon2.exceptions import InvalidHashError
from argon2.exceptions import VerificationError

from idp.accounts.errors import PasswordPolicyError

MAX_PASSWORD_LENGTH = 128

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
# Verified against when the username is unknown, so both paths cost the same.
_DUMMY_HASH = _hasher.hash("dummy password that never matches anything")


def normalise(password: str) -> str:
    # NIST SP 800-63B-4 §3.1.1.2: normalise Unicode so one password has one form.
    return unicodedata.normalize("NFKC", password)


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
    password: str, *, username: str, min_length: int, current_hash: str | None
) -> None:
    """Apply the password policy to a chosen password.

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
    if current_hash is not None and verify_password(current_hash, password):
        raise PasswordPolicyError("unchanged", "Choose a password different from the current one.")
