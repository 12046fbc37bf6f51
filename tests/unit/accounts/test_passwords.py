from __future__ import annotations

import pytest

from idp.accounts.errors import PasswordPolicyError
from idp.accounts.passwords import hash_password
from idp.accounts.passwords import validate_new_password
from idp.accounts.passwords import verify_password


def test_argon2id_at_owasp_parameters():
    hashed = hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(hashed, "correct horse battery")
    assert not verify_password(hashed, "correct horse battery!")


def test_missing_hash_never_verifies():
    assert not verify_password(None, "anything")


def test_unicode_is_normalised():
    # NFKC: a full-width "Ａ" and a plain "A" are one password.
    hashed = hash_password("Ａbcdefghijkl")
    assert verify_password(hashed, "Abcdefghijkl")


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "too_short"),
        ("x" * 129, "too_long"),
        ("my name is somchai!", "contains_username"),
    ],
)
def test_policy_refuses(password, reason):
    with pytest.raises(PasswordPolicyError) as caught:
        validate_new_password(password, username="somchai", min_length=12, current_hash=None)
    assert caught.value.reason == reason


def test_policy_refuses_the_current_password():
    current = hash_password("a long passphrase")
    with pytest.raises(PasswordPolicyError):
        validate_new_password(
            "a long passphrase", username="x", min_length=12, current_hash=current
        )


def test_thai_passphrase_is_accepted():
    validate_new_password("รหัสผ่านภาษาไทยยาวๆ", username="somchai", min_length=12, current_hash=None)
