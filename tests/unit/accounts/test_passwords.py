from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from idp.accounts.errors import PasswordPolicyError
from idp.accounts.models import User
from idp.accounts.passwords import ChangeReason
from idp.accounts.passwords import _common_passwords
from idp.accounts.passwords import hash_password
from idp.accounts.passwords import is_common_password
from idp.accounts.passwords import normalise
from idp.accounts.passwords import password_change_reason
from idp.accounts.passwords import password_expired
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


@pytest.mark.parametrize(
    "password",
    [
        "password1234",  # listed as it is
        "Password2025!",  # a listed word with digits and a symbol appended
        "QWERTYUIOP123",  # a keyboard walk, in capitals
        "ｐａｓｓｗｏｒｄ２０２５！",  # full-width: NFKC makes it "password2025!"
        "Bangkok 2568!!",  # a Thai favourite; the space is a decoration too
        "รหัสผ่าน๒๕๖๘!!!",  # "password" in Thai, with Thai digits
    ],
)
def test_policy_refuses_common_passwords(password):
    with pytest.raises(PasswordPolicyError) as caught:
        validate_new_password(password, username="somchai", min_length=12, current_hash=None)
    assert caught.value.reason == "common"


@pytest.mark.parametrize(
    "password",
    [
        "Demo-Pass-2025!",  # the demo password, used everywhere
        "a much longer passphrase",
        "ตั้งรหัสใหม่ให้ยาวพอ 2569",
        "password is not enough here",  # a listed word inside a passphrase is fine
        "123456789-not-a-walk",
    ],
)
def test_passphrases_are_not_common(password):
    assert not is_common_password(password)
    validate_new_password(password, username="somchai", min_length=12, current_hash=None)


def test_common_list_is_shipped_lower_case_and_read_once():
    listed = _common_passwords()
    assert len(listed) >= 1000
    assert {"123456", "password", "qwerty", "bangkok", "thailand", "kaokai"} <= listed
    assert all(entry == normalise(entry).casefold() for entry in listed)
    assert _common_passwords() is listed


def test_policy_refuses_a_password_from_the_history():
    older = [hash_password("first of the passphrases"), hash_password("second of the passphrases")]
    with pytest.raises(PasswordPolicyError) as caught:
        validate_new_password(
            "first of the passphrases",
            username="x",
            min_length=12,
            current_hash=hash_password("current passphrase"),
            previous_hashes=older,
        )
    assert caught.value.reason == "reused"
    validate_new_password(
        "third of the passphrases",
        username="x",
        min_length=12,
        current_hash=None,
        previous_hashes=older,
    )


NOW = datetime(2026, 6, 1, tzinfo=UTC)
DAYS_90 = timedelta(days=90)


def user(**fields: object) -> User:
    values: dict[str, object] = {
        "username": "u",
        "password_hash": "x",
        "must_change_password": False,
        "password_changed_at": NOW,
        "created_at": NOW,
    }
    values.update(fields)
    return User(**values)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, None),
        ({"password_changed_at": NOW - timedelta(days=89)}, None),
        ({"password_changed_at": NOW - DAYS_90}, ChangeReason.EXPIRED),
        # No date to count from: not expired (only accounts written by other means lack it).
        ({"password_changed_at": None}, None),
        ({"must_change_password": True, "password_change_reason": "issued"}, ChangeReason.ISSUED),
        # Flagged before reasons were recorded: only issued passwords were.
        ({"must_change_password": True}, ChangeReason.ISSUED),
        (
            {"must_change_password": True, "password_change_reason": "role_changed"},
            ChangeReason.ROLE_CHANGED,
        ),
        # A flagged reason says more than the age.
        (
            {
                "must_change_password": True,
                "password_change_reason": "role_changed",
                "password_changed_at": NOW - timedelta(days=400),
            },
            ChangeReason.ROLE_CHANGED,
        ),
    ],
)
def test_change_reason(fields, reason):
    assert password_change_reason(user(**fields), now=NOW, max_age=DAYS_90) == reason


def test_no_maximum_age_never_expires():
    old = user(password_changed_at=NOW - timedelta(days=4000))
    assert not password_expired(old, now=NOW, max_age=None)
    assert password_change_reason(old, now=NOW, max_age=None) is None
