"""The login's steps taken out of order, as an attacker with a browser takes them: the password
alone at the password-change page, a stolen session as a password oracle, a password-only session
resuming an application's login, a forwarded QR code, and parallel wrong answers racing the
throttle. Each is refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select
from sqlalchemy import update

from idp import create_app
from idp.accounts.flow import Step
from idp.accounts.models import LoginFailure
from idp.accounts.models import User
from idp.accounts.models import UserSession
from idp.accounts.models import UserStatus
from idp.accounts.passwords import ChangeReason
from idp.accounts.passwords import verify_password
from idp.audit.models import AuditEvent
from idp.deps import build_deps
from idp.mfa.models import Device
from idp.mfa.models import DeviceStatus
from idp.mfa.models import Passkey
from idp.web.login import STEP_PAGES
from tests.factories import PASSWORD
from tests.factories import seed
from tests.nexus_server import confirm_link
from tests.nexus_server import confirm_state
from tests.nexus_server import match_number
from tests.push_stack import Login
from tests.push_stack import Stack
from tests.push_stack import push_stack
from tests.rp import form_fields
from tests.servers import LoopbackBrowser
from tests.servers import free_port
from tests.servers import serving

NEW_PASSWORD = "a much longer passphrase 2026"
PAYMENT = {
    "type": "gfmis_payment_approval",
    "document_number": "3100012345",
    "amount": {"value": "125000.50", "currency": "THB"},
    "payee": "บริษัท ตัวอย่าง จำกัด",
}


@pytest.fixture
def stack(settings, deps, tmp_path) -> Iterator[Stack]:
    with push_stack(settings, deps, tmp_path, users=("somchai",)) as running:
        yield running


def failures(stack: Stack) -> int:
    with stack.deps.sessions() as session:
        return sum(session.scalars(select(LoginFailure.failures)))


def failed_for(stack: Stack, reason: str) -> int:
    with stack.deps.sessions() as session:
        return sum(
            1
            for event in session.scalars(
                select(AuditEvent).where(AuditEvent.event == "login.failed")
            )
            if (event.details or {}).get("reason") == reason
        )


def password_is(stack: Stack, password: str) -> bool:
    with stack.deps.sessions() as session:
        user = session.scalar(select(User).where(User.username == "somchai"))
        return verify_password(user.password_hash, password)


def change_due(stack: Stack) -> None:
    with stack.deps.sessions.begin() as session:
        session.execute(
            update(User)
            .where(User.username == "somchai")
            .values(must_change_password=True, password_change_reason=ChangeReason.ROLE_CHANGED)
        )


def approve(stack: Stack, login: Login) -> None:
    pushed = stack.nexus.wait_for_push("phone-somchai")
    answered = stack.nexus.approve("phone-somchai", pushed["id"], match_number(login.page.text))
    assert answered.json()["outcome"] == "approved", answered.text
    login.reload()


def tx_of(login: Login) -> str:
    return parse_qs(urlsplit(login.url).query)["tx"][0]


def csrf_of(login: Login) -> str:
    """The browser's CSRF token, read from a sign-in form the same browser opens."""
    browser = login.browser
    started = browser.request("GET", f"{login.stack.idp}/signin?next=/", timeout=30)
    step = browser.request("GET", login.stack.idp + started.headers["Location"], timeout=30)
    page = browser.request("GET", login.stack.idp + step.headers["Location"], timeout=30)
    return form_fields(page.text)["csrf_token"]


def change_password(login: Login, current: str, *, csrf: str) -> requests.Response:
    url = f"{login.stack.idp}/login/change-password?tx={tx_of(login)}"
    return login.browser.request(
        "POST",
        url,
        data={"csrf_token": csrf, "current_password": current, "new_password": NEW_PASSWORD,
              "confirm_password": NEW_PASSWORD},
        timeout=30,
    )  # fmt: skip


# --- the password alone ---------------------------------------------------------------------


@pytest.mark.parametrize("due", [False, True], ids=["no change due", "change due"])
def test_the_password_alone_cannot_change_the_password(stack, due):
    if due:
        change_due(stack)
    login = Login.start(stack, "somchai")  # the password is known; the phone is not
    assert confirm_state(login.page.text) == "pending"
    csrf = csrf_of(login)
    page = login.browser.request(
        "GET", f"{stack.idp}/login/change-password?tx={tx_of(login)}", timeout=30
    )
    assert 'id="error-code">login_expired' in page.text
    answer = change_password(login, PASSWORD, csrf=csrf)
    assert 'id="error-code">login_expired' in answer.text
    assert password_is(stack, PASSWORD)
    assert failures(stack) == 0  # refused before any check: nothing counted either


def test_a_due_change_comes_after_the_phone_and_then_works(stack):
    change_due(stack)
    login = Login.start(stack, "somchai")
    approve(stack, login)
    assert 'name="new_password"' in login.page.text
    tx = tx_of(login)
    login.submit(
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD,
         "confirm_password": NEW_PASSWORD}
    )  # fmt: skip
    assert login.returned
    assert password_is(stack, NEW_PASSWORD)
    # Finished: going through its pages again opens no second session.
    again = login.browser.request("GET", f"{stack.idp}/login?tx={tx}", timeout=30)
    assert 'id="error-code">login_expired' in again.text


# --- the password oracle --------------------------------------------------------------------


def test_a_stolen_session_is_no_password_oracle(stack):
    owner = Login.start(stack, "somchai")
    approve(stack, owner)
    assert owner.returned
    # The thief has the browser's cookies; a transaction opens a step-up with the password
    # step counted as done.
    owner.authorize(authorization_details=json.dumps([PAYMENT]))
    assert confirm_state(owner.page.text) == "pending"
    csrf = csrf_of(owner)
    for guess in ("guess-1", "guess-2", "guess-3", PASSWORD):
        answer = change_password(owner, guess, csrf=csrf)
        assert 'id="error-code">login_expired' in answer.text
    assert failures(stack) == 0
    assert password_is(stack, PASSWORD)


def test_a_wrong_current_password_counts_like_a_wrong_password(stack):
    change_due(stack)
    login = Login.start(stack, "somchai")
    approve(stack, login)
    limit = stack.deps.settings.login_throttle_after
    for _ in range(limit):
        login.submit(
            {"current_password": "not it", "new_password": NEW_PASSWORD,
             "confirm_password": NEW_PASSWORD}
        )  # fmt: skip
        assert 'role="alert"' in login.page.text
    assert failures(stack) == limit
    # Throttled now, as at the password step: even the right password is not looked at.
    login.submit(
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD,
         "confirm_password": NEW_PASSWORD}
    )  # fmt: skip
    assert not login.returned
    assert password_is(stack, PASSWORD)
    assert failures(stack) == limit
    assert failed_for(stack, "wrong_current_password") == limit


def test_parallel_wrong_current_passwords_are_evaluated_within_the_throttle(stack):
    change_due(stack)
    login = Login.start(stack, "somchai")
    approve(stack, login)
    csrf = form_fields(login.page.text)["csrf_token"]
    with ThreadPoolExecutor(50) as pool:
        list(pool.map(lambda i: change_password(login, f"wrong-{i}", csrf=csrf), range(50)))
    limit = stack.deps.settings.login_throttle_after
    assert failed_for(stack, "wrong_current_password") == limit
    assert failures(stack) == limit


# --- resume ---------------------------------------------------------------------------------


def test_a_password_only_session_cannot_resume_an_applications_login(stack):
    first = Login.start(stack, "somchai")  # an application's login: push sent
    first_tx = tx_of(first)
    pushed = stack.nexus.wait_for_push("phone-somchai")
    # The owner presses "this was not me": the phone is suspended.
    reported = stack.nexus.deny("phone-somchai", pushed["id"], report=True)
    assert reported.json()["outcome"] == "reported"
    # The password alone still opens the IdP's own pages (to report the phone lost).
    first.go(f"{stack.idp}/signin?next=/account")
    first.submit({"username": "somchai", "password": PASSWORD})
    assert first.page.status_code == 200
    resumed = first.go(f"{stack.idp}/authorize/resume?tx={first_tx}")
    assert not first.returned
    assert "code=" not in resumed.headers.get("Location", "")
    assert 'id="error-code">login_expired' in resumed.text


def test_resume_needs_the_session_this_login_created(stack):
    first = Login.start(stack, "somchai")
    first_tx = tx_of(first)
    # The same browser finishes another login (its own session) before this one is confirmed.
    with stack.deps.sessions.begin() as session:
        session.execute(update(Device).values(status=DeviceStatus.SUSPENDED))
    first.go(f"{stack.idp}/signin?next=/")
    first.submit({"username": "somchai", "password": PASSWORD})
    resumed = first.go(f"{stack.idp}/authorize/resume?tx={first_tx}")
    assert not first.returned
    assert 'id="error-code">login_expired' in resumed.text


# --- the reverse path -----------------------------------------------------------------------


def test_a_forwarded_qr_code_gives_the_phone_no_number(stack):
    stack.nexus.knobs(drop_pushes=True)
    login = Login.start(stack, "somchai")  # the password holder's own login page
    link = confirm_link(login.page.text)
    assert "number" not in parse_qs(urlsplit(link).query)
    # "Scan to sign this": the victim's phone scans the attacker's code.
    scanned = stack.nexus.scan("phone-somchai", link)
    assert scanned.status_code == 200, scanned.text
    assert "number" not in scanned.json()
    # Approving needs the number from the page, which the victim does not see.
    answered = stack.nexus.approve("phone-somchai", scanned.json()["id"], None)
    assert answered.status_code == 400
    assert answered.json()["error"] == "number_required"
    assert confirm_state(login.reload().text) == "pending"


# --- parallel wrong answers -----------------------------------------------------------------


def test_parallel_wrong_totp_codes_are_evaluated_within_the_throttle(stack):
    stack.nexus.knobs(outage=True)
    login = Login.start(stack, "somchai")
    right = int(stack.nexus.totp("phone-somchai"))
    totp_url = login.url.replace("/login/confirm", "/login/totp")
    csrf = form_fields(login.go(totp_url).text)["csrf_token"]

    def guess(i: int) -> int:
        code = f"{(right + 1000 + i) % 1_000_000:06d}"
        answer = login.browser.request(
            "POST", totp_url, data={"csrf_token": csrf, "code": code}, timeout=60
        )
        return answer.status_code

    with ThreadPoolExecutor(50) as pool:
        assert set(pool.map(guess, range(50))) == {200}
    limit = stack.deps.settings.login_throttle_after
    assert failed_for(stack, "wrong_totp") == limit
    assert failures(stack) == limit


def test_parallel_wrong_numbers_count_once_per_challenge(stack):
    login = Login.start(stack, "somchai")
    number = match_number(login.page.text)
    pushed = stack.nexus.wait_for_push("phone-somchai")
    wrong = 10 + (number - 9) % 90
    with ThreadPoolExecutor(50) as pool:
        list(
            pool.map(lambda _: stack.nexus.approve("phone-somchai", pushed["id"], wrong), range(50))
        )
    assert failed_for(stack, "wrong_number") == 1
    assert failures(stack) == 1


def test_parallel_wrong_passwords_lock_exactly_as_the_readme_says(stack):
    clock = stack.deps.clock
    settings = stack.deps.settings

    def burst(count: int, password: str | None = None) -> list[str]:
        """``count`` passwords posted at once on one fresh login page."""
        login = Login(stack, LoopbackBrowser(), "", requests.Response(), "")
        login.authorize()
        csrf = form_fields(login.page.text)["csrf_token"]

        def guess(i: int) -> str:
            return login.browser.request(
                "POST", login.url, timeout=60,
                data={"csrf_token": csrf, "username": "somchai", "password": password or f"w{i}"},
            ).text  # fmt: skip

        with ThreadPoolExecutor(50) as pool:
            pages = list(pool.map(guess, range(count)))
        assert all('id="login-error"' in page for page in pages)
        return pages

    # docs/features.md, "Brute-force protection": five failures, then every attempt waits;
    # those made while waiting are neither checked nor counted.
    burst(100)
    assert failures(stack) == settings.login_throttle_after
    assert failed_for(stack, "bad_credentials") == settings.login_throttle_after
    assert failed_for(stack, "throttled") == 100 - settings.login_throttle_after
    # Each wait passed (2 s, doubling) lets exactly one more through, up to the lock-out.
    while failures(stack) < settings.login_lockout_after:
        before = failures(stack)
        clock.advance(64)
        burst(20)
        assert failures(stack) == before + 1
    # Then locked for half an hour: nothing is looked at, the right password included.
    clock.advance(settings.login_lockout_seconds - 1)
    burst(20)
    burst(1, PASSWORD)
    assert failures(stack) == settings.login_lockout_after


# --- anchored patterns ----------------------------------------------------------------------


def test_a_push_address_with_a_trailing_newline_is_refused(stack):
    relay = stack.nexus.url
    answer = requests.post(
        f"{relay}/phones/phone-somchai/push-address",
        json={"push_address": f"{relay}/phones/phone-somchai\n"},
        timeout=15,
    )
    assert answer.json().get("error") == "invalid_request", answer.text
    with stack.deps.sessions() as session:
        addresses = list(session.scalars(select(Device.push_address)))
    assert addresses == [f"{relay}/phones/phone-somchai"]


def test_an_approved_login_opened_twice_at_once_makes_one_session(stack):
    login = Login.start(stack, "somchai")
    pushed = stack.nexus.wait_for_push("phone-somchai")
    stack.nexus.approve("phone-somchai", pushed["id"], match_number(login.page.text))
    with ThreadPoolExecutor(10) as pool:
        answers = list(
            pool.map(lambda _: login.browser.request("GET", login.url, timeout=30), range(10))
        )
    assert sum(1 for answer in answers if answer.status_code == 303) >= 1
    with stack.deps.sessions() as session:
        assert len(session.scalars(select(UserSession.id)).all()) == 1


# --- a suspended account --------------------------------------------------------------------


def test_a_login_finishing_while_the_account_is_suspended_gets_no_session(stack):
    login = Login.start(stack, "somchai")
    pushed = stack.nexus.wait_for_push("phone-somchai")
    with stack.deps.sessions.begin() as session:
        session.execute(
            update(User).where(User.username == "somchai").values(status=UserStatus.SUSPENDED)
        )
    stack.nexus.approve("phone-somchai", pushed["id"], match_number(login.page.text))
    page = login.reload()
    assert not login.returned
    assert 'id="error-code">login_expired' in page.text
    # Lifted a moment later: the attempt is over, no session comes back with it.
    with stack.deps.sessions.begin() as session:
        session.execute(
            update(User).where(User.username == "somchai").values(status=UserStatus.ACTIVE)
        )
    login.reload()
    assert not login.returned
    with stack.deps.sessions() as session:
        assert session.scalar(select(UserSession.id)) is None
        assert session.scalar(
            select(AuditEvent.id).where(AuditEvent.event == "login.account_suspended")
        )


# --- no step out of turn --------------------------------------------------------------------


def refused_everywhere_but(login: Login, current: Step | None, csrf: str) -> None:
    """Every page of every other step, read and posted, refuses this login without effect."""
    tx = tx_of(login)
    fields = {
        "csrf_token": csrf, "username": "somchai", "password": PASSWORD, "code": "123456",
        "current_password": PASSWORD, "new_password": NEW_PASSWORD,
        "confirm_password": NEW_PASSWORD,
    }  # fmt: skip
    pushes = len(login.stack.nexus.inbox("phone-somchai"))
    for step, pages in STEP_PAGES.items():
        if step is current:
            continue
        for page in pages:
            url = f"{login.stack.idp}{page}?tx={tx}"
            for method in ("GET", "POST"):
                answer = login.browser.request(method, url, data=fields, timeout=30)
                if answer.status_code == 405:
                    continue  # the page has no such method
                assert answer.status_code == 400, (method, page, answer.status_code)
                assert "Location" not in answer.headers
    assert failures(login.stack) == 0
    assert len(login.stack.nexus.inbox("phone-somchai")) == pushes
    assert password_is(login.stack, PASSWORD)


def test_no_step_can_be_taken_out_of_turn(stack):
    change_due(stack)
    login = Login(stack, LoopbackBrowser(), "", requests.Response(), "")
    login.authorize()
    csrf = form_fields(login.page.text)["csrf_token"]
    refused_everywhere_but(login, Step.PASSWORD, csrf)
    login.submit({"username": "somchai", "password": PASSWORD})
    assert confirm_state(login.page.text) == "pending"
    csrf = csrf_of(login)
    refused_everywhere_but(login, Step.CONFIRM, csrf)
    approve(stack, login)
    assert 'name="new_password"' in login.page.text
    csrf = form_fields(login.page.text)["csrf_token"]
    refused_everywhere_but(login, Step.CHANGE_PASSWORD, csrf)
    # The last step still due: the application cannot be resumed before it.
    early = login.browser.request(
        "GET", f"{stack.idp}/authorize/resume?tx={tx_of(login)}", timeout=30
    )
    assert early.status_code == 400
    assert 'id="error-code">login_expired' in early.text


# --- parallel passkey assertions ------------------------------------------------------------


@pytest.fixture
def passkey_site(settings, deps) -> Iterator[Stack]:
    """The IdP on a host name (a passkey's RP ID cannot be an IP address), with a phone and a
    passkey on record for somchai; no relay, so the page offers the other ways."""
    port = free_port()
    local = build_deps(
        settings.model_copy(update={"issuer": f"http://localhost:{port}",
                                    "soft_token_required": True, "nexus_timeout": 0.5,
                                    "passkeys_enabled": True}),
        clock=deps.clock, store=deps.store, engine=deps.engine,
    )  # fmt: skip
    seed(local, "somchai")
    now = local.clock.now()
    with local.sessions.begin() as session:
        user = session.scalar(select(User).where(User.username == "somchai"))
        session.add(Device(id="d" * 32, user_id=user.id, status=DeviceStatus.ACTIVE,
                           public_jwk={}, key_thumbprint="t" * 43,
                           push_address="http://127.0.0.1:9/phones/phone-somchai",
                           totp_seed_encrypted="x", bound_at=now))  # fmt: skip
        session.add(Passkey(id="pk-1", user_id=user.id, status="active", name="key",
                            public_key="x", sign_count=0, aaguid="0" * 36, backed_up=True,
                            created_at=now))  # fmt: skip
    with serving(create_app(deps=local, background=False), port) as url:
        yield Stack(idp=url.replace("127.0.0.1", "localhost"), nexus=None, deps=local)  # type: ignore[arg-type]


def test_parallel_passkey_assertions_are_evaluated_within_the_throttle(passkey_site):
    site = passkey_site
    login = Login(site, LoopbackBrowser(), "", requests.Response(), "")
    login.authorize()
    login.submit({"username": "somchai", "password": PASSWORD})
    assert 'id="confirm-state"' in login.page.text
    csrf = form_fields(login.go(f"{site.idp}/login/totp?tx={tx_of(login)}").text)["csrf_token"]
    junk = json.dumps({"id": "pk-1", "rawId": "pk-1", "type": "public-key", "response": {}})

    def options() -> None:
        answer = login.browser.request(
            "POST", f"{site.idp}/login/passkey/options?tx={tx_of(login)}",
            data={"csrf_token": csrf}, timeout=30,
        )  # fmt: skip
        assert answer.status_code == 200, answer.text

    def assertion(_: int) -> int:
        return login.browser.request(
            "POST", f"{site.idp}/login/passkey?tx={tx_of(login)}", data=junk, timeout=60,
            headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"},
        ).status_code  # fmt: skip

    # One ceremony, fifty answers at once: one takes the challenge, one is evaluated.
    options()
    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(assertion, range(50)))
    assert statuses.count(400) == 50
    assert failed_for(site, "passkey_rejected") == 1
    # Ceremony after ceremony: evaluated until the throttle holds, then refused unseen.
    limit = site.deps.settings.login_throttle_after
    for _ in range(limit + 3):
        options()
        with ThreadPoolExecutor(10) as pool:
            list(pool.map(assertion, range(10)))
    assert failed_for(site, "passkey_rejected") == limit
    assert failures(site) == limit
