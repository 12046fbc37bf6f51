"""The helpdesk console and the account page over HTTP: verify the caller, suspend the phone,
see the case through to the head of unit's letter; a user ends sessions and reports their own
phone lost. The helpdesk never changes roles."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from idp.accounts.models import User
from idp.audit.models import AuditEvent
from idp.audit.service import NO_CONTEXT
from idp.mfa.models import Device
from idp.revocation.models import LostDeviceCase
from idp.roles.authority import SYSTEM
from idp.roles.authority import grant_admin_role
from idp.roles.models import AdminRole
from idp.roles.periods import thai_date
from tests.factories import PASSWORD
from tests.functional.test_admin_console import PDF
from tests.functional.test_admin_console import UNIT
from tests.functional.test_admin_console import console
from tests.functional.test_admin_console import set_up_office
from tests.nexus_server import match_number
from tests.push_stack import Login
from tests.push_stack import Stack
from tests.push_stack import push_stack
from tests.rp import form_fields

STAFF = ("head1", "treasury1", "treasury2", "somchai", "malee", "prasert", "helpdesk1")
CHECKED = {f"check_{item}": "yes" for item in ("citizen_id", "unit", "callback", "head_of_unit")}
MALEE_ID = "3100601234565"
CONFIDENTIAL = ("demo-confidential", "demo-confidential-secret")


@pytest.fixture
def stack(settings, deps, tmp_path) -> Iterator[Stack]:
    with push_stack(settings, deps, tmp_path, users=STAFF) as running:
        set_up_office(running.deps)
        with running.deps.sessions.begin() as session:
            helpdesk = session.scalar(select(User).where(User.username == "helpdesk1"))
            now = running.deps.clock.now()
            grant_admin_role(session, SYSTEM, helpdesk, AdminRole.HELPDESK, now=now,
                             actor="test", audit=NO_CONTEXT)  # fmt: skip
            malee = session.scalar(select(User).where(User.username == "malee"))
            malee.unit_code = UNIT
            malee.citizen_id_hash = running.deps.cipher.keyed_hash(MALEE_ID, purpose="citizen_id")
        yield running


def malee_signs_in(stack: Stack) -> tuple[Login, dict]:
    login = Login.start(stack, "malee")
    pushed = stack.nexus.wait_for_push("phone-malee")
    stack.nexus.approve("phone-malee", pushed["id"], match_number(login.page.text))
    login.reload()
    return login, login.tokens()


def active(stack: Stack, token: str) -> bool:
    answer = requests.post(f"{stack.idp}/introspect", data={"token": token}, auth=CONFIDENTIAL,
                           timeout=10)  # fmt: skip
    return bool(answer.json()["active"])


def test_the_helpdesk_suspends_at_once_and_verifies_only_to_give_access_back(stack):
    _, tokens = malee_signs_in(stack)
    helpdesk = console(stack, "helpdesk1", "/helpdesk")
    assert 'id="alerts"' in helpdesk.page.text
    page = helpdesk.go(f"{stack.idp}/helpdesk?q=malee")
    assert 'data-status="active"' in page.text
    assert 'class="session"' in page.text
    action = f"{stack.idp}/helpdesk/users/malee/action"
    # The page's boxes, unticked but one: a browser sends only the ticked ones.
    hidden = {k: v for k, v in form_fields(page.text).items() if not k.startswith("check_")}
    suspend = {**hidden, "action": "suspend_phone", "reason": "lost", "check_unit": "yes"}
    done = helpdesk.go(action, "POST", data=suspend)
    assert done.status_code == 200
    assert 'id="done"' in done.text
    assert 'data-status="suspended"' in done.text
    assert not active(stack, tokens["access_token"])
    with stack.deps.sessions() as session:
        case = session.scalar(select(LostDeviceCase))
        assert (case.kind, case.verified) == ("lost", ["unit"])
        recorded = session.scalar(select(AuditEvent.details).where(
            AuditEvent.event == "revocation.phone_suspended"))  # fmt: skip
        assert recorded["verified"] == ["unit"]
    # Access back (a pass to register a new phone) needs every check of the caller.
    unchecked = helpdesk.go(action, "POST", data={**suspend, "action": "access_pass"})
    assert unchecked.status_code == 400
    assert 'id="action-error"' in unchecked.text
    assert 'id="access-pass"' not in unchecked.text
    passed = helpdesk.go(action, "POST", data={**suspend, **CHECKED, "action": "access_pass"})
    assert 'id="access-pass"' in passed.text

    cases = helpdesk.go(f"{stack.idp}/admin/cases")
    assert cases.text.count('class="case') == 1
    with stack.deps.sessions.begin() as session:  # the due date passed (phones keep real time)
        case = session.scalar(select(LostDeviceCase))
        case.letter_due = thai_date(stack.deps.clock.now()) - timedelta(days=1)
    head = console(stack, "head1", "/admin/cases")
    assert "overdue-flag" in head.page.text  # the head of unit sees their unit's late letter
    case_id = head.page.text.split('data-id="')[1].split('"')[0]
    received = head.go(f"{stack.idp}/admin/cases/{case_id}/letter", "POST",
                       data=form_fields(head.page.text),
                       files={"letter_file": ("หนังสือแจ้ง.pdf", PDF, "application/pdf")})  # fmt: skip
    assert 'id="received"' in received.text
    assert 'id="no-cases"' in received.text


def test_the_helpdesk_never_changes_roles(stack):
    helpdesk = console(stack, "helpdesk1", "/helpdesk")
    assert helpdesk.go(f"{stack.idp}/admin/designations/new").status_code == 403
    assert helpdesk.go(f"{stack.idp}/admin/accounts/new").status_code == 403
    treasury = console(stack, "treasury1", "/admin")
    assert treasury.go(f"{stack.idp}/helpdesk").status_code == 403


def test_a_user_ends_a_session_and_reports_the_phone_lost(stack):
    _, tokens = malee_signs_in(stack)
    mine = console(stack, "malee", "/account")
    assert mine.page.text.count('class="session"') == 2
    ended = mine.go(f"{stack.idp}/account/sessions/end", "POST",
                    data={**form_fields(mine.page.text), "sid": "all"})  # fmt: skip
    assert ended.status_code == 200
    assert not active(stack, tokens["access_token"])

    again = console(stack, "malee", "/account")
    fields = form_fields(again.page.text)
    someone_else = {**fields, "password": PASSWORD, "citizen_id": "1101700230074"}
    wrong = again.go(f"{stack.idp}/account/report-lost-phone", "POST", data=someone_else)
    assert wrong.status_code == 400
    assert 'id="report-error"' in wrong.text
    reported = again.go(f"{stack.idp}/account/report-lost-phone", "POST",
                        data={**fields, "password": PASSWORD, "citizen_id": MALEE_ID})  # fmt: skip
    assert 'id="reported"' in reported.text
    with stack.deps.sessions() as session:
        malee = session.scalar(select(User).where(User.username == "malee"))
        assert set(session.scalars(select(Device.status).where(Device.user_id == malee.id))) == {
            "suspended"
        }


def test_a_not_me_report_reaches_the_helpdesk_alerts(stack):
    login = Login.start(stack, "malee")
    pushed = stack.nexus.wait_for_push("phone-malee")
    assert stack.nexus.deny("phone-malee", pushed["id"], report=True).status_code == 200
    assert not login.reload().url.startswith("http://127.0.0.1:9999")
    helpdesk = console(stack, "helpdesk1", "/helpdesk")
    rows = helpdesk.page.text.split('data-kind="mfa.reported_not_me"')[1:]
    assert len(rows) == 1
    assert ">malee<" in rows[0].split("</tr>")[0]
    assert "<title>" in helpdesk.page.text.split('id="alerts"')[0]  # the page itself is whole
    # The report suspended the phone like any suspension: a case waits for the letter.
    with stack.deps.sessions() as session:
        case = session.scalar(select(LostDeviceCase))
        assert (case.channel, case.reason) == ("not_me", "compromised")
