"""A lost phone, suspended through the admin API: everything it confirmed dies at once, a case
waits for the head of unit's letter within three Thai working days; account suspension and its
lifting; the Temporary Access Pass. The IdP and the mock Nexus serve real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
import redis
import requests
from sqlalchemy import select
from sqlalchemy import update

from idp.accounts.models import LoginFailure
from idp.accounts.models import User
from idp.accounts.models import UserSession
from idp.audit.models import AuditEvent
from idp.mfa.models import Device
from idp.mfa.models import Passkey
from idp.revocation.models import LostDeviceCase
from idp.revocation.models import NoticeKind
from idp.revocation.models import RelyingPartyNotice
from idp.revocation.service import end_session
from idp.revocation.working_days import WorkingCalendar
from idp.roles.periods import thai_date
from tests.conftest import NAMESPACE
from tests.conftest import redis_server_url
from tests.factories import PASSWORD
from tests.factories import make_user
from tests.functional.test_admin_api import call
from tests.functional.test_admin_api import token_of
from tests.functional.test_admin_console import PDF
from tests.functional.test_admin_console import set_up_office
from tests.nexus_server import match_number
from tests.push_stack import Login
from tests.push_stack import Stack
from tests.push_stack import push_stack
from tests.rp import form_fields
from tests.servers import LoopbackBrowser

CONFIDENTIAL = ("demo-confidential", "demo-confidential-secret")
STAFF = ("head1", "treasury1", "treasury2", "somchai", "malee", "prasert", "helpdesk1")


@pytest.fixture
def stack(settings, deps, tmp_path) -> Iterator[Stack]:
    with push_stack(settings, deps, tmp_path, users=STAFF) as running:
        set_up_office(running.deps)
        yield running


def helpdesk_token(stack: Stack) -> str:
    answer = requests.post(f"{stack.idp}/token", timeout=10,
                           data={"grant_type": "client_credentials", "scope": "helpdesk"},
                           auth=("demo-service", "demo-service-secret"))  # fmt: skip
    return str(answer.json()["access_token"])


def signed_in(stack: Stack, username: str, scope: str = "openid offline_access") -> dict:
    login = Login.start(stack, username, scope=scope)
    pushed = stack.nexus.wait_for_push(f"phone-{username}")
    stack.nexus.approve(f"phone-{username}", pushed["id"], match_number(login.page.text))
    login.reload()
    return login.tokens()


def introspect(stack: Stack, token: str) -> dict:
    return requests.post(f"{stack.idp}/introspect", data={"token": token}, auth=CONFIDENTIAL,
                         timeout=10).json()  # fmt: skip


def test_suspending_a_lost_phone_ends_everything_it_confirmed(stack):
    tokens = signed_in(stack, "malee")
    assert introspect(stack, tokens["access_token"])["active"] is True
    helpdesk = helpdesk_token(stack)
    answer = call(stack, helpdesk, "POST", "/users/malee/suspend-phone", json={"reason": "lost"})
    assert answer.status_code == 201, answer.text
    case = answer.json()
    expected_due = WorkingCalendar().add_working_days(thai_date(stack.deps.clock.now()), 3)
    assert case["letter_due"] == expected_due.isoformat()
    assert (case["reason"], case["overdue"], case["sessions_ended"]) == ("lost", False, 1)

    assert introspect(stack, tokens["access_token"]) == {"active": False}
    refreshed = requests.post(f"{stack.idp}/token", auth=CONFIDENTIAL, timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})  # fmt: skip
    assert refreshed.json()["error"] == "invalid_grant"  # offline grants die too
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    userinfo = requests.get(f"{stack.idp}/userinfo", timeout=10, headers=bearer)
    assert userinfo.status_code == 401
    with stack.deps.sessions() as session:
        assert session.scalar(select(Device.status)) is not None
        malee = session.scalar(select(User).where(User.username == "malee"))
        statuses = set(session.scalars(select(Device.status).where(Device.user_id == malee.id)))
        assert statuses == {"suspended"}
        logouts = session.scalars(
            select(RelyingPartyNotice.client_id).where(RelyingPartyNotice.kind == NoticeKind.LOGOUT)
        ).all()
        assert logouts == ["demo-confidential"]
        # Subscribers hear of it even without a session there (CAEP, RFC 8417 SETs).
        events = session.execute(
            select(RelyingPartyNotice.client_id, RelyingPartyNotice.payload).where(
                RelyingPartyNotice.kind == NoticeKind.SECURITY_EVENT
            )
        ).all()
        kinds = {(client, payload["event_type"].rsplit("/", 1)[1]) for client, payload in events}
        assert kinds == {(c, e) for c in ("demo-confidential", "gfms-portal")
                         for e in ("session-revoked", "credential-change")}  # fmt: skip

    # The suspended phone confirms nothing: the next login is sent to register a new one.
    login = Login.start(stack, "malee")
    assert login.page.status_code == 403
    assert "soft_token_required" in login.page.text

    again = call(stack, helpdesk, "POST", "/users/malee/suspend-phone", json={"reason": "stolen"})
    assert again.status_code == 200
    assert (again.json()["id"], again.json()["already_suspended"]) == (case["id"], True)


def test_bad_suspension_requests(stack):
    helpdesk = helpdesk_token(stack)
    unknown = call(stack, helpdesk, "POST", "/users/nobody/suspend-phone", json={"reason": "lost"})
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_user")
    reason = call(stack, helpdesk, "POST", "/users/malee/suspend-phone", json={"reason": "bored"})
    assert (reason.status_code, reason.json()["error"]) == (400, "invalid_reason")
    with stack.deps.sessions.begin() as session:
        make_user(session, stack.deps, "phoneless")
    no_phone = call(stack, helpdesk, "POST", "/users/phoneless/suspend-phone",
                    json={"reason": "lost"})  # fmt: skip
    assert (no_phone.status_code, no_phone.json()["error"]) == (409, "no_phone")
    treasury = token_of(stack, "treasury1")
    refused = call(stack, treasury, "POST", "/users/malee/suspend-phone", json={"reason": "lost"})
    assert refused.status_code == 403  # a treasury administrator is not the helpdesk


def test_a_phone_suspended_while_the_login_finishes_gets_no_session(stack):
    login = Login.start(stack, "somchai")
    pushed = stack.nexus.wait_for_push("phone-somchai")
    stack.nexus.approve("phone-somchai", pushed["id"], match_number(login.page.text))
    call(stack, helpdesk_token(stack), "POST", "/users/somchai/suspend-phone",
         json={"reason": "stolen"})  # fmt: skip
    login.reload()
    assert not login.returned
    with stack.deps.sessions() as session:
        somchai = session.scalar(select(User).where(User.username == "somchai"))
        live = session.scalars(select(UserSession).where(
            UserSession.user_id == somchai.id, UserSession.ended_at.is_(None))).all()  # fmt: skip
    assert live == []


def test_account_suspension_and_who_may_lift_it(stack):
    tokens = signed_in(stack, "prasert", scope="openid")
    helpdesk = helpdesk_token(stack)
    suspended = call(stack, helpdesk, "POST", "/users/prasert/suspend", json={"reason": "โอนย้าย"})
    assert suspended.status_code == 200
    assert introspect(stack, tokens["access_token"]) == {"active": False}
    login = Login.start(stack, "prasert")
    assert 'id="password"' in login.page.text  # the password is refused like a wrong one
    lift = call(stack, helpdesk, "POST", "/users/prasert/lift-suspension", json={"reason": "x"})
    assert lift.status_code == 403  # the helpdesk suspends; administrators lift
    with stack.deps.sessions.begin() as session:
        session.scalar(select(User).where(User.username == "prasert")).unit_code = "0000000001"
    treasury = token_of(stack, "treasury1")
    lifted = call(stack, treasury, "POST", "/users/prasert/lift-suspension",
                  json={"reason": "ตรวจสอบแล้ว"})  # fmt: skip
    assert lifted.status_code == 200, lifted.text
    assert signed_in(stack, "prasert", scope="openid")["access_token"]


def test_the_letter_closes_the_case_and_overdue_cases_are_listed(stack, deps):
    helpdesk = helpdesk_token(stack)
    case = call(stack, helpdesk, "POST", "/users/malee/suspend-phone",
                json={"reason": "lost"}).json()  # fmt: skip
    listed = call(stack, helpdesk, "GET", "/cases").json()["cases"]
    assert [c["id"] for c in listed] == [case["id"]]
    assert call(stack, helpdesk, "GET", "/cases", params={"overdue": "1"}).json()["cases"] == []
    deps.clock.advance(10 * 86400)
    helpdesk = helpdesk_token(stack)
    overdue = call(stack, helpdesk, "GET", "/cases", params={"overdue": "1"}).json()["cases"]
    assert [c["id"] for c in overdue] == [case["id"]]
    letter = call(stack, helpdesk, "POST", f"/cases/{case['id']}/letter",
                  files={"letter_file": ("หนังสือ.pdf", PDF, "application/pdf")})  # fmt: skip
    assert letter.status_code == 200, letter.text
    assert letter.json()["letter_received_at"]
    assert call(stack, helpdesk, "GET", "/cases").json()["cases"] == []
    again = call(stack, helpdesk, "POST", f"/cases/{case['id']}/letter",
                 files={"letter_file": ("x.pdf", PDF, "application/pdf")})  # fmt: skip
    assert (again.status_code, again.json()["error"]) == (409, "case_closed")
    with stack.deps.sessions() as session:
        assert session.get(LostDeviceCase, case["id"]).closed_at is not None


def test_due_dates_skip_thai_holidays_and_declared_days_off():
    calendar = WorkingCalendar(extra_days_off=[date(2026, 12, 1)])
    assert WorkingCalendar().add_working_days(date(2025, 4, 10), 3) == date(2025, 4, 18)  # Songkran
    assert WorkingCalendar().add_working_days(date(2025, 12, 30), 3) == date(2026, 1, 7)
    assert WorkingCalendar().add_working_days(date(2026, 11, 27), 3) == date(2026, 12, 2)
    assert calendar.add_working_days(date(2026, 11, 27), 3) == date(2026, 12, 3)


def test_an_access_pass_needs_a_suspended_phone_and_works_once(stack):
    helpdesk = helpdesk_token(stack)
    refused = call(stack, helpdesk, "POST", "/users/malee/access-pass")
    assert refused.status_code == 400  # her phone still works
    call(stack, helpdesk, "POST", "/users/malee/suspend-phone", json={"reason": "lost"})
    issued = call(stack, helpdesk, "POST", "/users/malee/access-pass")
    assert issued.status_code == 201
    assert len(issued.json()["access_pass"]) == 14


def test_re_registration_after_a_loss_starts_with_the_access_pass(stack):
    call(stack, helpdesk_token(stack), "POST", "/users/malee/suspend-phone",
         json={"reason": "stolen"})  # fmt: skip
    # The password alone still opens the IdP's own pages (the phone is gone)...
    login = Login(stack, LoopbackBrowser(), "", requests.Response(), "")
    login.go(f"{stack.idp}/signin?next=/enrol")
    login.submit({"username": "malee", "password": PASSWORD})
    assert 'id="access_pass"' in login.page.text
    # ...but it does not start a new registration: whoever found the phone may know it.
    refused = login.submit({"access_pass": "WRONG-PASS-1234"})
    assert refused.status_code == 403
    assert "helpdesk" in refused.text.lower() or "ช่วยเหลือ" in refused.text
    code = call(stack, helpdesk_token(stack), "POST", "/users/malee/access-pass").json()
    accepted = login.submit({"access_pass": code["access_pass"].lower()})
    # Past the pass, on to Paotang (not running here: the attempt, pass included, is undone).
    assert accepted.status_code == 503
    with stack.deps.sessions() as session:
        events = set(session.scalars(select(AuditEvent.event).where(
            AuditEvent.event.like("revocation.access_pass_%"))))  # fmt: skip
    assert events == {"revocation.access_pass_issued", "revocation.access_pass_refused"}


def test_nothing_the_phone_started_outlives_it(stack):
    """Offline grants of sessions that ended long ago, and passkeys, die with the phone."""
    tokens = signed_in(stack, "malee", scope="openid offline_access")
    with stack.deps.sessions.begin() as session:
        malee = session.scalar(select(User).where(User.username == "malee"))
        sid = session.scalar(select(UserSession.id).where(UserSession.user_id == malee.id))
        end_session(session, stack.deps.revocations, sid, reason="logout",
                    now=stack.deps.clock.now(), access_token_ttl=300)  # fmt: skip
        session.add(Passkey(id="pk-on-the-phone", user_id=malee.id, status="active",
                            name="phone", public_key="x", sign_count=0, aaguid="0" * 36,
                            backed_up=True, created_at=stack.deps.clock.now()))  # fmt: skip
    still = requests.post(f"{stack.idp}/token", auth=CONFIDENTIAL, timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})  # fmt: skip
    assert still.status_code == 200  # an offline grant outlives a logout, as it should
    call(stack, helpdesk_token(stack), "POST", "/users/malee/suspend-phone",
         json={"reason": "stolen"})  # fmt: skip
    after = requests.post(f"{stack.idp}/token", auth=CONFIDENTIAL, timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": still.json()["refresh_token"]})  # fmt: skip
    assert after.json()["error"] == "invalid_grant"
    with stack.deps.sessions() as session:
        assert session.get(Passkey, "pk-on-the-phone").status == "suspended"


def test_after_a_loss_only_the_browser_that_gave_the_pass_goes_on(stack):
    call(stack, helpdesk_token(stack), "POST", "/users/malee/suspend-phone",
         json={"reason": "stolen"})  # fmt: skip
    finder = Login(stack, LoopbackBrowser(), "", requests.Response(), "")
    finder.go(f"{stack.idp}/signin?next=/enrol")
    finder.submit({"username": "malee", "password": PASSWORD})
    refused = finder.go(f"{stack.idp}/enrol/activation", "POST",
                        data=form_fields(finder.page.text))  # fmt: skip
    assert refused.status_code == 403  # the password alone asks for no activation code
    callback = finder.go(f"{stack.idp}/enrol/proofing/callback?state=x&code=y")
    assert callback.status_code == 403


def test_a_locked_out_account_cannot_use_the_lost_phone_form_as_an_oracle(stack):
    login = Login(stack, LoopbackBrowser(), "", requests.Response(), "")
    login.go(f"{stack.idp}/signin?next=/account")
    login.submit({"username": "malee", "password": PASSWORD})
    pushed = stack.nexus.wait_for_push("phone-malee")
    stack.nexus.approve("phone-malee", pushed["id"], match_number(login.page.text))
    page = login.reload()
    with stack.deps.sessions.begin() as session:
        locked = {"failures": 100, "last_failure_at": stack.deps.clock.now()}
        session.execute(update(LoginFailure).values(**locked))
    answer = login.go(f"{stack.idp}/account/report-lost-phone", "POST", data={
        **form_fields(page.text), "password": PASSWORD, "citizen_id": "3100601234565"})  # fmt: skip
    assert answer.status_code == 429
    with stack.deps.sessions() as session:
        assert set(session.scalars(select(Device.status))) == {"active"}


def test_with_redis_flushed_nothing_revoked_comes_back(stack):
    """Redis keeps no data of record: emptied after the suspension, the database still says
    the tokens are dead, and the mirror is rebuilt from it."""
    tokens = signed_in(stack, "malee", scope="openid")
    call(stack, helpdesk_token(stack), "POST", "/users/malee/suspend-phone",
         json={"reason": "lost"})  # fmt: skip
    client = redis.Redis.from_url(redis_server_url())
    keys = list(client.scan_iter(match=f"{NAMESPACE}*", count=1000))
    assert keys
    client.delete(*keys)
    assert introspect(stack, tokens["access_token"]) == {"active": False}
    assert introspect(stack, tokens["access_token"]) == {"active": False}  # rebuilt mirror
