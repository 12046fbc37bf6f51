"""Introspection (RFC 7662), revocation (RFC 7009) and client credentials."""

from __future__ import annotations

import pytest

from tests.factories import add_client
from tests.factories import seed
from tests.rp import ISSUER
from tests.rp import RP
from tests.rp import basic

SERVICE = basic("demo-service", "demo-service-secret")
CONFIDENTIAL = basic("demo-confidential", "demo-confidential-secret")


@pytest.fixture
def rp(client, deps):
    seed(deps, "somchai")
    return RP(client)


def service_token(client, **data: str) -> dict:
    response = client.post(
        "/token", data={"grant_type": "client_credentials", **data}, headers=SERVICE
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_client_credentials_token_names_the_client(rp, client):
    token = service_token(client)
    assert token["scope"] == "helpdesk"
    answer = client.post("/introspect", data={"token": token["access_token"]}, headers=SERVICE)
    body = answer.get_json()
    assert body["active"] is True
    assert body["sub"] == "demo-service"
    assert body["client_id"] == "demo-service"
    assert body["iss"] == ISSUER
    assert "sid" not in body


def test_client_credentials_with_client_secret_post(rp, client):
    response = client.post(
        "/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "demo-service",
            "client_secret": "demo-service-secret",
        },
    )
    assert response.status_code == 200


@pytest.mark.parametrize("scope", ["openid", "admin", "helpdesk admin", "offline_access"])
def test_client_credentials_refuses_scopes_the_client_does_not_hold(rp, client, scope):
    response = client.post(
        "/token", data={"grant_type": "client_credentials", "scope": scope}, headers=SERVICE
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_scope"


def test_code_flow_client_may_not_use_client_credentials(rp, client):
    response = client.post(
        "/token", data={"grant_type": "client_credentials"}, headers=CONFIDENTIAL
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "unauthorized_client"


def test_user_token_introspection_carries_the_authentication(rp, client):
    tokens = rp.login_and_exchange()
    body = client.post(
        "/introspect", data={"token": tokens["access_token"]}, headers=SERVICE
    ).get_json()
    assert body["active"] is True
    assert body["client_id"] == "demo-confidential"
    assert body["acr"] == f"{ISSUER}/acr/aal1-pwd"
    assert body["amr"] == ["pwd"]
    assert body["sid"]
    assert body["token_type"] == "Bearer"


def test_client_sees_only_its_own_tokens(rp, client, deps):
    add_client(deps, "other", secret="o" * 40, grant_types=["client_credentials"], scope="x")
    tokens = rp.login_and_exchange()
    body = client.post(
        "/introspect", data={"token": tokens["access_token"]}, headers=basic("other", "o" * 40)
    ).get_json()
    assert body == {"active": False}
    own = client.post(
        "/introspect", data={"token": tokens["access_token"]}, headers=CONFIDENTIAL
    ).get_json()
    assert own["active"] is True


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b.c",
        "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ4In0.",
    ],
)
def test_unknown_or_forged_tokens_are_inactive(rp, client, token):
    body = client.post("/introspect", data={"token": token}, headers=SERVICE).get_json()
    assert body == {"active": False}


def test_id_token_is_not_an_access_token(rp, client):
    tokens = rp.login_and_exchange()
    body = client.post(
        "/introspect", data={"token": tokens["id_token"]}, headers=SERVICE
    ).get_json()
    assert body == {"active": False}


def test_expired_token_is_inactive(rp, client, clock):
    token = service_token(client)["access_token"]
    clock.advance(301)
    body = client.post("/introspect", data={"token": token}, headers=SERVICE).get_json()
    assert body == {"active": False}


def test_introspection_requires_client_authentication(rp, client):
    token = service_token(client)["access_token"]
    response = client.post("/introspect", data={"token": token})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"


def test_introspection_without_token_is_invalid_request(rp, client):
    response = client.post("/introspect", data={}, headers=SERVICE)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


def test_revoked_access_token_is_inactive_at_once(rp, client):
    tokens = rp.login_and_exchange()
    response = client.post("/revoke", data={"token": tokens["access_token"]}, headers=CONFIDENTIAL)
    assert response.status_code == 200
    body = client.post("/introspect", data={"token": tokens["access_token"]}, headers=SERVICE)
    assert body.get_json() == {"active": False}
    userinfo = client.get(
        "/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]}
    )
    assert userinfo.status_code == 401


def test_revoking_unknown_or_foreign_tokens_answers_200_and_changes_nothing(rp, client):
    tokens = rp.login_and_exchange()
    assert (
        client.post("/revoke", data={"token": "unknown"}, headers=CONFIDENTIAL).status_code == 200
    )
    foreign = client.post("/revoke", data={"token": tokens["access_token"]}, headers=SERVICE)
    assert foreign.status_code == 200
    body = client.post("/introspect", data={"token": tokens["access_token"]}, headers=SERVICE)
    assert body.get_json()["active"] is True


def test_public_client_may_revoke_its_tokens(client, deps):
    seed(deps, "somchai")
    rp = RP(client, client_id="demo-public", secret=None)
    tokens = rp.login_and_exchange(scope="openid offline_access")
    response = client.post(
        "/revoke", data={"token": tokens["refresh_token"], "client_id": "demo-public"}
    )
    assert response.status_code == 200
    refreshed = rp.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert refreshed.status_code == 400
