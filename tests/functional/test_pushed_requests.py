"""Pushed authorization requests (RFC 9126) with private_key_jwt: the FAPI 2.0 front channel."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from idp.audit.models import AuditEvent
from tests.factories import PASSWORD
from tests.factories import add_client
from tests.factories import seed
from tests.fapi import FapiClient
from tests.fapi import new_key
from tests.fapi import public_jwks
from tests.rp import ISSUER
from tests.rp import RP
from tests.rp import callback_params


@pytest.fixture
def fapi(client, deps, clock):
    seed(deps, "somchai")
    key = new_key()
    add_client(
        deps,
        "fapi-rp",
        secret=None,
        auth_methods=["private_key_jwt"],
        jwks=public_jwks(key),
        require_pushed_authorization_requests=True,
    )
    return FapiClient(RP(client, client_id="fapi-rp", secret=None), key, clock.now)


def page_error(response) -> str:
    assert response.status_code == 400, response.status_code
    assert "Location" not in response.headers
    return response.get_data(as_text=True)


def test_pushed_request_to_tokens(fapi, clock):
    params = fapi.rp.authorize_params()
    pushed = fapi.push(params)
    assert pushed.status_code == 201, pushed.get_json()
    body = pushed.get_json()
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert 60 <= body["expires_in"] <= 90
    assert pushed.headers["Cache-Control"] == "no-store"

    page = fapi.authorize_with(body["request_uri"])
    assert page.status_code == 200
    callback = callback_params(fapi.rp.submit(page, username="somchai", password=PASSWORD))
    assert callback["state"] == params["state"]
    assert callback["iss"] == ISSUER

    tokens = fapi.token(
        grant_type="authorization_code",
        code=callback["code"],
        redirect_uri=params["redirect_uri"],
        code_verifier=fapi.rp.verifier,
    )
    assert tokens.status_code == 200, tokens.get_json()
    assert {"access_token", "id_token", "refresh_token"} <= set(tokens.get_json())


def test_request_uri_is_used_once(fapi, deps):
    request_uri = fapi.push(fapi.rp.authorize_params()).get_json()["request_uri"]
    assert fapi.authorize_with(request_uri).status_code == 200
    assert "invalid_request_uri" in page_error(fapi.authorize_with(request_uri))
    with deps.sessions() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.event == "authorization.request_refused")
        ).one()
    assert (event.outcome, event.client_id) == ("failure", "fapi-rp")
    assert event.details["error"] == "invalid_request_uri"


def test_expired_request_uri_is_refused(fapi, clock):
    request_uri = fapi.push(fapi.rp.authorize_params()).get_json()["request_uri"]
    clock.advance(61)
    assert "invalid_request_uri" in page_error(fapi.authorize_with(request_uri))


def test_request_uri_of_another_client_is_refused_and_not_used_up(fapi):
    request_uri = fapi.push(fapi.rp.authorize_params()).get_json()["request_uri"]
    stolen = fapi.authorize_with(request_uri, client_id="demo-confidential")
    assert "invalid_request_uri" in page_error(stolen)
    # Its owner's browser still gets through.
    assert fapi.authorize_with(request_uri).status_code == 200


def test_par_required_client_cannot_use_the_front_channel(fapi, client):
    query = urlencode(fapi.rp.authorize_params())
    body = page_error(client.get("/authorize?" + query))
    assert "invalid_request" in body


def test_request_uri_not_from_par_is_refused(client, deps):
    seed(deps)
    rp = RP(client)
    query = urlencode({**rp.authorize_params(), "request_uri": "https://rp.example/r.jwt"})
    assert "request_uri_not_supported" in page_error(client.get("/authorize?" + query))


def test_push_is_validated_as_the_authorization_endpoint_would(fapi):
    bad_redirect = fapi.push(fapi.rp.authorize_params(redirect_uri="https://evil.example/cb"))
    assert bad_redirect.status_code == 400
    assert bad_redirect.get_json()["error"] == "invalid_request"
    assert "Location" not in bad_redirect.headers
    no_pkce = fapi.push(fapi.rp.authorize_params(code_challenge=None))
    assert no_pkce.get_json()["error"] == "invalid_request"
    bad_claims = fapi.push(fapi.rp.authorize_params(claims="not json"))
    assert bad_claims.get_json()["error"] == "invalid_request"
    nested = fapi.push({**fapi.rp.authorize_params(), "request_uri": "urn:x"})
    assert nested.get_json()["error"] == "invalid_request"
    # RFC 7521 §4.2: a client_id beside the assertion that names another client.
    other_client = fapi.push(fapi.rp.authorize_params(client_id="demo-confidential"))
    assert other_client.get_json()["error"] == "invalid_client"


def test_push_needs_client_authentication(fapi, client):
    anonymous = client.post("/par", data=fapi.rp.authorize_params())
    assert anonymous.status_code in (400, 401)
    assert anonymous.get_json()["error"] == "invalid_client"
    # A confidential client cannot fall back to naming itself.
    unproven = client.post("/par", data=RP(client).authorize_params())
    assert unproven.get_json()["error"] == "invalid_client"


def test_public_client_pushes_with_its_client_id(client, deps):
    """RFC 9126 §2: the token endpoint's rules, so a public client (PKCE) names itself."""
    seed(deps, "somchai")
    public = RP(client, client_id="demo-public", secret=None)
    params = public.authorize_params()
    pushed = client.post("/par", data=params)
    assert pushed.status_code == 201, pushed.get_json()
    query = {"client_id": "demo-public", "request_uri": pushed.get_json()["request_uri"]}
    page = public.follow(client.get("/authorize?" + urlencode(query)))
    callback = callback_params(public.submit(page, username="somchai", password=PASSWORD))
    assert public.exchange(callback["code"]).status_code == 200


def test_secret_clients_may_push_too(client, deps):
    seed(deps, "somchai")
    rp = RP(client)
    params = rp.authorize_params()
    pushed = client.post(
        "/par", data=params, headers={"Authorization": _basic("demo-confidential-secret")}
    )
    assert pushed.status_code == 201
    query = {"client_id": "demo-confidential", "request_uri": pushed.get_json()["request_uri"]}
    page = rp.follow(client.get("/authorize?" + urlencode(query)))
    callback = callback_params(rp.submit(page, username="somchai", password=PASSWORD))
    assert rp.exchange(callback["code"]).status_code == 200


def test_discovery_announces_par(client):
    body = client.get("/.well-known/openid-configuration").get_json()
    assert body["pushed_authorization_request_endpoint"] == ISSUER + "/par"
    assert body["require_pushed_authorization_requests"] is False
    assert "private_key_jwt" in body["token_endpoint_auth_methods_supported"]
    assert body["token_endpoint_auth_signing_alg_values_supported"] == ["ES256", "PS256"]
    assert body["request_parameter_supported"] is True
    assert body["request_object_signing_alg_values_supported"] == ["ES256", "PS256"]


def _basic(secret: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"demo-confidential:{secret}".encode()).decode()
