"""Request bodies of the admin API are read through their models, over HTTP: a malformed field
is a 400 naming it, the domain keeps its own codes (invalid_reason, invalid_verified,
invalid_lost_at), nothing malformed is a 500, and the lost-phone contract is unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.functional.test_admin_api import call
from tests.functional.test_admin_console import set_up_office
from tests.functional.test_lost_phones import STAFF
from tests.functional.test_lost_phones import helpdesk_token
from tests.push_stack import Stack
from tests.push_stack import push_stack


@pytest.fixture
def stack(settings, deps, tmp_path) -> Iterator[Stack]:
    with push_stack(settings, deps, tmp_path, users=STAFF) as running:
        set_up_office(running.deps)
        yield running


def test_malformed_fields_are_named_and_keep_the_domains_codes(stack):
    helpdesk = helpdesk_token(stack)
    future = (stack.deps.clock.now() + timedelta(days=2)).date().isoformat()
    refusals = [
        ({"reason": 5}, "invalid_request", "reason"),
        ({}, "invalid_request", "reason"),
        ({"reason": "   "}, "invalid_request", "reason"),
        ({"reason": "bored"}, "invalid_reason", None),
        ({"reason": "lost", "lost_at": 20261120}, "invalid_lost_at", None),
        ({"reason": "lost", "lost_at": future}, "invalid_lost_at", None),
        ({"reason": "lost", "verified": "unit"}, "invalid_verified", None),
        # Unhashable items once made a server error.
        ({"reason": "lost", "verified": [{"unit": True}]}, "invalid_verified", None),
        ({"reason": "lost", "verified": ["unit", "astrology"]}, "invalid_verified", None),
        # Read by the authentication first, with its own code.
        ({"reason": "lost", "on_behalf_of": ["helpdesk1"]}, "invalid_on_behalf_of", None),
    ]
    for body, code, field in refusals:
        answer = call(stack, helpdesk, "POST", "/users/malee/suspend-phone", json=body)
        assert (answer.status_code, answer.json()["error"]) == (400, code), (body, answer.text)
        if field:
            assert f"'{field}'" in answer.json()["error_description"]
    not_an_object = call(stack, helpdesk, "POST", "/users/malee/suspend-phone", json=["lost"])
    assert (not_an_object.status_code, not_an_object.json()["error"]) == (400, "invalid_request")


def test_the_lost_phone_contract_is_unchanged(stack):
    helpdesk = helpdesk_token(stack)
    lost_on = (stack.deps.clock.now() - timedelta(days=1)).date().isoformat()
    answer = call(stack, helpdesk, "POST", "/users/malee/suspend-phone",
                  json={"reason": "lost", "lost_at": lost_on, "verified": ["unit", "citizen_id"],
                        "ticket": "an unknown member is ignored"})  # fmt: skip
    assert answer.status_code == 201, answer.text
    case = answer.json()
    assert set(case) == {
        "id", "username", "reason", "kind", "channel", "verified", "reported_at", "lost_at",
        "letter_due", "closed_at", "overdue", "overdue_when_reported", "letter_received_at",
        "letter_sha256", "already_suspended", "sessions_ended",
    }  # fmt: skip
    assert (case["username"], case["reason"], case["kind"], case["lost_at"]) == (
        "malee", "lost", "lost", lost_on,
    )  # fmt: skip
    assert case["verified"] == ["citizen_id", "unit"]  # the checklist's order
    assert case["letter_due"] is not None
    assert case["closed_at"] is None
    # Moments as the API always wrote them: Python's isoformat, an offset rather than a Z.
    assert case["reported_at"].endswith("+00:00")


def test_admin_grant_and_unit_bodies(stack):
    helpdesk = helpdesk_token(stack)
    grant = call(
        stack, helpdesk, "POST", "/admin-grants", json={"username": "malee", "role": "boss"}
    )
    assert (grant.status_code, grant.json()["error"]) == (400, "invalid_request")
    assert "'role'" in grant.json()["error_description"]
    unit = call(stack, helpdesk, "POST", "/units", json={"code": "0000000009", "name_th": ""})
    assert (unit.status_code, unit.json()["error"]) == (400, "invalid_request")
    account = call(stack, helpdesk, "POST", "/users", json={
        "citizen_id": "1101700230705", "given_name_th": "มาลี", "family_name_th": "ดี",
        "unit_code": "0000000001", "legacy_token_key": "yes"})  # fmt: skip
    assert (account.status_code, account.json()["error"]) == (400, "invalid_request")
    assert "'legacy_token_key'" in account.json()["error_description"]


def test_a_form_part_without_a_readable_name_is_no_server_error(client):
    # Found by the schemathesis run: werkzeug gives such a part the key None.
    body = (b'--XX\r\nContent-Disposition: form-data; name="\x0b\\"\r\n\r\nfalse\r\n'
            b'--XX\r\nContent-Disposition: form-data; name="letter_file"; filename="l.pdf"\r\n'
            b"\r\n%PDF-1.4\r\n--XX--\r\n")  # fmt: skip
    answer = client.post("/api/admin/v1/cases/x/letter", data=body,
                         content_type="multipart/form-data; boundary=XX")  # fmt: skip
    assert answer.status_code == 401  # read, then refused for want of a token
