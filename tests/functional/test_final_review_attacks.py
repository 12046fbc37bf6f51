"""Attacks on the backchannel (CIBA) path over HTTP: account enumeration past the per-client
limit with parallel requests, another client's ID token as a hint, role-bearing tokens for a
person who owes a new password, and an approval outliving the account's suspension."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import select

from idp.accounts.models import User
from idp.accounts.service import require_password_change
from idp.audit.service import NO_CONTEXT
from idp.oidc.clients import CIBA_GRANT_TYPE
from idp.roles.authority import SYSTEM
from idp.roles.authority import Acting
from tests.factories import add_client
from tests.functional.test_admin_api import call
from tests.functional.test_ciba import approve_on_phone
from tests.functional.test_ciba import error_of
from tests.functional.test_ciba import poll
from tests.functional.test_lost_phones import helpdesk_token
from tests.functional.test_role_tokens import add_unit
from tests.functional.test_role_tokens import assign
from tests.functional.test_role_tokens import decode
from tests.push_stack import Stack
from tests.push_stack import push_stack

ROLES = ("ciba-roles", "r" * 40)
OTHER = ("ciba-other", "o" * 40)
LIMIT = 3


@pytest.fixture
def stack(settings, deps, tmp_path) -> Iterator[Stack]:
    with push_stack(settings, deps, tmp_path, users=("somchai",),
                    ciba_unknown_user_limit=LIMIT) as running:  # fmt: skip
        add_client(
            running.deps,
            ROLES[0],
            secret=ROLES[1],
            redirect_uris=[],
            grant_types=[CIBA_GRANT_TYPE],
            scope="openid profile role:approve-1",
            backchannel_token_delivery_mode="poll",
        )
        add_client(
            running.deps,
            OTHER[0],
            secret=OTHER[1],
            redirect_uris=[],
            grant_types=[CIBA_GRANT_TYPE],
            scope="openid profile",
            backchannel_token_delivery_mode="poll",
        )
        add_unit(running.deps)
        assign(running.deps, "somchai", "approve-1")
        yield running


def bc_authorize(stack: Stack, client=ROLES, **params: str) -> requests.Response:
    data = {"scope": "openid profile role:approve-1", "login_hint": "somchai", **params}
    return requests.post(f"{stack.idp}/bc-authorize", data=data, auth=client, timeout=15)


def test_parallel_probes_get_no_more_unknown_user_answers_than_the_limit(stack):
    """Attack: names sent at once all pass the count read before any of them is counted, so
    a client learns of more missing accounts than the limit allows."""
    probes = 12
    barrier = threading.Barrier(probes)

    def probe(number: int) -> str:
        barrier.wait()
        return error_of(bc_authorize(stack, login_hint=f"nobody{number}"))

    with ThreadPoolExecutor(probes) as pool:
        answers = list(pool.map(probe, range(probes)))
    assert answers.count("unknown_user_id") == LIMIT, answers
    assert answers.count("slow_down") == probes - LIMIT


def test_a_phone_approval_owing_a_new_password_carries_no_roles(stack):
    """A role change takes effect with the new password: the backchannel path, which asks no
    password, must not carry the role before it either."""
    with stack.deps.sessions.begin() as session:
        somchai = session.scalar(select(User).where(User.username == "somchai"))
        require_password_change(session, somchai, reason="role_changed",
                                now=stack.deps.clock.now(), actor="test")  # fmt: skip
    answer = bc_authorize(stack)
    assert answer.status_code == 200, answer.text
    approve_on_phone(stack)
    tokens = poll(stack, answer.json()["auth_req_id"], client=ROLES).json()
    assert "role:approve-1" not in tokens["scope"].split()
    assert "gfms_roles" not in decode(stack, tokens["access_token"])


def test_an_id_token_hint_issued_to_another_client_is_refused(stack):
    """CIBA Core 1.0 §7.1: ``id_token_hint`` is an ID token previously issued to the client
    that sends it; another application's token (leaked, or shared) names no one here."""
    first = bc_authorize(stack)
    approve_on_phone(stack)
    id_token = poll(stack, first.json()["auth_req_id"], client=ROLES).json()["id_token"]
    borrowed = bc_authorize(stack, OTHER, scope="openid", login_hint="", id_token_hint=id_token)
    assert (borrowed.status_code, error_of(borrowed)) == (400, "invalid_request")
    assert stack.nexus.inbox("phone-somchai") == []
    own = bc_authorize(stack, login_hint="", id_token_hint=id_token)
    assert own.status_code == 200, own.text


def test_an_approval_from_before_an_account_suspension_gives_no_tokens_after_it(stack):
    """Attack: a request approved on the phone but not yet redeemed outlives the account's
    suspension (every session and token of the account ends) and is redeemed once the
    suspension is lifted."""
    answer = bc_authorize(stack)
    approve_on_phone(stack)
    helpdesk = helpdesk_token(stack)
    suspended = call(stack, helpdesk, "POST", "/users/somchai/suspend", json={"reason": "x"})
    assert suspended.status_code == 200, suspended.text
    with stack.deps.sessions.begin() as db:
        somchai = db.scalar(select(User).where(User.username == "somchai"))
        acting = Acting(SYSTEM, "test", stack.deps.clock.now(), NO_CONTEXT)
        stack.deps.suspensions.lift_account_suspension(db, somchai, acting, reason="checked")
    late = poll(stack, answer.json()["auth_req_id"], client=ROLES)
    assert error_of(late) == "access_denied", late.text
