"""The password step: generic errors, brute-force limits, CSRF, cookies, forced change."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from idp import create_app
from idp.accounts.models import LoginFailure
from idp.accounts.models import User
from idp.audit.models import AuditEvent
from idp.deps import build_deps
from idp.settings import NIST_MAX_CONSECUTIVE_FAILURES
from tests.factories import PASSWORD
from tests.factories import seed
from tests.rp import RP
from tests.rp import callback_params
from tests.rp import form_action
from tests.rp import form_fields

GENERIC = "login-error"


@pytest.fixture
def rp(client, deps):
    seed(deps, "somchai", "newuser", temporary=("newuser",))
    return RP(client)


def attempt(rp: RP, username: str, password: str):
    page = rp.authorize(prompt="login")
    return rp.submit(page, username=username, password=password)


def normalised(response, username: str) -> str:
    """The page with what differs by design removed: transaction id, CSRF token, username."""
    html = response.get_data(as_text=True).replace(username, "USER")
    html = re.sub(r"tx(=|%3D)[\w-]+", "tx=TX", html)
    return re.sub(r'name="csrf_token" value="[^"]+"', "CSRF", html)


def is_generic_failure(response) -> bool:
    html = response.get_data(as_text=True)
    return response.status_code == 200 and f'id="{GENERIC}"' in html


def test_wrong_password_and_unknown_user_look_the_same(rp):
    wrong = attempt(rp, "somchai", "not the password")
    unknown = attempt(rp, "nobody-here", "not the password")
    assert is_generic_failure(wrong)
    assert is_generic_failure(unknown)
    assert normalised(wrong, "somchai") == normalised(unknown, "nobody-here")
    assert set(wrong.headers.getlist("Set-Cookie")) == set(unknown.headers.getlist("Set-Cookie"))


def test_username_is_case_insensitive(rp):
    assert "code" in callback_params(attempt(rp, "  SomChai ", "Demo-Pass-2025!"))


def test_delays_then_lockout_refuse_even_the_right_password(rp, clock):
    for _ in range(5):
        assert is_generic_failure(attempt(rp, "somchai", "wrong"))
    # Throttled: the right password gets the same answer until the delay has passed.
    assert is_generic_failure(attempt(rp, "somchai", "Demo-Pass-2025!"))
    clock.advance(2)
    assert "code" in callback_params(attempt(rp, "somchai", "Demo-Pass-2025!"))


def test_case_variants_share_one_counter(rp, clock):
    for name in ("somchai", "SOMCHAI", "Somchai", "sOmChAi", "SomChai"):
        attempt(rp, name, "wrong")
    assert is_generic_failure(attempt(rp, "somchai", "Demo-Pass-2025!"))


def test_attempts_while_locked_are_not_counted(rp, deps, clock):
    for _ in range(10):
        attempt(rp, "somchai", "wrong")
        clock.advance(1000)  # wait out every delay: only the lock-out remains
    with deps.sessions() as session:
        failures_before = _failures(session)
    for _ in range(5):
        assert is_generic_failure(attempt(rp, "somchai", "Demo-Pass-2025!"))
    with deps.sessions() as session:
        assert _failures(session) == failures_before == 10
    clock.advance(1801)
    assert "code" in callback_params(attempt(rp, "somchai", "Demo-Pass-2025!"))


def test_never_more_than_100_consecutive_failures(client, deps, clock):
    seed(deps, "somchai")
    rp = RP(client)
    for _ in range(NIST_MAX_CONSECUTIVE_FAILURES + 5):
        attempt(rp, "somchai", "wrong")
        clock.advance(2000)
    with deps.sessions() as session:
        assert _failures(session) == NIST_MAX_CONSECUTIVE_FAILURES
    clock.advance(365 * 86400)
    assert is_generic_failure(attempt(rp, "somchai", "Demo-Pass-2025!"))


def test_unknown_usernames_are_throttled_like_real_ones(rp, deps):
    for _ in range(5):
        attempt(rp, "ghost", "wrong")
    with deps.sessions() as session:
        assert _failures(session) == 5


def test_parallel_guesses_at_a_counted_account_are_each_counted(rp, app, deps, settings):
    # The counter's row exists after the first failure: from then on the password step locks
    # it with its first statement. Guesses sent at once must still be counted one by one.
    assert is_generic_failure(attempt(rp, "somchai", "wrong"))
    guesses = settings.login_throttle_after - 1
    pages = [RP(app.test_client()) for _ in range(guesses)]
    forms = [(each, each.authorize(prompt="login")) for each in pages]
    with ThreadPoolExecutor(guesses) as pool:
        answers = list(
            pool.map(lambda f: f[0].submit(f[1], username="somchai", password="x"), forms)
        )
    assert all(is_generic_failure(answer) for answer in answers)
    with deps.sessions() as session:
        assert _failures(session) == settings.login_throttle_after


def test_per_ip_limit_blocks_guessing_across_accounts(client, deps, settings):
    limited = settings.model_copy(update={"login_ip_failure_limit": 3})
    local = build_deps(limited, clock=deps.clock, store=deps.store, engine=deps.engine)
    seed(local, "somchai")
    rp = RP(create_app(deps=local, background=False).test_client())
    for name in ("a1", "a2", "a3"):
        attempt(rp, name, "wrong")
    assert is_generic_failure(attempt(rp, "somchai", "Demo-Pass-2025!"))


def test_failures_and_successes_are_audited(rp, deps):
    attempt(rp, "somchai", "wrong")
    attempt(rp, "somchai", "Demo-Pass-2025!")
    with deps.sessions() as session:
        events = [(e.event, e.outcome) for e in session.scalars(select(AuditEvent))]
    assert ("login.failed", "failure") in events
    assert ("login.password", "success") in events
    assert ("session.started", "success") in events


def test_form_without_csrf_token_is_refused(rp, client):
    page = rp.authorize()
    html = page.get_data(as_text=True)
    response = client.post(
        form_action(html), data={"username": "somchai", "password": "Demo-Pass-2025!"}
    )
    assert response.status_code == 400
    assert "csrf" in response.get_data(as_text=True)


def test_interaction_session_id_changes_at_login(rp, client):
    page = rp.authorize()
    before = client.get_cookie("idp_session").value
    rp.submit(page, username="somchai", password="Demo-Pass-2025!")
    after = client.get_cookie("idp_session").value
    assert before != after


def test_temporary_password_must_be_changed_before_anything_else(rp, client, deps):
    page = attempt(rp, "newuser", "Demo-Pass-2025!")
    html = page.get_data(as_text=True)
    assert 'name="new_password"' in html
    # The authorization does not complete while the change is pending.
    assert "Location" not in page.headers
    weak = rp.submit(page, current_password="Demo-Pass-2025!", new_password="short",
                     confirm_password="short")  # fmt: skip
    assert 'role="alert"' in weak.get_data(as_text=True)
    done = rp.submit(
        weak,
        current_password="Demo-Pass-2025!",
        new_password="a much longer passphrase",
        confirm_password="a much longer passphrase",
    )
    assert "code" in callback_params(done)
    with deps.sessions() as session:
        user = session.scalar(select(User).where(User.username == "newuser"))
        assert user.must_change_password is False
    assert "code" in callback_params(attempt(rp, "newuser", "a much longer passphrase"))


def test_expired_temporary_password_is_refused(rp, clock):
    clock.advance(8 * 86400)
    assert is_generic_failure(attempt(rp, "newuser", "Demo-Pass-2025!"))


def test_login_page_of_unknown_transaction_says_expired(client, deps):
    response = client.get("/login/password?tx=unknown")
    assert response.status_code == 400
    assert "login_expired" in response.get_data(as_text=True)


def test_login_transaction_expires(rp, clock):
    page = rp.authorize()
    clock.advance(901)
    response = rp.client.post(form_action(page.get_data(as_text=True)),
                              data=form_fields(page.get_data(as_text=True)))  # fmt: skip
    assert response.status_code == 400


def _failures(session) -> int:
    return sum(row.failures for row in session.scalars(select(LoginFailure)))


def test_csrf_token_changes_at_login(rp, client):
    page = rp.authorize()
    before = form_fields(page.get_data(as_text=True))["csrf_token"]
    rp.submit(page, username="somchai", password="Demo-Pass-2025!")
    after = form_fields(client.get("/logout").get_data(as_text=True))["csrf_token"]
    assert before != after


def test_authorize_sends_the_browser_straight_to_the_password_step(rp, client):
    # No hop through /login: that would cost every login a request of its own.
    answer = client.get("/authorize?" + urlencode(rp.authorize_params()))
    assert answer.status_code == 303
    assert answer.headers["Location"].startswith("/login/password?tx=")
    page = rp.follow(answer)
    assert "code" in callback_params(rp.submit(page, username="somchai", password=PASSWORD))
