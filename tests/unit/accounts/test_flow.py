from __future__ import annotations

from datetime import UTC
from datetime import datetime

from idp.accounts.flow import LoginTransaction
from idp.accounts.flow import Step
from idp.accounts.flow import next_step
from idp.accounts.models import User

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def user(*, must_change: bool) -> User:
    return User(username="u", password_hash="x", must_change_password=must_change, created_at=NOW)


def test_password_comes_first():
    tx = LoginTransaction.start({"client_id": "c"}, client_id="c", now=NOW)
    assert next_step(tx, None, NOW) is Step.PASSWORD


def test_an_issued_password_must_be_changed_next():
    tx = LoginTransaction.start({}, client_id="c", now=NOW)
    tx.complete(Step.PASSWORD, amr=["pwd"])
    assert next_step(tx, user(must_change=True), NOW) is Step.CHANGE_PASSWORD
    assert next_step(tx, user(must_change=False), NOW) is None


def test_transaction_round_trips_through_the_session():
    tx = LoginTransaction.start({"a": "b"}, client_id="c", now=NOW)
    tx.complete(Step.PASSWORD, amr=["pwd"])
    tx.complete(Step.PASSWORD, amr=["pwd"])
    again = LoginTransaction.from_dict(tx.to_dict())
    assert again == tx
    assert again.amr == ["pwd"]
