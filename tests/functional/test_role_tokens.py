"""Role-scoped tokens: only roles held now, only after a login the phone confirmed,
in the ID token, access token, userinfo and introspection; refresh never adds and drops roles
that ended; separation of duties checked once more at issuance."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy import update

from idp.accounts.models import User
from idp.accounts.service import require_password_change
from idp.audit.models import SecurityAlert
from idp.audit.service import NO_CONTEXT
from idp.roles.authority import SYSTEM
from idp.roles.designations import assign_directly
from idp.roles.models import RoleAssignment
from idp.roles.periods import thai_date
from idp.roles.units import create_unit
from tests.nexus_server import match_number
from tests.push_stack import Login
from tests.push_stack import Stack
from tests.push_stack import push_stack
from tests.rp import RP

UNIT = "0000000001"
ALL_ROLES = "openid role:recorder role:approve-1 role:approve-2"
CONFIDENTIAL = ("demo-confidential", "demo-confidential-secret")


def add_unit(deps) -> None:
    with deps.sessions.begin() as session:
        create_unit(session, SYSTEM, code=UNIT, name_th="หน่วยทดลอง", province="นนทบุรี",
                    treasury_office="สำนักงานคลังจังหวัดนนทบุรี", now=deps.clock.now(),
                    actor="test", audit=NO_CONTEXT)  # fmt: skip


def assign(deps, username: str, role: str, **fields) -> None:
    with deps.sessions.begin() as session:
        user = session.scalar(select(User).where(User.username == username))
        if fields:
            now = deps.clock.now()
            fields.setdefault("valid_from", thai_date(now))
            session.add(RoleAssignment(user_id=user.id, unit_code=UNIT, role=role,
                                       created_at=now, **fields))  # fmt: skip
            return
        assign_directly(session, unit_code=UNIT, user=user, role=role,
                        valid_from=thai_date(deps.clock.now()), now=deps.clock.now(),
                        actor="test", reason="test", audit=NO_CONTEXT)  # fmt: skip


@pytest.fixture
def stack(settings, deps, tmp_path) -> Iterator[Stack]:
    with push_stack(settings, deps, tmp_path, users=("malee", "prasert")) as running:
        add_unit(running.deps)
        assign(running.deps, "malee", "approve-1")
        yield running


def confirmed_login(stack: Stack, username: str = "malee", scope: str = ALL_ROLES) -> Login:
    login = Login.start(stack, username, scope=scope)
    pushed = stack.nexus.wait_for_push(f"phone-{username}")
    stack.nexus.approve(f"phone-{username}", pushed["id"], match_number(login.page.text))
    login.reload()
    assert login.returned, login.page.text[:300]
    return login


def decode(stack: Stack, token: str) -> dict:
    keys = KeySet.import_key_set(requests.get(f"{stack.idp}/jwks.json", timeout=10).json())
    return dict(jwt.decode(token, keys).claims)


def introspect(stack: Stack, token: str) -> dict:
    return requests.post(f"{stack.idp}/introspect", data={"token": token}, auth=CONFIDENTIAL,
                         timeout=10).json()  # fmt: skip


def userinfo(stack: Stack, token: str) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    return requests.get(f"{stack.idp}/userinfo", headers=headers, timeout=10).json()


def refresh(stack: Stack, refresh_token: str, **extra: str) -> requests.Response:
    return requests.post(
        f"{stack.idp}/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, **extra},
        auth=CONFIDENTIAL, timeout=10,
    )  # fmt: skip


def test_only_roles_held_now_are_granted_and_named_everywhere(stack):
    tokens = confirmed_login(stack).tokens()
    expected = [{"unit": UNIT, "role": "approve-1"}]
    assert tokens["scope"].split() == ["openid", "role:approve-1"]
    assert decode(stack, tokens["id_token"])["gfms_roles"] == expected
    access = decode(stack, tokens["access_token"])
    assert access["gfms_roles"] == expected
    assert access["scope"] == "openid role:approve-1"
    assert introspect(stack, tokens["access_token"])["gfms_roles"] == expected
    assert userinfo(stack, tokens["access_token"])["gfms_roles"] == expected


def test_a_login_without_role_scopes_names_no_roles(stack):
    tokens = confirmed_login(stack, scope="openid profile").tokens()
    assert "gfms_roles" not in decode(stack, tokens["id_token"])
    assert "gfms_roles" not in decode(stack, tokens["access_token"])


def test_a_refresh_never_adds_roles_and_drops_those_that_ended(stack):
    tokens = confirmed_login(stack).tokens()
    # prasert's role given to malee too would be refused; give her recorder in the meantime.
    assign(stack.deps, "malee", "recorder")
    more = refresh(stack, tokens["refresh_token"], scope="openid role:approve-1 role:recorder")
    assert more.status_code == 400
    assert more.json()["error"] == "invalid_scope"
    renewed = refresh(stack, tokens["refresh_token"]).json()
    assert renewed["scope"] == "openid role:approve-1"  # recorder was not in the grant
    with stack.deps.sessions.begin() as session:
        session.execute(update(RoleAssignment).values(ended_at=stack.deps.clock.now(),
                                                      end_reason="moved"))  # fmt: skip
    later = refresh(stack, renewed["refresh_token"]).json()
    assert later["scope"] == "openid"
    assert "gfms_roles" not in decode(stack, later["access_token"])
    assert "gfms_roles" not in decode(stack, later["id_token"])


def test_after_a_role_change_no_role_until_the_new_password(stack):
    tokens = confirmed_login(stack).tokens()
    with stack.deps.sessions.begin() as session:
        malee = session.scalar(select(User).where(User.username == "malee"))
        require_password_change(session, malee, reason="role_changed",
                                now=stack.deps.clock.now(), actor="test")  # fmt: skip
    renewed = refresh(stack, tokens["refresh_token"]).json()
    assert renewed["scope"] == "openid"
    assert "gfms_roles" not in decode(stack, renewed["access_token"])


def test_roles_that_end_disappear_from_userinfo_at_once(stack):
    tokens = confirmed_login(stack).tokens()
    with stack.deps.sessions.begin() as session:
        session.execute(update(RoleAssignment).values(
            valid_until=thai_date(stack.deps.clock.now()) - timedelta(days=1),
            valid_from=thai_date(stack.deps.clock.now()) - timedelta(days=5)))  # fmt: skip
    assert "gfms_roles" not in userinfo(stack, tokens["access_token"])


def test_a_substitute_is_named_as_such(stack):
    assign(stack.deps, "prasert", "recorder")
    with stack.deps.sessions() as session:
        malee_sub = session.scalar(select(User.sub).where(User.username == "malee"))
        malee_id = session.scalar(select(User.id).where(User.username == "malee"))
    assign(stack.deps, "prasert", "approve-1", substitute_for=malee_id)
    tokens = confirmed_login(stack, "prasert").tokens()
    assert decode(stack, tokens["access_token"])["gfms_roles"] == [
        {"unit": UNIT, "role": "approve-1", "substitute_for": malee_sub},
        {"unit": UNIT, "role": "recorder"},
    ]


def test_separation_of_duties_is_checked_again_when_tokens_are_issued(stack):
    # Both roles in one unit, as a hand-made repair of the data could leave them.
    assign(stack.deps, "malee", "approve-2", valid_until=None)
    assign(stack.deps, "malee", "recorder")
    tokens = confirmed_login(stack).tokens()
    assert tokens["scope"].split() == ["openid", "role:recorder"]
    assert decode(stack, tokens["access_token"])["gfms_roles"] == [
        {"unit": UNIT, "role": "recorder"}
    ]
    with stack.deps.sessions() as session:
        alert = session.scalar(select(SecurityAlert).where(
            SecurityAlert.kind == "separation_of_duties"))  # fmt: skip
    assert alert is not None
    assert alert.details["roles"] == ["approve-1", "approve-2"]


def test_a_password_only_login_never_carries_roles(client, deps):
    """During a registration period (no phone required), a password alone does no portal work."""
    from tests.factories import seed

    seed(deps, "malee")
    add_unit(deps)
    assign(deps, "malee", "approve-1")
    tokens = RP(client).login_and_exchange("malee", scope=ALL_ROLES)
    assert tokens["scope"] == "openid"
    response = client.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert "gfms_roles" not in response.get_json()
