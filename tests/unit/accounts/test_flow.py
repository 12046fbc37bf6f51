"""The login's state machine: which step may run now, and that nothing else may."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest

from idp.accounts.flow import LOGIN_STEPS
from idp.accounts.flow import Assurance
from idp.accounts.flow import Facts
from idp.accounts.flow import LoginPolicy
from idp.accounts.flow import LoginTransaction
from idp.accounts.flow import Step
from idp.accounts.flow import StepNotAllowedError
from idp.accounts.flow import complete_confirmation
from idp.accounts.flow import complete_login
from idp.accounts.flow import complete_password
from idp.accounts.flow import complete_password_change
from idp.accounts.flow import interaction
from idp.accounts.flow import next_step
from idp.accounts.flow import start_step_up
from idp.accounts.flow import verify_resume
from idp.accounts.flow import verify_step
from idp.accounts.models import User

NOW = datetime(2026, 1, 1, tzinfo=UTC)
POLICY = LoginPolicy(password_max_age=timedelta(days=90))


def user(*, must_change: bool = False, changed_days_ago: float | None = 0) -> User:
    changed_at = None if changed_days_ago is None else NOW - timedelta(days=changed_days_ago)
    return User(
        id="user-1",
        username="u",
        password_hash="x",
        must_change_password=must_change,
        password_changed_at=changed_at,
        created_at=NOW,
    )


def facts(who: User | None, policy: LoginPolicy = POLICY) -> Facts:
    return Facts(user=who, now=NOW, policy=policy)


def after_password(who: User, *, device_id: str | None = None) -> LoginTransaction:
    tx = LoginTransaction.start({}, client_id="c", now=NOW)
    complete_password(tx, facts(None), user=who, device_id=device_id)
    return tx


def test_password_comes_first():
    tx = LoginTransaction.start({"client_id": "c"}, client_id="c", now=NOW)
    assert next_step(tx, facts(None)) is Step.PASSWORD
    assert interaction(tx, facts(None)).done == ()


def test_an_issued_password_must_be_changed_next():
    assert next_step(after_password(user()), facts(user(must_change=True))) is (
        Step.CHANGE_PASSWORD
    )
    assert next_step(after_password(user()), facts(user())) is None


@pytest.mark.parametrize(("days", "due"), [(89.99, False), (90, True), (400, True)])
def test_a_password_older_than_the_maximum_age_must_be_changed(days, due):
    old = user(changed_days_ago=days)
    assert (next_step(after_password(old), facts(old)) is Step.CHANGE_PASSWORD) is due


def test_no_maximum_age_means_passwords_do_not_expire():
    old = user(changed_days_ago=4000)
    never = LoginPolicy(password_max_age=None)
    assert next_step(after_password(old), facts(old, never)) is None


def test_a_due_change_comes_only_after_the_phone_confirmation():
    old = user(changed_days_ago=91)
    tx = after_password(old, device_id="phone")
    assert next_step(tx, facts(old)) is Step.CONFIRM
    with pytest.raises(StepNotAllowedError):
        complete_password_change(tx, facts(old))
    complete_confirmation(tx, facts(old), amr=("swk",))
    assert interaction(tx, facts(old)).current is Step.CHANGE_PASSWORD
    assert interaction(tx, facts(old)).done == (Step.PASSWORD, Step.CONFIRM)


@pytest.mark.parametrize("step", list(Step))
def test_no_step_runs_out_of_turn(step):
    """At every point of a login with a phone and a due change, only the current step runs."""
    who = user(must_change=True)
    tx = LoginTransaction.start({}, client_id="c", now=NOW)
    for current in (Step.PASSWORD, Step.CONFIRM, Step.CHANGE_PASSWORD, None):
        known = facts(None if current is Step.PASSWORD else who)
        assert next_step(tx, known) is current
        if step is not current:
            with pytest.raises(StepNotAllowedError):
                verify_step(tx, step, known)
        if current is Step.PASSWORD:
            complete_password(tx, known, user=who, device_id="phone")
        elif current is Step.CONFIRM:
            complete_confirmation(tx, known, amr=("swk",))
        elif current is Step.CHANGE_PASSWORD:
            complete_password_change(tx, known)
            who.must_change_password = False


def test_a_second_password_is_refused():
    tx = after_password(user())
    with pytest.raises(StepNotAllowedError):
        complete_password(tx, facts(user()), user=user(), device_id=None)


def test_a_change_that_is_not_due_is_refused():
    tx = after_password(user())
    with pytest.raises(StepNotAllowedError):
        complete_password_change(tx, facts(user()))


def test_a_step_up_starts_after_the_password_and_needs_the_phone():
    tx = LoginTransaction.start({}, client_id="c", now=NOW, required=Assurance.SOFT_TOKEN)
    start_step_up(tx, user=user(), device_id="phone")
    assert next_step(tx, facts(user())) is Step.CONFIRM
    with pytest.raises(StepNotAllowedError):
        start_step_up(tx, user=user(), device_id="phone")


def test_a_step_up_is_over_once_its_session_has_ended():
    tx = LoginTransaction.start({}, client_id="c", now=NOW, required=Assurance.SOFT_TOKEN)
    start_step_up(tx, user=user(), device_id="phone")
    live = Facts(user=user(), now=NOW, policy=POLICY, signed_in="user-1")
    verify_step(tx, Step.CONFIRM, live)
    for gone in (None, "user-2"):
        ended = Facts(user=user(), now=NOW, policy=POLICY, signed_in=gone)
        with pytest.raises(StepNotAllowedError):
            verify_step(tx, Step.CONFIRM, ended)
    complete_confirmation(tx, live, amr=("swk",))
    with pytest.raises(StepNotAllowedError):
        complete_login(tx, Facts(user=user(), now=NOW, policy=POLICY), session_id="sid-2")
    complete_login(tx, live, session_id="sid-1")


def finished(level_needed: Assurance | None = Assurance.SOFT_TOKEN) -> LoginTransaction:
    tx = LoginTransaction.start({}, client_id="c", now=NOW, required=level_needed)
    complete_password(tx, facts(None), user=user(), device_id="phone")
    complete_confirmation(tx, facts(user()), amr=("swk",))
    complete_login(tx, facts(user()), session_id="sid-1")
    return tx


def test_only_the_session_the_login_ended_in_resumes_it():
    tx = finished()
    verify_resume(tx, user_id="user-1", session_id="sid-1",
                  session_level=Assurance.SOFT_TOKEN, auth_time=NOW)  # fmt: skip
    for changes in (
        {"session_id": "sid-2"},
        {"user_id": "user-2"},
        {"session_level": Assurance.PASSWORD},
        {"session_level": None},
        {"auth_time": NOW - timedelta(seconds=1)},
    ):
        given = {"user_id": "user-1", "session_id": "sid-1",
                 "session_level": Assurance.SOFT_TOKEN, "auth_time": NOW, **changes}  # fmt: skip
        with pytest.raises(StepNotAllowedError):
            verify_resume(tx, **given)


def test_an_unfinished_login_resumes_nothing():
    tx = LoginTransaction.start({}, client_id="c", now=NOW)
    complete_password(tx, facts(None), user=user(), device_id="phone")
    with pytest.raises(StepNotAllowedError):
        complete_login(tx, facts(user()), session_id="sid-1")
    with pytest.raises(StepNotAllowedError):
        verify_resume(tx, user_id="user-1", session_id="sid-1",
                      session_level=Assurance.SOFT_TOKEN, auth_time=NOW)  # fmt: skip


def test_a_transaction_login_resumes_with_a_phone_confirmed_session():
    tx = finished(Assurance.SOFT_TOKEN_TXN)
    verify_resume(tx, user_id="user-1", session_id="sid-1",
                  session_level=Assurance.SOFT_TOKEN, auth_time=NOW)  # fmt: skip


def test_every_step_has_a_rule_and_a_guard():
    assert [rule.step for rule in LOGIN_STEPS] == list(Step)
    assert all(rule.guard for rule in LOGIN_STEPS)


def test_transaction_round_trips_through_the_session():
    tx = after_password(user())
    again = LoginTransaction.from_dict(tx.to_dict())
    assert again == tx
    assert again.amr == ["pwd"]
