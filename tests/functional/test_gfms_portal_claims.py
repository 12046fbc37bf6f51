"""The claimant's and the finance officer's e-signatures (issue 13; กค 0402.2/ว 3 ข้อ 1.2
and 1.3): a civil servant submits a claim confirmed on the phone, a recorder may key one in
for them, the officer sends it back with a reason or signs that it was checked; one person
gives at most one of a document's four signatures."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gfms_portal.models import Signature
from tests.functional.test_gfms_portal import CLAIMANT
from tests.functional.test_gfms_portal import checked
from tests.functional.test_gfms_portal import claimed
from tests.functional.test_gfms_portal import portal  # noqa: F401 - the fixture
from tests.functional.test_gfms_portal import user
from tests.functional.test_role_tokens import assign
from tests.portal_stack import PortalStack
from tests.portal_stack import error_code
from tests.portal_stack import status_of


@pytest.fixture
def office(portal: PortalStack) -> PortalStack:  # noqa: F811
    """The portal of one unit: finance officer, approvers and a claimant."""
    return portal


def test_a_claimant_submits_and_signs_on_the_phone_what_they_claim(office):
    wichai = user(office, CLAIMANT)
    assert 'id="no-roles"' in wichai.page.text
    assert 'id="new-claim"' in wichai.page.text
    url = wichai.record(type="other", amount="950", payee="นายวิชัย มีสิทธิ์")
    assert status_of(wichai.page.text) == "recorded"  # keyed in, not yet a claim
    assert 'id="claim"' in wichai.page.text
    wichai.start_approval(url, "claim")
    assert "950.00" in wichai.page.text  # the IdP shows what is being signed
    pushed = wichai.confirm_on_phone()
    details = pushed["authorization_details"][0]
    assert details["actions"] == ["claim"]
    assert details["amount"] == {"value": "950.00", "currency": "THB"}
    assert details["payee"] == "นายวิชัย มีสิทธิ์"
    assert status_of(wichai.page.text) == "submitted"
    assert 'data-action="claim"' in wichai.page.text
    assert "วิชัย" in wichai.page.text or "wichai" in wichai.page.text
    assert url in wichai.go(f"{office.url}/claims").text.replace("&amp;", "&") or (
        url.rsplit("/", 1)[1] in wichai.page.text
    )


def test_a_request_keyed_in_for_someone_is_a_claim_only_once_they_sign(office):
    somchai = user(office, "somchai")
    url = somchai.record(claimant=CLAIMANT)
    assert status_of(somchai.page.text) == "recorded"
    assert 'id="claim"' not in somchai.page.text
    assert 'id="check"' not in somchai.page.text
    somchai.start_approval(url, "claim")
    assert error_code(somchai.page.text) == "not_allowed"
    wichai = user(office, CLAIMANT)
    wichai.approve(url, "claim")
    assert status_of(wichai.page.text) == "submitted"


def test_nobody_but_the_claimant_signs_the_claim(office):
    url = user(office, "somchai").record(claimant=CLAIMANT)
    malee = user(office, "malee")  # sees the unit's documents, is not the claimant
    malee.start_approval(url, "claim")
    assert error_code(malee.page.text) == "not_allowed"
    assert status_of(malee.go(url).text) == "recorded"


def test_no_approval_before_the_officers_check(office):
    url = claimed(office)
    malee = user(office, "malee")
    malee.go(url)
    assert 'id="approve-1"' not in malee.page.text
    malee.start_approval(url, "approve-1")
    assert error_code(malee.page.text) == "not_allowed"
    assert status_of(malee.go(url).text) == "submitted"


def test_the_officer_sends_it_back_once_then_signs_it_checked(office):
    url = claimed(office)
    somchai = user(office, "somchai")
    somchai.go(url)
    assert 'id="send-back"' in somchai.page.text
    somchai.go(f"{url}/return", "POST", data={"csrf": somchai.csrf(), "reason": "  "})
    assert error_code(somchai.page.text) == "invalid_document"
    somchai.go(f"{url}/return", "POST",
               data={"csrf": somchai.csrf(), "reason": "ขาดใบเสร็จค่าที่พัก"})  # fmt: skip
    assert status_of(somchai.page.text) == "returned"
    assert "ขาดใบเสร็จค่าที่พัก" in somchai.page.text
    # The claimant corrects it and signs again; the first claim stays on file, superseded.
    wichai = user(office, CLAIMANT)
    wichai.go(url)
    assert "ขาดใบเสร็จค่าที่พัก" in wichai.page.text
    wichai.go(f"{url}/edit")
    wichai.go(f"{url}/edit", "POST", data={"csrf": wichai.csrf(), "type": "travel",
              "amount": "125000.50", "payee": "นายสมศักดิ์ เดินทาง"},
              files={"files": ("hotel.pdf", b"%PDF-1.4 hotel\n", "application/pdf")})  # fmt: skip
    assert "hotel.pdf" in wichai.page.text
    wichai.approve(url, "claim")
    assert status_of(wichai.page.text) == "submitted"
    somchai.approve(url, "check")
    assert status_of(somchai.page.text) == "checked"
    with office.app.extensions["portal"].sessions() as db:
        kept = db.scalars(select(Signature).order_by(Signature.id)).all()
    assert [(s.action, s.superseded_at is not None) for s in kept] == [
        ("claim", True), ("claim", False), ("check", False)]  # fmt: skip


def test_the_claimant_does_not_check_their_own_claim(office):
    """somchai is a finance officer and a civil servant of the unit: his own claim needs
    another officer."""
    somchai = user(office, "somchai")
    url = somchai.record()
    somchai.approve(url, "claim")
    assert status_of(somchai.page.text) == "submitted"
    assert 'id="check"' not in somchai.page.text
    somchai.start_approval(url, "check")
    assert error_code(somchai.page.text) == "separation_of_duties"
    somchai.go(f"{url}/return", "POST", data={"csrf": somchai.csrf(), "reason": "x"})
    assert error_code(somchai.page.text) == "separation_of_duties"


def test_the_claimant_never_approves_their_own_claim(office):
    assign(office.stack.deps, CLAIMANT, "approve-2")
    url = checked(office)
    user(office, "malee").approve(url, "approve-1")
    wichai = user(office, CLAIMANT)
    wichai.start_approval(url, "approve-2")
    assert error_code(wichai.page.text) == "separation_of_duties"
    assert status_of(wichai.go(url).text) == "withdrawal_approved"
