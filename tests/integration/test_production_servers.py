"""Two production-mode IdP instances (granian, several workers) sharing PostgreSQL and
Redis, driven by a well-known client library: Authlib's requests client."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jws
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.servers import free_port
from tests.servers import production_env
from tests.servers import run_cli
from tests.servers import running_idp
from tests.servers import sign_in

CALLBACK = "http://127.0.0.1:9999/callback"


@pytest.fixture(scope="module")
def env(fresh_database_url, redis_url) -> dict[str, str]:
    return production_env(fresh_database_url, redis_url, f"http://127.0.0.1:{free_port()}")


@pytest.fixture(scope="module")
def instances(env, tmp_path_factory) -> Iterator[tuple[str, str]]:
    port_a, port_b = int(env["IDP_ISSUER"].rsplit(":", 1)[1]), free_port()
    run_cli(env, "db", "upgrade")
    run_cli(env, "demo", "seed")
    logs = tmp_path_factory.mktemp("logs")
    with (
        running_idp(env, port_a, production=True, log_dir=logs) as a,
        running_idp(env, port_b, production=True, log_dir=logs) as b,
    ):
        yield a.url, b.url


def test_full_flow_with_authlib_across_two_instances(instances):
    a, b = instances
    issuer = a
    metadata = requests.get(f"{b}/.well-known/openid-configuration").json()
    assert metadata["issuer"] == issuer  # every instance speaks for one issuer
    client = OAuth2Session(
        "demo-confidential",
        "demo-confidential-secret",
        scope="openid profile email offline_access",
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(12)
    url, state = client.create_authorization_url(
        f"{a}/authorize", code_verifier=verifier, nonce=nonce
    )
    callback = sign_in(url, "somchai", CALLBACK)
    assert parse_qs(urlsplit(callback).query)["iss"] == [issuer]

    # The code was issued by instance A and is redeemed at instance B.
    token = client.fetch_token(
        f"{b}/token", authorization_response=callback, code_verifier=verifier, state=state
    )
    keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"].replace(a, b)).json())
    id_token = jwt.decode(token["id_token"], keys, algorithms=["ES256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": "demo-confidential"},
        nonce={"essential": True, "value": nonce},
        sub={"essential": True},
        auth_time={"essential": True},
    ).validate(id_token.claims)

    userinfo = client.get(f"{a}/userinfo").json()
    assert userinfo["sub"] == id_token.claims["sub"]
    assert userinfo["preferred_username"] == "somchai"

    refreshed = client.refresh_token(f"{a}/token", refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]

    introspected = client.introspect_token(f"{b}/introspect", token=refreshed["access_token"])
    assert introspected.json()["active"] is True

    assert client.revoke_token(f"{a}/revoke", token=refreshed["access_token"]).status_code == 200
    # Revoked at A, known at once at B.
    introspected = client.introspect_token(f"{b}/introspect", token=refreshed["access_token"])
    assert introspected.json() == {"active": False}


def test_reused_refresh_token_at_one_instance_revokes_at_the_other(instances):
    a, b = instances
    client = OAuth2Session(
        "demo-public",
        scope="openid offline_access",
        redirect_uri=CALLBACK,
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = secrets.token_urlsafe(48)
    url, state = client.create_authorization_url(f"{a}/authorize", code_verifier=verifier)
    callback = sign_in(url, "malee", CALLBACK)
    first = client.fetch_token(f"{a}/token", authorization_response=callback,
                               code_verifier=verifier, state=state)  # fmt: skip
    second = client.refresh_token(f"{b}/token", refresh_token=first["refresh_token"])
    replay = requests.post(
        f"{a}/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"],
              "client_id": "demo-public"},
    )  # fmt: skip
    assert replay.json()["error"] == "invalid_grant"
    service = ("demo-service", "demo-service-secret")
    answer = requests.post(f"{b}/introspect", data={"token": second["access_token"]}, auth=service)
    assert answer.json() == {"active": False}


def test_production_mode_uses_host_cookies_and_metrics_from_every_worker(instances):
    a, _ = instances
    response = requests.get(
        f"{a}/authorize",
        params={"client_id": "demo-public", "response_type": "code", "scope": "openid",
                "redirect_uri": CALLBACK, "code_challenge": "x" * 43,
                "code_challenge_method": "S256"},
        allow_redirects=False,
    )  # fmt: skip
    assert response.headers["Set-Cookie"].startswith("__Host-idp_session=")
    metrics = requests.get(f"{a}/metrics").text
    assert "idp_tokens_issued_total" in metrics
    assert "idp_request_duration_seconds" in metrics


def test_key_rotation_reaches_every_instance_and_old_tokens_stay_valid(instances, env):
    a, b = instances
    service = ("demo-service", "demo-service-secret")

    def token_at(url: str) -> str:
        response = requests.post(f"{url}/token", data={"grant_type": "client_credentials"},
                                 auth=service)  # fmt: skip
        return str(response.json()["access_token"])

    def signing_kid(token: str) -> str:
        return str(jws.extract_compact(token.encode()).protected["kid"])

    before = token_at(a)
    published_before = {k["kid"] for k in requests.get(f"{b}/jwks.json").json()["keys"]}
    # The next key was published when the database was set up, seconds ago: force.
    run_cli(env, "keys", "rotate", "--force")
    deadline = time.monotonic() + 10
    while signing_kid(token_at(b)) == signing_kid(before) and time.monotonic() < deadline:
        time.sleep(0.1)  # the rotation notice travels over Redis pub/sub
    after = token_at(b)
    assert signing_kid(after) != signing_kid(before)
    # The new signing key had been published before it signed anything.
    assert signing_kid(after) in published_before
    for url in (a, b):
        published = {k["kid"] for k in requests.get(f"{url}/jwks.json").json()["keys"]}
        assert signing_kid(before) in published
        answer = requests.post(f"{url}/introspect", data={"token": before}, auth=service)
        assert answer.json()["active"] is True
