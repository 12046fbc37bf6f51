"""The administration console over HTTP: the head of unit designates with the written order,
the treasury office decides, accounts are issued one by one or from CSV; a login the phone
confirmed and an administrative role are needed, and each person sees only their remit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
import requests
from sqlalchemy import select

from idp.accounts.models import User
from idp.audit.service import NO_CONTEXT
from idp.roles.assignments import held_roles
from idp.roles.authority import SYSTEM
from idp.roles.authority import grant_admin_role
from idp.roles.models import AdminRole
from idp.roles.models import DesignationRequest
from idp.roles.models import RoleAssignment
from idp.roles.periods import thai_date
from idp.roles.units import create_unit
from tests.factories import PASSWORD
from tests.nexus_server import match_number
from tests.push_stack import Login
from tests.push_stack import Stack
from tests.push_stack import push_stack
from tests.rp import form_fields
from tests.servers import LoopbackBrowser

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
UNIT, OTHER_UNIT = "0000000001", "0000000002"
STAFF = ("head1", "treasury1", "treasury2", "somchai", "malee", "prasert")


def set_up_office(deps) -> None:
    now = deps.clock.now()
    with deps.sessions.begin() as session:
        for code, province in ((UNIT, "นนทบุรี"), (OTHER_UNIT, "เชียงใหม่")):
            create_unit(session, SYSTEM, code=code, name_th=f"หน่วย {code}", province=province,
                        treasury_office=f"คลังจังหวัด{province}", now=now, actor="test",
                        audit=NO_CONTEXT)  # fmt: skip
        grants = (("head1", AdminRole.HEAD_OF_UNIT, {"unit_code": UNIT}),
                  ("treasury1", AdminRole.TREASURY_ADMIN, {"province": "นนทบุรี"}),
                  ("treasury2", AdminRole.TREASURY_ADMIN, {"province": "เชียงใหม่"}))  # fmt: skip
        for username, role, scope in grants:
            user = session.scalar(select(User).where(User.username == username))
            grant_admin_role(session, SYSTEM, user, role, now=now, actor="test",
                             audit=NO_CONTEXT, **scope)  # fmt: skip


@pytest.fixture
def stack(settings, deps, tmp_path) -> Iterator[Stack]:
    with push_stack(settings, deps, tmp_path, users=STAFF, order_max_bytes=300 * 1024) as running:
        set_up_office(running.deps)
        yield running


def console(stack: Stack, username: str, page: str = "/admin") -> Login:
    """A browser signed in to the IdP's own pages, the login confirmed on the phone."""
    login = Login(stack, LoopbackBrowser(), "", requests.Response(), "")
    login.go(f"{stack.idp}/signin?next={page}")
    login.submit({"username": username, "password": PASSWORD})
    pushed = stack.nexus.wait_for_push(f"phone-{username}")
    stack.nexus.approve(f"phone-{username}", pushed["id"], match_number(login.page.text))
    login.reload()
    assert login.url == f"{stack.idp}{page}", login.url
    return login


def submit_designation(login: Login, content: bytes = PDF, **fields: str) -> requests.Response:
    page = login.go(f"{login.stack.idp}/admin/designations/new")
    values = {**form_fields(page.text), "unit_code": UNIT, "username": "malee",
              "role": "approve-1", "valid_from": "2026-11-01", "order_number": "12/2569",
              "order_date": "2026-10-30", **fields}  # fmt: skip
    return login.go(
        f"{login.stack.idp}/admin/designations/new", "POST", data=values,
        files={"order_file": ("คำสั่ง.pdf", content, "application/pdf")},
    )  # fmt: skip


def pending_id(stack: Stack) -> str:
    with stack.deps.sessions() as session:
        return session.scalar(select(DesignationRequest.id))


def test_head_of_unit_designates_and_the_treasury_office_approves(stack):
    head = console(stack, "head1")
    assert 'id="new-designation-link"' in head.page.text
    page = submit_designation(head)
    assert 'id="submitted"' in page.text
    assert 'id="approve"' not in page.text  # the head asks; others decide
    request_id = pending_id(stack)
    order = head.go(f"{stack.idp}/admin/designations/{request_id}/order")
    assert order.content == PDF
    assert order.headers["Content-Type"] == "application/pdf"
    assert order.headers["X-Content-Type-Options"] == "nosniff"
    assert order.headers["Content-Disposition"].startswith("attachment")

    treasury = console(stack, "treasury1")
    queue = treasury.go(f"{stack.idp}/admin/designations")
    assert f'data-id="{request_id}"' in queue.text.split('id="queue"')[1]
    detail = treasury.go(f"{stack.idp}/admin/designations/{request_id}")
    decided = treasury.go(
        f"{stack.idp}/admin/designations/{request_id}/decision", "POST",
        data={**form_fields(detail.text), "decision": "approve", "reason": "ครบถ้วน"},
    )  # fmt: skip
    assert 'id="request-status"' in decided.text
    with stack.deps.sessions() as session:
        malee = session.scalar(select(User).where(User.username == "malee"))
        assignment = session.scalar(
            select(RoleAssignment).where(RoleAssignment.user_id == malee.id)
        )
        assert assignment.role == "approve-1"
        assert malee.must_change_password


def test_the_form_explains_each_refusal_in_thai(stack):
    head = console(stack, "head1")
    page = submit_designation(head, content=b"<html>not an order</html>")
    assert page.status_code == 400
    assert "PDF, PNG หรือ JPEG" in page.text
    page = submit_designation(head, valid_from="31/2/2569")  # no such day
    assert page.status_code == 400
    assert 'id="form-error"' in page.text
    assert "พ.ศ." in page.text
    page = submit_designation(head, unit_code=OTHER_UNIT)
    assert page.status_code == 400
    assert 'id="form-error"' in page.text
    with stack.deps.sessions() as session:
        assert session.scalar(select(DesignationRequest.id)) is None


def big_pdf(size: int) -> bytes:
    return b"%PDF-1.4\n" + b"0" * (size - 16) + b"\n%%EOF\n"


def test_scanned_orders_of_real_size_are_accepted_and_oversized_ones_explained(stack):
    head = console(stack, "head1")
    assert 'id="submitted"' in submit_designation(head, content=big_pdf(250 * 1024)).text
    too_large = submit_designation(head, content=big_pdf(320 * 1024), username="prasert")
    assert too_large.status_code == 400
    assert "ไฟล์คำสั่งมีขนาดใหญ่เกินกำหนด" in too_large.text
    far_too_large = submit_designation(head, content=big_pdf(2 * 1024 * 1024), username="prasert")
    assert far_too_large.status_code == 413
    with stack.deps.sessions() as session:
        assert len(session.scalars(select(DesignationRequest)).all()) == 1


def test_another_province_neither_sees_nor_decides(stack):
    submit_designation(console(stack, "head1"))
    request_id = pending_id(stack)
    outsider = console(stack, "treasury2")
    assert 'id="queue-empty"' in outsider.go(f"{stack.idp}/admin/designations").text
    assert outsider.go(f"{stack.idp}/admin/designations/{request_id}").status_code == 404
    detail_form = outsider.go(f"{stack.idp}/admin/accounts/new").text  # a form, its CSRF token
    refused = outsider.go(
        f"{stack.idp}/admin/designations/{request_id}/decision", "POST",
        data={**form_fields(detail_form), "decision": "approve", "reason": "x"},
    )  # fmt: skip
    assert refused.status_code == 404
    with stack.deps.sessions() as session:
        assert session.get(DesignationRequest, request_id).status == "pending"


def test_people_without_an_administrative_role_are_refused(stack):
    user = console(stack, "somchai", "/account/roles")
    assert 'id="no-roles"' in user.page.text
    page = user.go(f"{stack.idp}/admin")
    assert page.status_code == 403
    assert 'id="refused-role"' in page.text


def test_treasury_issues_an_account_and_a_csv_of_them(stack):
    treasury = console(stack, "treasury1")
    form = treasury.go(f"{stack.idp}/admin/accounts/new")
    issued = treasury.go(
        f"{stack.idp}/admin/accounts/new", "POST",
        data={**form_fields(form.text), "unit_code": UNIT, "citizen_id": "3501100456783",
              "given_name_th": "นภา", "family_name_th": "ใหม่ทอง", "given_name_en": "Napa",
              "family_name_en": "Maithong", "legacy_token_key": "yes"},
    )  # fmt: skip
    assert issued.status_code == 200, issued.text[:500]
    assert '<td class="username">napa.m</td>' in issued.text
    assert issued.headers["Cache-Control"] == "no-store"
    csv = ("citizen_id,given_name_th,family_name_th,given_name_en,family_name_en,unit_code\n"
           "1101700230074,สมชาย,ใจดี,Somchai,Jaidee,0000000001\n"
           "1101700230075,ผิด,เลข,Bad,Number,0000000001\n"
           "3100601234565,มาลี,ศรีสุข,Malee,Srisuk,0000000002\n"
           f"1409900123454,{'ก' * 101},ยาว,Long,Name,0000000001\n"
           "3102100678900,ศูนย์\x00,ไบต์,Nul,Byte,0000000001\n")  # fmt: skip
    form = treasury.go(f"{stack.idp}/admin/accounts/import")
    report = treasury.go(
        f"{stack.idp}/admin/accounts/import", "POST", data=form_fields(form.text),
        files={"csv_file": ("staff.csv", csv.encode("utf-8-sig"), "text/csv")},
    )  # fmt: skip
    assert report.text.count('class="issued"') == 1
    assert report.text.count('class="failed"') == 4
    assert "somchai.j" in report.text
    with stack.deps.sessions() as session:
        napa = session.scalar(select(User).where(User.username == "napa.m"))
        assert (napa.unit_code, napa.legacy_token_key, napa.must_change_password) == (
            UNIT, True, True)  # fmt: skip


def test_orders_are_dated_in_the_buddhist_era_with_thai_or_arabic_digits(stack):
    head = console(stack, "head1")
    page = submit_designation(head, valid_from="๑/๑๑/๒๕๖๙", order_date="30/10/2569")
    assert 'id="submitted"' in page.text, page.text
    with stack.deps.sessions() as session:
        found = session.scalar(select(DesignationRequest))
        assert (found.valid_from, found.order_date) == (date(2026, 11, 1), date(2026, 10, 30))
    assert "1 พ.ย. 2569" in page.text


def test_an_order_changes_a_role_through_the_console(stack):
    head = console(stack, "head1")
    submit_designation(head)
    treasury = console(stack, "treasury1")

    def approve(request_id: str) -> None:
        detail = treasury.go(f"{stack.idp}/admin/designations/{request_id}")
        treasury.go(
            f"{stack.idp}/admin/designations/{request_id}/decision", "POST",
            data={**form_fields(detail.text), "decision": "approve", "reason": "ตามคำสั่ง"},
        )  # fmt: skip

    approve(pending_id(stack))
    page = submit_designation(head, kind="change", ends_role="approve-1", role="approve-2",
                              valid_from="", order_number="13/2569")  # fmt: skip
    assert page.status_code == 400  # the first day is required
    today = thai_date(stack.deps.clock.now())
    page = submit_designation(head, kind="change", ends_role="approve-1", role="approve-2",
                              valid_from=today.isoformat(), order_number="13/2569")  # fmt: skip
    assert 'id="submitted"' in page.text
    assert "เปลี่ยนหน้าที่" in page.text
    with stack.deps.sessions() as session:
        change_id = session.scalar(
            select(DesignationRequest.id).where(DesignationRequest.kind == "change")
        )
    approve(change_id)
    with stack.deps.sessions() as session:
        malee = session.scalar(select(User).where(User.username == "malee"))
        assert [h.role for h in held_roles(session, malee.id, today)] == ["approve-2"]
