"""Password changes: the history of former passwords, and changes the IdP asks for."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlalchemy import select

from idp.accounts.errors import PasswordPolicyError
from idp.accounts.models import PasswordHistory
from idp.accounts.passwords import verify_password
from idp.accounts.service import Accounts
from idp.accounts.service import require_password_change
from idp.audit.models import AuditEvent
from idp.settings import DEMO_DATA_KEY
from idp.settings import decode_data_key
from idp.store.secrets import DataCipher

NOW = datetime(2026, 6, 1, tzinfo=UTC)
PASSWORDS = [f"passphrase number {n} of many" for n in range(7)]
CIPHER = DataCipher(decode_data_key(DEMO_DATA_KEY))


@pytest.fixture
def session(sessions, cipher):
    with sessions() as session:
        yield session


def accounts(cipher, *, history=5):
    return Accounts(cipher=cipher, temporary_ttl=86400, min_length=12, history=history)


def new_user(session, cipher, *, temporary=False):
    return accounts(cipher).create_user(
        session,
        username="somchai",
        password=PASSWORDS[0],
        now=NOW,
        temporary=temporary,
    )


def change(session, user, password, *, history=5, days=1):
    accounts(CIPHER, history=history).change_password(
        session,
        user,
        new_password=password,
        now=NOW + timedelta(days=days),
    )
    session.flush()


def history_size(session) -> int:
    return session.scalar(select(func.count()).select_from(PasswordHistory))


def test_the_last_five_passwords_including_the_current_one_are_refused(session, cipher):
    user = new_user(session, cipher)
    for n in range(1, 5):
        change(session, user, PASSWORDS[n], days=n)
    # Current: 4; history: 3, 2, 1, 0.
    for n in range(4):
        with pytest.raises(PasswordPolicyError) as caught:
            change(session, user, PASSWORDS[n])
        assert caught.value.reason == "reused"
    with pytest.raises(PasswordPolicyError) as caught:
        change(session, user, PASSWORDS[4])
    assert caught.value.reason == "unchanged"
    assert history_size(session) == 4


def test_older_passwords_are_pruned_and_may_be_chosen_again(session, cipher):
    user = new_user(session, cipher)
    for n in range(1, 6):
        change(session, user, PASSWORDS[n], days=n)
    # Current: 5; history: 4, 3, 2, 1; the first password left it.
    assert history_size(session) == 4
    change(session, user, PASSWORDS[0], days=6)
    assert verify_password(user.password_hash, PASSWORDS[0])


def test_a_refused_password_changes_nothing(session, cipher):
    user = new_user(session, cipher)
    change(session, user, PASSWORDS[1])
    before = (user.password_hash, history_size(session))
    with pytest.raises(PasswordPolicyError):
        change(session, user, PASSWORDS[0])
    assert (user.password_hash, history_size(session)) == before


def test_history_of_one_refuses_only_the_current_password(session, cipher):
    user = new_user(session, cipher)
    change(session, user, PASSWORDS[1], history=1)
    change(session, user, PASSWORDS[0], history=1)
    assert history_size(session) == 0
    with pytest.raises(PasswordPolicyError) as caught:
        change(session, user, PASSWORDS[0], history=1)
    assert caught.value.reason == "unchanged"


def test_an_issued_password_records_why_it_must_be_changed(session, cipher):
    user = new_user(session, cipher, temporary=True)
    assert (user.must_change_password, user.password_change_reason) == (True, "issued")
    change(session, user, PASSWORDS[1])
    assert (user.must_change_password, user.password_change_reason) == (False, None)
    assert user.temporary_password_expires_at is None
    assert user.password_changed_at == NOW + timedelta(days=1)


def test_require_password_change_flags_the_user_and_audits_why(session, cipher):
    user = new_user(session, cipher)
    require_password_change(session, user, reason="role_changed", now=NOW, actor="head1")
    session.flush()
    assert (user.must_change_password, user.password_change_reason) == (True, "role_changed")
    # Not an issued password: nothing makes the current one stop working.
    assert user.temporary_password_expires_at is None
    event = session.scalar(
        select(AuditEvent).where(AuditEvent.event == "account.password_change_required")
    )
    assert event is not None
    assert (event.actor, event.details) == ("head1", {"user": user.sub, "reason": "role_changed"})


def test_require_password_change_refuses_an_unknown_reason(session, cipher):
    user = new_user(session, cipher)
    with pytest.raises(ValueError, match="because"):
        require_password_change(session, user, reason="because", now=NOW, actor=None)
    assert user.must_change_password is False
