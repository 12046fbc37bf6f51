"""Refresh tokens rotate; a reused one revokes the whole family (RFC 9700 §4.14.2)."""

from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.factories import seed
from tests.rp import RP
from tests.rp import basic


@pytest.fixture
def rp(client, deps):
    seed(deps, "somchai")
    return RP(client)


def introspect(client, token: str, hint: str | None = None) -> dict:
    data = {"token": token}
    if hint:
        data["token_type_hint"] = hint
    response = client.post(
        "/introspect", data=data, headers=basic("demo-service", "demo-service-secret")
    )
    return response.get_json()


def refresh(rp: RP, token: str, **extra: str):
    return rp.token(grant_type="refresh_token", refresh_token=token, **extra)


def test_refresh_rotates_and_keeps_the_authentication(rp, client):
    first = rp.login_and_exchange(scope="openid offline_access")
    response = refresh(rp, first["refresh_token"])
    assert response.status_code == 200
    second = response.get_json()
    assert second["refresh_token"] != first["refresh_token"]
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    old = jwt.decode(first["id_token"], keys).claims
    new = jwt.decode(second["id_token"], keys).claims
    assert new["sub"] == old["sub"]
    assert new["auth_time"] == old["auth_time"]
    assert new["acr"] == old["acr"]
    assert "nonce" not in new


def test_reused_refresh_token_revokes_the_family(rp, client):
    first = rp.login_and_exchange(scope="openid offline_access")
    second = refresh(rp, first["refresh_token"]).get_json()
    assert introspect(client, second["access_token"])["active"] is True

    reuse = refresh(rp, first["refresh_token"])
    assert reuse.status_code == 400
    assert reuse.get_json()["error"] == "invalid_grant"
    # The legitimate holder's newer tokens die too: the thief and the client look alike.
    assert introspect(client, second["access_token"]) == {"active": False}
    assert refresh(rp, second["refresh_token"]).status_code == 400
    assert introspect(client, second["refresh_token"], "refresh_token") == {"active": False}


def test_refresh_cannot_widen_the_scope(rp):
    first = rp.login_and_exchange(scope="openid offline_access")
    response = refresh(rp, first["refresh_token"], scope="openid email offline_access")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_scope"


def test_refresh_may_narrow_the_scope(rp):
    first = rp.login_and_exchange(scope="openid profile offline_access")
    response = refresh(rp, first["refresh_token"], scope="openid")
    assert response.status_code == 200
    assert response.get_json()["scope"] == "openid"


def test_public_client_gets_refresh_tokens_only_for_offline_access(client, deps):
    seed(deps, "somchai")
    rp = RP(client, client_id="demo-public", secret=None)
    without = rp.login_and_exchange(scope="openid")
    assert "refresh_token" not in without
    offline = rp.login_and_exchange(scope="openid offline_access")
    assert offline["refresh_token"]
    assert refresh(rp, offline["refresh_token"]).status_code == 200


def test_refresh_token_of_another_client_is_refused(rp, client):
    tokens = rp.login_and_exchange(scope="openid offline_access")
    thief = RP(client, client_id="demo-public", secret=None)
    response = refresh(thief, tokens["refresh_token"])
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_grant"


def test_session_bound_refresh_token_dies_at_logout(rp, client):
    tokens = rp.login_and_exchange(scope="openid")  # confidential, no offline_access
    assert tokens["refresh_token"]
    logout = client.get("/logout", query_string={"id_token_hint": tokens["id_token"]})
    assert logout.status_code == 200
    response = refresh(rp, tokens["refresh_token"])
    assert response.status_code == 400
    assert introspect(client, tokens["access_token"]) == {"active": False}


def test_offline_refresh_token_outlives_logout(rp, client):
    tokens = rp.login_and_exchange(scope="openid offline_access")
    assert "sid" not in introspect(client, tokens["access_token"])
    client.get("/logout", query_string={"id_token_hint": tokens["id_token"]})
    assert introspect(client, tokens["access_token"])["active"] is True
    assert refresh(rp, tokens["refresh_token"]).status_code == 200


def test_session_bound_refresh_token_dies_with_the_idle_timeout(rp, client, clock):
    tokens = rp.login_and_exchange(scope="openid")
    assert introspect(client, tokens["refresh_token"], "refresh_token")["active"] is True
    clock.advance(3601)
    assert introspect(client, tokens["refresh_token"], "refresh_token") == {"active": False}
    assert refresh(rp, tokens["refresh_token"]).status_code == 400


def test_expired_offline_refresh_token_is_refused(rp, clock):
    tokens = rp.login_and_exchange(scope="openid offline_access")
    clock.advance(30 * 86400 + 1)
    assert refresh(rp, tokens["refresh_token"]).status_code == 400


def test_revoking_a_refresh_token_revokes_its_access_tokens(rp, client):
    tokens = rp.login_and_exchange(scope="openid offline_access")
    response = client.post(
        "/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        headers=basic("demo-confidential", "demo-confidential-secret"),
    )
    assert response.status_code == 200
    assert introspect(client, tokens["access_token"]) == {"active": False}
    assert refresh(rp, tokens["refresh_token"]).status_code == 400
