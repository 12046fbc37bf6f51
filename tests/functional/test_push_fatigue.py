"""Anti-fatigue: back-off after denials, a pause after repeated denials, a cap per window, and
"this was not me" (alert, and by policy the phone suspended with every session it confirmed)."""

from __future__ import annotations

from sqlalchemy import select

from idp.accounts.models import UserSession
from idp.audit.models import SecurityAlert
from idp.mfa.models import Device
from idp.mfa.models import DeviceStatus
from tests.nexus_server import confirm_state
from tests.nexus_server import match_number
from tests.push_stack import Login
from tests.push_stack import push_stack


def deny(stack, login: Login, *, report: bool = False) -> None:
    pushed = stack.nexus.wait_for_push("phone-somchai")
    assert stack.nexus.deny("phone-somchai", pushed["id"], report=report).status_code == 200
    login.reload()


def approve(stack, login: Login) -> None:
    pushed = stack.nexus.wait_for_push("phone-somchai")
    stack.nexus.approve("phone-somchai", pushed["id"], match_number(login.page.text))
    login.reload()


def test_each_denial_delays_the_next_push_more(settings, deps, tmp_path):
    with push_stack(settings, deps, tmp_path, users=("somchai",), mfa_denial_backoff=30) as stack:
        login = Login.start(stack, "somchai")
        deny(stack, login)
        login.send_again()
        assert confirm_state(login.page.text) == "push_limited"
        stack.deps.clock.advance(31)
        login.send_again()
        deny(stack, login)
        stack.deps.clock.advance(31)  # the second denial doubled the wait to 60 s
        login.send_again()
        assert confirm_state(login.page.text) == "push_limited"
        stack.deps.clock.advance(30)
        login.send_again()
        assert confirm_state(login.page.text) == "pending"


def test_repeated_denials_pause_pushes_until_a_login_succeeds(settings, deps, tmp_path):
    with push_stack(settings, deps, tmp_path, users=("somchai",), mfa_denial_backoff=1,
                    mfa_denial_lock_after=2) as stack:  # fmt: skip
        login = Login.start(stack, "somchai")
        deny(stack, login)
        stack.deps.clock.advance(2)
        login.send_again()
        deny(stack, login)
        stack.deps.clock.advance(3)  # past the back-off: the pause is what stops it
        login.send_again()
        assert confirm_state(login.page.text) == "push_paused"
        # The owner still signs in with the code from the app, which ends the pause.
        login.use_code(stack.nexus.totp("phone-somchai"))
        assert login.returned
        assert confirm_state(Login.start(stack, "somchai").page.text) == "pending"


def test_pushes_per_window_are_capped(settings, deps, tmp_path):
    with push_stack(settings, deps, tmp_path, users=("somchai",), mfa_push_limit=2) as stack:
        login = Login.start(stack, "somchai")
        stack.deps.clock.advance(stack.deps.settings.mfa_challenge_ttl + 1)
        login.reload()
        login.send_again()
        assert confirm_state(login.page.text) == "pending"
        stack.deps.clock.advance(stack.deps.settings.mfa_challenge_ttl + 1)
        login.reload()
        login.send_again()
        assert confirm_state(login.page.text) == "push_limited"
        assert 'id="use-code"' in login.page.text


def test_this_was_not_me_alerts_and_suspends_the_phone(settings, deps, tmp_path):
    with push_stack(settings, deps, tmp_path, users=("somchai",)) as stack:
        mine = Login.start(stack, "somchai")
        approve(stack, mine)
        assert mine.returned
        intruder = Login.start(stack, "somchai")
        deny(stack, intruder, report=True)
        assert confirm_state(intruder.page.text) == "reported"
        with stack.deps.sessions() as session:
            [alert] = session.scalars(select(SecurityAlert)).all()
            assert alert.kind == "mfa.reported_not_me"
            assert alert.details["context"]["ip"] == "127.0.0.1"
            [device] = session.scalars(select(Device)).all()
            assert device.status == DeviceStatus.SUSPENDED
            # The session the phone confirmed earlier ends with it.
            [ended] = session.scalars(select(UserSession)).all()
            assert ended.device_id == device.id
            assert ended.end_reason == "device_suspended"
        # The phone confirms nothing now.
        again = Login.start(stack, "somchai")
        assert 'id="error-code">soft_token_required' in again.page.text


def test_suspension_on_report_is_a_policy(settings, deps, tmp_path):
    with push_stack(settings, deps, tmp_path, users=("somchai",),
                    mfa_suspend_on_report=False) as stack:  # fmt: skip
        login = Login.start(stack, "somchai")
        deny(stack, login, report=True)
        with stack.deps.sessions() as session:
            assert session.scalar(select(SecurityAlert.kind)) == "mfa.reported_not_me"
            assert session.scalar(select(Device.status)) == DeviceStatus.ACTIVE
