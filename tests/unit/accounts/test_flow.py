from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from idp.accounts.flow import LoginPolicy
from idp.accounts.flow import LoginTransaction
from idp.accounts.flow import Step
from idp.accounts.flow import next_step
from idp.accounts.models import User

NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = LoginPolicy(password_max_age=timedelta(days=90))


def user(*, must_change: bool = False, changed_days_ago: float | None = 0) -> User:
    changed_at = None if changed_days_ago is None else NOW - timedelta(days=changed_days_ago)
    return User(
        username="u",
        password_hash="x",
        must_change_password=must_change,
        password_changed_at=changed_at,
        created_at=NOW,
    )


def after_password() -> LoginTransaction:
    tx = LoginTransaction.start({}, client_id="c", now=NOW)
    tx.complete(Step.PASSWORD, amr=["pwd"])
    return tx


def test_password_comes_first():
    tx = LoginTransaction.start({"client_id": "c"}, client_id="c", now=NOW)
    assert next_step(tx, None, NOW, POLICY) is Step.PASSWORD


def test_an_issued_password_must_be_changed_next():
    tx = after_password()
    assert next_step(tx, user(must_change=True), NOW, POLICY) is Step.CHANGE_PASSWORD
    assert next_step(tx, user(must_change=False), NOW, POLICY) is None


@pytest.mark.parametrize(
    ("days", "due"),
    [(89.99, False), (90, True), (400, True)],
)
def test_a_password_older_than_the_maximum_age_must_be_changed(days, due):
    step = next_step(after_password(), user(changed_days_ago=days), NOW, POLICY)
    assert (step is Step.CHANGE_PASSWORD) is due


def test_no_maximum_age_means_passwords_do_not_expire():
    never = LoginPolicy(password_max_age=None)
    assert next_step(after_password(), user(changed_days_ago=4000), NOW, never) is None


def test_an_expired_password_is_changed_after_the_phone_confirmation():
    tx = after_password()
    tx.device_id = "phone"
    old = user(changed_days_ago=91)
    assert next_step(tx, old, NOW, POLICY) is Step.CONFIRM
    tx.complete(Step.CONFIRM, amr=["swk"])
    assert next_step(tx, old, NOW, POLICY) is Step.CHANGE_PASSWORD


def test_transaction_round_trips_through_the_session():
    tx = LoginTransaction.start({"a": "b"}, client_id="c", now=NOW)
    tx.complete(Step.PASSWORD, amr=["pwd"])
    tx.complete(Step.PASSWORD, amr=["pwd"])
    again = LoginTransaction.from_dict(tx.to_dict())
    assert again == tx
    assert again.amr == ["pwd"]
