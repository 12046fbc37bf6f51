"""Two kinds of case: a lost or stolen phone asks the head of unit for a letter; "this was
not me" and a compromised phone open an investigation that asks for none, unless the head of
unit says the phone was lost after all. Only that unit's head may say so."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from idp.audit.models import AuditEvent
from idp.revocation.models import LostDeviceCase
from idp.revocation.working_days import WorkingCalendar
from idp.roles.periods import thai_date
from tests.functional.test_admin_api import call
from tests.functional.test_admin_api import token_of
from tests.functional.test_admin_console import PDF
from tests.functional.test_admin_console import console
from tests.functional.test_helpdesk_console import stack  # noqa: F401 - the fixture
from tests.functional.test_lost_phones import helpdesk_token
from tests.push_stack import Login
from tests.rp import form_fields


def test_this_was_not_me_opens_an_investigation_without_a_letter(stack):  # noqa: F811

    Login.start(stack, "malee")  # the phone answers "this was not me"
    pushed = stack.nexus.wait_for_push("phone-malee")
    assert stack.nexus.deny("phone-malee", pushed["id"], report=True).status_code == 200
    with stack.deps.sessions() as session:
        case = session.scalar(select(LostDeviceCase))
        assert (case.kind, case.letter_due, case.channel) == ("investigation", None, "not_me")
    helpdesk = helpdesk_token(stack)
    listed = call(stack, helpdesk, "GET", "/cases").json()["cases"]
    assert [(c["kind"], c["letter_due"]) for c in listed] == [("investigation", None)]
    head = console(stack, "head1", f"/admin/cases/{case.id}")
    assert 'data-kind="investigation"' in head.page.text
    assert 'id="declare-lost"' in head.page.text
    assert 'type="file"' not in head.page.text
    stack.deps.clock.advance(10 * 86400)  # after the sign-ins: phones keep real time
    helpdesk = helpdesk_token(stack)
    # Never overdue: nobody chases the head of unit for a phone that was never lost.
    assert call(stack, helpdesk, "GET", "/cases", params={"overdue": "1"}).json()["cases"] == []
    letter = call(stack, helpdesk, "POST", f"/cases/{case.id}/letter",
                  files={"letter_file": ("x.pdf", PDF, "application/pdf")})  # fmt: skip
    assert (letter.status_code, letter.json()["error"]) == (400, "no_letter_due")


def test_the_head_of_unit_says_the_phone_was_lost_and_the_letter_becomes_due(stack):  # noqa: F811
    helpdesk = helpdesk_token(stack)
    case = call(stack, helpdesk, "POST", "/users/malee/suspend-phone",
                json={"reason": "compromised"}).json()  # fmt: skip
    assert (case["kind"], case["letter_due"]) == ("investigation", None)
    # Attacks: the helpdesk itself, a treasury office and another unit's head may not declare.
    refused = call(stack, helpdesk, "POST", f"/cases/{case['id']}/declare-lost", json={})
    assert refused.status_code == 403
    treasury = token_of(stack, "treasury1")
    refused = call(stack, treasury, "POST", f"/cases/{case['id']}/declare-lost", json={})
    assert refused.status_code == 403

    yesterday = thai_date(stack.deps.clock.now()) - timedelta(days=1)
    head = console(stack, "head1", f"/admin/cases/{case['id']}")
    fields = form_fields(head.page.text)
    declared = head.go(f"{stack.idp}/admin/cases/{case['id']}/declare-lost", "POST", data={
        **fields,
        "lost_on": f"{yesterday.day}/{yesterday.month}/{yesterday.year + 543}"})  # fmt: skip
    assert declared.status_code == 200
    assert 'id="done"' in declared.text
    assert 'data-kind="lost"' in declared.text
    with stack.deps.sessions() as session:
        stored = session.get(LostDeviceCase, case["id"])
        assert stored.letter_due == WorkingCalendar().add_working_days(yesterday, 3)
        assert session.scalar(select(AuditEvent.actor).where(
            AuditEvent.event == "revocation.case_declared_lost")) is not None  # fmt: skip
    again = head.go(f"{stack.idp}/admin/cases/{case['id']}/declare-lost", "POST",
                    data=fields)  # fmt: skip
    assert again.status_code == 409  # a letter case stays one


def test_the_helpdesk_closes_an_investigation(stack):  # noqa: F811
    helpdesk = helpdesk_token(stack)
    case = call(stack, helpdesk, "POST", "/users/malee/suspend-phone",
                json={"reason": "other"}).json()  # fmt: skip
    no_finding = call(stack, helpdesk, "POST", f"/cases/{case['id']}/close", json={})
    assert no_finding.status_code == 400
    closed = call(stack, helpdesk, "POST", f"/cases/{case['id']}/close",
                  json={"finding": "ผู้ใช้กดผิด"})  # fmt: skip
    assert closed.status_code == 200, closed.text
    assert closed.json()["closed_at"]
    assert call(stack, helpdesk, "GET", "/cases").json()["cases"] == []
    lost = call(stack, helpdesk, "POST", "/users/somchai/suspend-phone", json={"reason": "lost"})
    refused = call(stack, helpdesk, "POST", f"/cases/{lost.json()['id']}/close",
                   json={"finding": "x"})  # fmt: skip
    assert (refused.status_code, refused.json()["error"]) == (400, "not_investigation")
