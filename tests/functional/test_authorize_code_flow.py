"""The authorization code flow with PKCE, end to end through the Flask test client."""

from __future__ import annotations

from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.oidc.tokens import half_hash
from tests.factories import add_client
from tests.factories import seed
from tests.rp import ISSUER
from tests.rp import RP
from tests.rp import callback_params


@pytest.fixture
def rp(client, deps):
    seed(deps, "somchai")
    return RP(client)


def verify_id_token(client, token: str, *, algorithms=("ES256",)) -> dict:
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    decoded = jwt.decode(token, keys, algorithms=list(algorithms))
    assert decoded.header["typ"] == "JWT"
    return dict(decoded.claims)


def test_code_flow_issues_tokens_bound_to_the_login(rp, client, clock):
    params = rp.login()
    assert params["state"] == rp.state
    assert params["iss"] == ISSUER  # RFC 9207
    response = rp.exchange(params["code"])
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert set(body["scope"].split()) == {"openid", "profile", "email"}

    claims = verify_id_token(client, body["id_token"])
    assert claims["iss"] == ISSUER
    assert claims["aud"] == "demo-confidential"
    assert claims["nonce"] == rp.nonce
    assert claims["acr"] == f"{ISSUER}/acr/aal1-pwd"
    assert claims["amr"] == ["pwd"]
    assert claims["auth_time"] == int(clock.now().timestamp())
    assert claims["exp"] - claims["iat"] == 300
    assert claims["at_hash"] == half_hash(body["access_token"], "ES256")
    assert claims["sid"]
    for name in ("sub", "iat"):
        assert name in claims


def test_access_token_is_an_rfc9068_jwt(rp, client):
    body = rp.login_and_exchange()
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    decoded = jwt.decode(body["access_token"], keys, algorithms=["ES256"])
    assert decoded.header["typ"] == "at+jwt"
    claims = decoded.claims
    assert claims["iss"] == ISSUER
    assert claims["client_id"] == "demo-confidential"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["jti"]
    assert claims["sid"]


def test_client_registered_for_rs256_gets_rs256_id_tokens(client, deps):
    seed(deps, "somchai")
    add_client(deps, "rs-client", secret="r" * 40, id_token_signed_response_alg="RS256")
    rp = RP(client, client_id="rs-client", secret="r" * 40)
    body = rp.login_and_exchange()
    claims = verify_id_token(client, body["id_token"], algorithms=("RS256",))
    assert claims["aud"] == "rs-client"


def test_second_authorization_reuses_the_session_without_a_login_page(rp, client):
    rp.login()
    response = rp.authorize()
    params = callback_params(response)
    assert params["state"] == rp.state
    assert rp.exchange(params["code"]).status_code == 200


def test_login_hint_prefills_the_username(rp):
    page = rp.authorize(login_hint="somchai")
    assert 'value="somchai"' in page.get_data(as_text=True)


@pytest.mark.parametrize(
    ("overrides", "description"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "Missing 'code_challenge'"),
        ({"code_challenge_method": "plain"}, "must be S256"),
        ({"code_challenge_method": None}, "must be S256"),
        ({"code_challenge": "short"}, "Invalid 'code_challenge'"),
        ({"response_mode": "fragment"}, "response_mode=query"),
        ({"prompt": "none login"}, "prompt"),
        ({"max_age": "-1"}, "max_age"),
    ],
)
def test_invalid_request_is_redirected_with_state_and_iss(rp, overrides, description):
    response = rp.authorize(**overrides)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == rp.redirect_uri
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert params["state"] == rp.state
    assert params["iss"] == ISSUER
    assert params["error"] == "invalid_request"
    if description:
        assert description in params["error_description"]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        # An unsigned request object (RFC 9101): no key, no trust in anything it says.
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "invalid_request_object"),
        # OIDC Core §6: request objects are never fetched from the web.
        ({"request_uri": "https://app.example/request.jwt"}, "request_uri_not_supported"),
        # RFC 9126: a request_uri that no push issued.
        ({"request_uri": "urn:ietf:params:oauth:request_uri:abc"}, "invalid_request_uri"),
    ],
)
def test_refused_request_objects_are_shown_not_redirected(rp, overrides, code):
    """The query's redirect_uri is not the request's when a request object replaces it, so
    the error is shown here, as node-oidc-provider does."""
    response = rp.authorize(**overrides)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert code in response.get_data(as_text=True)


def test_unsupported_response_type_is_redirected(rp):
    response = rp.authorize(response_type="token")
    params = callback_params(response)
    assert params["error"] == "unsupported_response_type"
    assert params["state"] == rp.state


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"redirect_uri": "http://evil.example/callback"}, "invalid_request"),
        ({"redirect_uri": "http://127.0.0.1:9999/callback/../x"}, "invalid_request"),
        ({"redirect_uri": "http://127.0.0.1:9999/CALLBACK"}, "invalid_request"),
        ({"redirect_uri": None}, "invalid_request"),
        ({"client_id": "nobody"}, "invalid_client"),
        ({"client_id": None}, "invalid_client"),
    ],
)
def test_errors_before_the_redirect_uri_is_trusted_are_shown_not_redirected(rp, overrides, code):
    response = rp.authorize(**overrides)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert f'<code id="error-code">{code}</code>' in response.get_data(as_text=True)


def test_duplicated_parameters_are_refused_without_redirect(rp, client):
    params = rp.authorize_params()
    query = urlencode(params) + "&state=second"
    response = client.get("/authorize?" + query)
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_authorization_request_by_post_is_supported(rp, client):
    rp.login()
    response = client.post("/authorize", data=rp.authorize_params())
    assert callback_params(response)["state"] == rp.state


def test_unknown_scopes_are_ignored_and_the_granted_scope_reported(rp):
    body = rp.login_and_exchange(scope="openid profile launch-missiles")
    assert body["scope"] == "openid profile"


def test_scope_without_openid_is_plain_oauth(rp):
    body = rp.login_and_exchange(scope="profile")
    assert "id_token" not in body


def test_public_client_uses_pkce_without_a_secret(client, deps):
    seed(deps, "somchai")
    rp = RP(client, client_id="demo-public", secret=None)
    body = rp.login_and_exchange()
    assert "refresh_token" not in body  # only with offline_access
    assert body["access_token"]
