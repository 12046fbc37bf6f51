"""An integration acting for the member of staff who took the call (issue 18): the admin API
takes ``on_behalf_of`` from a client's helpdesk token, checks it, and the audit trail names
both the officer and the client."""

from __future__ import annotations

import pytest
import requests
from sqlalchemy import select

from idp.accounts.models import User
from idp.audit.models import AuditEvent
from tests.functional import test_helpdesk_console
from tests.functional.test_admin_api import call
from tests.functional.test_admin_api import token_of
from tests.functional.test_lost_phones import helpdesk_token
from tests.push_stack import Stack

# The helpdesk's office: helpdesk1 holds the helpdesk role.
stack = test_helpdesk_console.stack


def sub_of(stack: Stack, username: str) -> str:
    with stack.deps.sessions() as session:
        return str(session.scalar(select(User.sub).where(User.username == username)))


def events(stack: Stack, name: str) -> list[AuditEvent]:
    with stack.deps.sessions() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.event == name)))


def test_the_trail_names_the_officer_and_the_client(stack):
    answer = call(stack, helpdesk_token(stack), "POST", "/users/malee/suspend-phone",
                  json={"reason": "lost", "on_behalf_of": "helpdesk1"})  # fmt: skip
    assert answer.status_code == 201, answer.text
    (suspended,) = [e for e in events(stack, "revocation.phone_suspended")]
    assert (suspended.actor, suspended.client_id) == (sub_of(stack, "helpdesk1"), "demo-service")


def test_without_on_behalf_of_the_client_is_the_actor_as_before(stack):
    answer = call(stack, helpdesk_token(stack), "POST", "/users/malee/suspend-phone",
                  json={"reason": "lost"})  # fmt: skip
    assert answer.status_code == 201, answer.text
    (suspended,) = events(stack, "revocation.phone_suspended")
    assert (suspended.actor, suspended.client_id) == ("demo-service", "demo-service")


@pytest.mark.parametrize("officer", ["nobody", "somchai", "head1", 42, ""])
def test_an_integration_cannot_name_whom_it_likes(stack, officer):
    # The attack: a ticketing system (or whoever holds its secret) puts someone else's name
    # (or a person without the helpdesk role) in the trail as the one who did it.
    answer = call(stack, helpdesk_token(stack), "POST", "/users/malee/suspend-phone",
                  json={"reason": "lost", "on_behalf_of": officer})  # fmt: skip
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_on_behalf_of")
    assert events(stack, "revocation.phone_suspended") == []
    (refused,) = events(stack, "api.on_behalf_of_refused")
    assert (refused.outcome, refused.client_id) == ("failure", "demo-service")


def test_a_suspended_officer_cannot_be_named(stack):
    from sqlalchemy import update

    from idp.accounts.models import UserStatus

    with stack.deps.sessions.begin() as session:
        session.execute(update(User).where(User.username == "helpdesk1")
                        .values(status=UserStatus.SUSPENDED))  # fmt: skip
    answer = call(stack, helpdesk_token(stack), "POST", "/users/malee/suspend-phone",
                  json={"reason": "lost", "on_behalf_of": "helpdesk1"})  # fmt: skip
    assert answer.status_code == 400


def test_on_behalf_of_in_the_query_for_requests_without_a_body(stack):
    token = helpdesk_token(stack)
    assert call(stack, token, "GET", "/cases?on_behalf_of=helpdesk1").status_code == 200
    assert call(stack, token, "GET", "/cases?on_behalf_of=somchai").status_code == 400


def test_a_persons_own_token_acts_for_that_person_only(stack):
    treasury = token_of(stack, "treasury1")
    answer = call(stack, treasury, "GET", "/units?on_behalf_of=helpdesk1")
    assert (answer.status_code, answer.json()["error"]) == (400, "invalid_on_behalf_of")
    assert call(stack, treasury, "GET", "/units").status_code == 200


def test_the_openapi_document_describes_on_behalf_of(stack):
    document = requests.get(f"{stack.idp}/api/admin/v1/openapi.json", timeout=10).json()
    body = document["paths"]["/users/{username}/suspend-phone"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert "on_behalf_of" in schema["properties"]
    cases = document["paths"]["/cases"]["get"]["parameters"]
    assert any(p["name"] == "on_behalf_of" for p in cases)
