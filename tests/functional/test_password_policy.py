"""The password policy on the change-password step: maximum age, forced changes and their
reasons, history and common passwords, with the page's messages in English and Thai."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy import update

from idp import create_app
from idp.accounts.models import PasswordHistory
from idp.accounts.models import User
from idp.accounts.service import get_user_by_username
from idp.accounts.service import require_password_change
from idp.audit.models import AuditEvent
from idp.deps import build_deps
from tests.factories import PASSWORD
from tests.factories import seed
from tests.nexus_server import match_number
from tests.push_stack import Login
from tests.push_stack import push_stack
from tests.rp import RP
from tests.rp import callback_params

DAY = 86400
NEW = "a much longer passphrase"
NEWER = "another long passphrase here"


@pytest.fixture
def rp(client, deps):
    seed(deps, "somchai", "newuser", temporary=("newuser",))
    return RP(client)


def sign_in(rp: RP, username: str = "somchai", password: str = PASSWORD, *, lang: str = "en"):
    page = rp.authorize(prompt="login", ui_locales=lang)
    return rp.submit(page, username=username, password=password)


def choose(rp: RP, page, new: str, *, current: str = PASSWORD):
    return rp.submit(page, current_password=current, new_password=new, confirm_password=new)


def reason_of(page) -> str | None:
    match = re.search(r'<p id="change-reason">(.*?)</p>', page.get_data(as_text=True), re.S)
    return html.unescape(match.group(1)) if match else None


def errors_of(page) -> list[str]:
    found = re.findall(r'<p class="error" role="alert">(.*?)</p>', page.get_data(as_text=True))
    return [html.unescape(text) for text in found]


def is_change_page(page) -> bool:
    return page.status_code == 200 and 'name="new_password"' in page.get_data(as_text=True)


def events(deps, name: str) -> list[AuditEvent]:
    with deps.sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.event == name)))


def stored_user(deps, username: str = "somchai") -> User:
    with deps.sessions() as session:
        user = get_user_by_username(session, username)
        assert user is not None
        return user


def roles_changed(deps, *, actor: str | None = None) -> None:
    """What the role-change approval does for somchai (the roles package calls the same)."""
    with deps.sessions.begin() as session:
        user = get_user_by_username(session, "somchai")
        assert user is not None
        require_password_change(
            session, user, reason="role_changed", now=deps.clock.now(), actor=actor
        )


def test_a_password_younger_than_90_days_is_not_asked_again(rp, clock):
    clock.advance(89 * DAY)
    assert "code" in callback_params(sign_in(rp))


def test_an_expired_password_must_be_changed_before_the_login_completes(rp, deps, clock):
    clock.advance(90 * DAY + 1)
    page = sign_in(rp)
    # The password still signs in: the change is a step of the login, not a refusal.
    assert is_change_page(page)
    assert "Location" not in page.headers
    assert reason_of(page) == (
        "Your password has expired: it was set more than 90 days ago, and the Ministry's rules "
        "ask for a new password every 3 months. Choose a new password."
    )
    assert "code" in callback_params(choose(rp, page, NEW))
    user = stored_user(deps)
    assert user.password_changed_at == clock.now()
    assert user.must_change_password is False
    changed = events(deps, "account.password_changed")
    assert [event.details["reason"] for event in changed] == ["expired"]
    assert events(deps, "login.failed") == []
    # A fresh password: the next login goes straight through.
    assert "code" in callback_params(sign_in(rp, password=NEW))


def test_the_expiry_message_is_in_thai_by_default(rp, clock):
    clock.advance(91 * DAY)
    page = sign_in(rp, lang="th")
    assert reason_of(page) == (
        "รหัสผ่านของท่านหมดอายุแล้ว เนื่องจากใช้มาเกิน 90 วัน "
        "และตามหลักเกณฑ์ของกระทรวงการคลังต้องเปลี่ยนรหัสผ่านทุก 3 เดือน กรุณากำหนดรหัสผ่านใหม่"
    )


def rp_with(deps, settings, **changes) -> RP:
    """A client of an IdP whose settings differ from the fixture's."""
    changed = settings.model_copy(update=changes)
    local = build_deps(changed, clock=deps.clock, store=deps.store, engine=deps.engine)
    seed(local, "somchai")
    return RP(create_app(deps=local, background=False).test_client())


def test_the_maximum_age_is_a_setting(deps, settings, clock):
    rp = rp_with(deps, settings, password_max_age_days=30)
    clock.advance(30 * DAY - 1)
    assert "code" in callback_params(sign_in(rp))
    clock.advance(1)
    assert "more than 30 days ago" in reason_of(sign_in(rp))


def test_a_maximum_age_of_zero_turns_expiry_off(deps, settings, clock):
    rp = rp_with(deps, settings, password_max_age_days=0)
    clock.advance(4000 * DAY)
    assert "code" in callback_params(sign_in(rp))


def test_an_expired_password_is_changed_after_the_phone_confirmation(settings, deps, tmp_path):
    with push_stack(settings, deps, tmp_path, users=("somchai",)) as stack:
        with stack.deps.sessions.begin() as session:
            session.execute(
                update(User).values(password_changed_at=deps.clock.now() - timedelta(days=91))
            )
        login = Login.start(stack, "somchai", ui_locales="en")
        # Proof of the phone first: nothing is changed on the strength of a password alone.
        assert 'id="match-number"' in login.page.text
        assert 'name="new_password"' not in login.page.text
        pushed = stack.nexus.wait_for_push("phone-somchai")
        number = match_number(login.page.text)
        assert stack.nexus.approve("phone-somchai", pushed["id"], number).status_code == 200
        login.reload()
        assert 'name="new_password"' in login.page.text
        assert "Your password has expired" in login.page.text
        login.submit({"current_password": PASSWORD, "new_password": NEW, "confirm_password": NEW})
        assert login.id_token()["amr"] == ["pwd", "swk", "mca", "mfa"]


def test_an_issued_password_says_why_it_must_be_changed(rp):
    page = sign_in(rp, "newuser")
    assert reason_of(page) == (
        "Your password was issued to you. Choose your own password before you continue."
    )
    thai = sign_in(rp, "newuser", lang="th")
    assert reason_of(thai) == (
        "รหัสผ่านปัจจุบันเป็นรหัสผ่านที่หน่วยงานออกให้ท่าน กรุณากำหนดรหัสผ่านของท่านเองก่อนใช้งานต่อ"
    )


@pytest.mark.parametrize(
    ("lang", "message"),
    [
        ("en", "This is a commonly used password that is easy to guess. Choose another password."),
        ("th", "รหัสผ่านนี้เป็นรหัสผ่านที่ใช้กันทั่วไปและคาดเดาได้ง่าย กรุณาเลือกรหัสผ่านอื่น"),
    ],
)
def test_a_common_password_is_refused_with_a_clear_message(rp, deps, lang, message):
    page = sign_in(rp, "newuser", lang=lang)
    refused = choose(rp, page, "Password2025!")
    assert is_change_page(refused)
    assert errors_of(refused) == [message]
    assert stored_user(deps, "newuser").must_change_password is True
    assert events(deps, "account.password_changed") == []


@pytest.mark.parametrize(
    ("lang", "message"),
    [
        (
            "en",
            "You used this password recently. Choose one that is not among your last 5 passwords.",
        ),
        (
            "th",
            "ท่านเคยใช้รหัสผ่านนี้เมื่อไม่นานมานี้ กรุณาเลือกรหัสผ่านที่ไม่ซ้ำกับรหัสผ่าน 5 ครั้งล่าสุดของท่าน",
        ),
    ],
)
def test_a_recent_password_is_refused_with_a_clear_message(rp, deps, clock, lang, message):
    clock.advance(91 * DAY)
    assert "code" in callback_params(choose(rp, sign_in(rp), NEW))
    clock.advance(91 * DAY)
    page = sign_in(rp, password=NEW, lang=lang)
    refused = choose(rp, page, PASSWORD, current=NEW)
    assert errors_of(refused) == [message]
    assert "code" in callback_params(choose(rp, refused, NEWER, current=NEW))
    with deps.sessions() as session:
        kept = session.scalars(select(PasswordHistory)).all()
    assert len(kept) == 2  # the demo password and NEW


def test_the_current_password_is_refused_as_unchanged(rp, clock):
    clock.advance(91 * DAY)
    refused = choose(rp, sign_in(rp), PASSWORD)
    assert errors_of(refused) == ["Choose a password different from the current one."]


def test_a_role_change_asks_for_a_new_password_at_the_next_login(rp, deps, clock):
    roles_changed(deps, actor="head1")
    # Longer than an issued password lives: the current password still signs in.
    clock.advance(8 * DAY)
    page = sign_in(rp)
    assert is_change_page(page)
    assert reason_of(page) == (
        "Your roles have changed. The rules ask for a new password right after a role change: "
        "choose one before you continue."
    )
    assert "code" in callback_params(choose(rp, page, NEW))
    user = stored_user(deps)
    assert (user.must_change_password, user.password_change_reason) == (False, None)
    [required] = events(deps, "account.password_change_required")
    assert (required.actor, required.details["reason"]) == ("head1", "role_changed")
    [changed] = events(deps, "account.password_changed")
    assert changed.details["reason"] == "role_changed"
    assert events(deps, "login.failed") == []
    # Cleared: the next login goes straight through.
    assert "code" in callback_params(sign_in(rp, password=NEW))


def test_the_role_change_reason_is_in_thai_by_default(rp, deps, clock):
    roles_changed(deps)
    assert reason_of(sign_in(rp, lang="th")) == (
        "บทบาทของท่านในระบบมีการเปลี่ยนแปลง "
        "ตามหลักเกณฑ์ของกระทรวงการคลังต้องเปลี่ยนรหัสผ่านทันทีหลังการเปลี่ยนแปลงบทบาท "
        "กรุณากำหนดรหัสผ่านใหม่ก่อนใช้งานต่อ"
    )
