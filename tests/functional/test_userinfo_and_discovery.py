"""Userinfo (OIDC Core §5.3, RFC 6750 errors), discovery and JWKS."""

from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.factories import seed
from tests.rp import ISSUER
from tests.rp import RP
from tests.rp import basic


@pytest.fixture
def rp(client, deps):
    seed(deps, "somchai")
    return RP(client)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token}


def test_userinfo_releases_claims_by_scope(rp, client):
    tokens = rp.login_and_exchange(scope="openid profile")
    body = client.get("/userinfo", headers=bearer(tokens["access_token"])).get_json()
    assert body["preferred_username"] == "somchai"
    assert body["name"] == "สมชาย ใจดี"
    assert body["name#en"] == "Somchai Jaidee"
    assert "email" not in body
    openid_only = rp.login_and_exchange(scope="openid")
    assert client.get("/userinfo", headers=bearer(openid_only["access_token"])).get_json() == {
        "sub": body["sub"]
    }


def test_userinfo_sub_matches_the_id_token(rp, client):
    tokens = rp.login_and_exchange()
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    sub = jwt.decode(tokens["id_token"], keys).claims["sub"]
    assert client.get("/userinfo", headers=bearer(tokens["access_token"])).get_json()["sub"] == sub


def test_userinfo_accepts_post_with_form_token(rp, client):
    tokens = rp.login_and_exchange()
    response = client.post("/userinfo", data={"access_token": tokens["access_token"]})
    assert response.status_code == 200


def test_userinfo_without_token_is_a_bare_bearer_challenge(rp, client):
    response = client.get("/userinfo")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="userinfo"'


def test_userinfo_with_invalid_token(rp, client):
    response = client.get("/userinfo", headers=bearer("not-a-token"))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_userinfo_refuses_an_id_token(rp, client):
    tokens = rp.login_and_exchange()
    response = client.get("/userinfo", headers=bearer(tokens["id_token"]))
    assert response.status_code == 401


def test_userinfo_needs_the_openid_scope(rp, client):
    token = client.post(
        "/token",
        data={"grant_type": "client_credentials"},
        headers=basic("demo-service", "demo-service-secret"),
    ).get_json()["access_token"]
    response = client.get("/userinfo", headers=bearer(token))
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_discovery_names_exactly_this_issuer_and_its_endpoints(client, deps):
    body = client.get("/.well-known/openid-configuration").get_json()
    assert body["issuer"] == ISSUER
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
        "introspection_endpoint",
        "revocation_endpoint",
    ):
        assert body[name].startswith(ISSUER + "/")
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["response_types_supported"] == ["code"]
    assert body["authorization_response_iss_parameter_supported"] is True
    assert body["id_token_signing_alg_values_supported"] == ["ES256", "RS256"]
    assert body["acr_values_supported"] == [
        f"{ISSUER}/acr/aal1-pwd",
        f"{ISSUER}/acr/aal2-softtoken",
        f"{ISSUER}/acr/aal2-softtoken-txn",
    ]
    assert body["authorization_details_types_supported"] == ["gfmis_payment_approval"]


def test_discovery_and_jwks_are_cacheable_with_etags(client, deps):
    for path in ("/.well-known/openid-configuration", "/jwks.json"):
        first = client.get(path)
        assert first.headers["Cache-Control"] == "public, max-age=300"
        again = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304


def test_jwks_publishes_current_and_next_keys_of_both_algorithms(client, deps):
    keys = client.get("/jwks.json").get_json()["keys"]
    by_alg: dict[str, int] = {}
    for key in keys:
        assert "d" not in key
        assert "p" not in key
        assert key["use"] == "sig"
        by_alg[key["alg"]] = by_alg.get(key["alg"], 0) + 1
    assert by_alg == {"ES256": 2, "RS256": 2}
