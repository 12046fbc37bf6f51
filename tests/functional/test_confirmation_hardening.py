"""Attacks on the confirmation step found in review: a second password on an approved login, a
password-only session reused for an application, a phone suspended after it answered, a
password-holder blocking the owner's transaction, waits that would hold every thread, "not me"
followed by a retry, junk answers flooding the audit trail."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import select
from sqlalchemy import update

from idp.audit.models import AuditEvent
from idp.mfa.models import Device
from idp.mfa.models import DeviceStatus
from tests.nexus_server import confirm_state
from tests.nexus_server import match_number
from tests.push_stack import Login
from tests.push_stack import Stack
from tests.push_stack import push_stack
from tests.servers import LoopbackBrowser

PAYMENT = {
    "type": "gfmis_payment_approval",
    "document_number": "3100012345",
    "amount": {"value": "125000.50", "currency": "THB"},
    "payee": "บริษัท ตัวอย่าง จำกัด",
}


@pytest.fixture
def stack(settings, deps, tmp_path) -> Iterator[Stack]:
    with push_stack(settings, deps, tmp_path, users=("somchai", "malee")) as running:
        yield running


def approve(stack: Stack, login: Login, phone: str = "phone-somchai") -> None:
    pushed = stack.nexus.wait_for_push(phone)
    stack.nexus.approve(phone, pushed["id"], match_number(login.page.text))


def suspend_phones(stack: Stack) -> None:
    with stack.deps.sessions.begin() as session:
        session.execute(update(Device).values(status=DeviceStatus.SUSPENDED))


def test_a_second_password_cannot_inherit_an_approved_confirmation(stack):
    login = Login.start(stack, "somchai")
    approve(stack, login)
    # Back to the password page of the same attempt, with someone else's password.
    password_url = login.url.replace("/login/confirm", "/login/password")
    page = login.go(password_url)
    assert 'id="error-code">login_expired' in page.text
    login.go(password_url, "POST", data={"username": "malee", "password": "Demo-Pass-2025!"})
    assert not login.returned


def test_a_password_only_session_is_not_reused_for_an_application(stack):
    suspend_phones(stack)  # lost phones: the password alone still opens the IdP's own pages
    browser = LoopbackBrowser()
    login = Login(stack, browser, "", requests.Response(), "")
    login.go(f"{stack.idp}/signin?next=/")
    login.submit({"username": "somchai", "password": "Demo-Pass-2025!"})
    assert 'id="signed-in"' in login.page.text
    login.authorize()
    assert login.page.status_code == 403
    assert 'id="error-code">soft_token_required' in login.page.text
    with stack.deps.sessions() as session:
        assert session.scalar(
            select(AuditEvent.id).where(AuditEvent.event == "login.soft_token_missing")
        )


def test_a_phone_suspended_after_approving_completes_nothing(stack):
    login = Login.start(stack, "somchai")
    approve(stack, login)
    suspend_phones(stack)
    assert confirm_state(login.reload().text) == "no_device"
    assert not login.returned


def test_the_owners_transaction_outranks_a_password_holders_push(stack):
    owner = Login.start(stack, "somchai")
    approve(stack, owner)
    owner.reload()
    assert owner.returned
    intruder = Login.start(stack, "somchai")  # has the password, not the phone
    assert confirm_state(intruder.page.text) == "pending"
    owner.authorize(authorization_details=json.dumps([PAYMENT]))
    assert confirm_state(owner.page.text) == "pending"
    # The phone holds the owner's transaction; the intruder's push was withdrawn.
    [pushed] = stack.nexus.inbox("phone-somchai")[-1:]
    assert pushed["authorization_details"]
    assert confirm_state(intruder.reload().text) == "expired"


def test_waiting_pages_never_take_every_thread(settings, deps, tmp_path):
    with push_stack(settings, deps, tmp_path, users=("somchai", "malee"), mfa_max_waiting=1,
                    mfa_long_poll=3.0) as stack:  # fmt: skip
        first = Login.start(stack, "somchai")
        second = Login.start(stack, "malee")

        def wait_url(login: Login) -> str:
            found = re.search(r'data-wait-url="([^"]+)"', login.page.text).group(1)
            return stack.idp + found.replace("&amp;", "&")

        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(first.browser.request, "GET", wait_url(first), timeout=10)
            time.sleep(0.5)  # the first wait has taken the one slot
            answer = second.browser.request("GET", wait_url(second), timeout=10).json()
            assert answer == {"state": "pending", "retry_after_ms": 1000}
            assert held.result().json() == {"state": "pending"}


def test_after_not_me_the_attempt_cannot_send_again(stack):
    login = Login.start(stack, "somchai")
    confirm_url = login.url
    pushed = stack.nexus.wait_for_push("phone-somchai")
    totp_page = login.go(confirm_url.replace("/login/confirm", "/login/totp")).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', totp_page).group(1)
    stack.nexus.deny("phone-somchai", pushed["id"], report=True)
    # The browser posts "send again" before ever seeing the page that says it is over.
    page = login.go(confirm_url, "POST", data={"csrf_token": csrf})
    assert 'id="error-code">login_expired' in page.text
    assert stack.nexus.inbox("phone-somchai") == []


def test_junk_answers_are_cut_off_before_they_flood_the_trail(stack):
    url = f"{stack.idp}/mfa/answers"
    statuses = [
        requests.post(
            url, json={"answer": "x.y.z"}, headers={"DPoP": "junk"}, timeout=10
        ).status_code
        for _ in range(64)
    ]
    assert statuses[0] == 401
    assert statuses[-1] == 429
    with stack.deps.sessions() as session:
        audited = session.scalars(
            select(AuditEvent.id).where(AuditEvent.event == "mfa.answer_rejected")
        ).all()
    assert len(audited) == 30
