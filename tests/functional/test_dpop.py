"""DPoP-bound access tokens (RFC 9449), over real HTTP: the token endpoint binds what it issues
to the proof's key, userinfo and the admin API want the DPoP scheme and a proof of that key,
and every refusal is a standard error."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
import requests
import urllib3
from joserfc import jws
from joserfc import jwt
from joserfc.jwk import ECKey
from joserfc.jwk import KeySet
from joserfc.jwk import OctKey
from joserfc.jwk import RSAKey
from sqlalchemy import select
from urllib3 import HTTPHeaderDict

from idp import create_app
from idp.audit.models import AuditEvent
from idp.deps import Deps
from idp.deps import build_deps
from tests.factories import add_client
from tests.factories import seed
from tests.rp import CALLBACK
from tests.rp import basic
from tests.rp import pkce_pair
from tests.servers import free_port
from tests.servers import serving
from tests.servers import sign_in

CONFIDENTIAL = basic("demo-confidential", "demo-confidential-secret")
SERVICE = basic("demo-service", "demo-service-secret")
BOUND_SERVICE = basic("bound-service", "s" * 40)


@dataclass
class Site:
    url: str
    deps: Deps

    def now(self) -> int:
        return int(self.deps.clock.now().timestamp())

    def proof(self, key: Any, method: str = "POST", path: str = "/token", *, alg: str = "ES256",
              url: str | None = None, iat: int | None = None, jti: str | None = None,
              access_token: str | None = None, nonce: str | None = None) -> str:  # fmt: skip
        """A DPoP proof (RFC 9449 §4.2) signed with ``key``."""
        claims: dict[str, Any] = {
            "htm": method,
            "htu": url or f"{self.url}{path}",
            "iat": self.now() if iat is None else iat,
            "jti": jti or secrets.token_urlsafe(16),
        }
        if access_token is not None:
            digest = hashlib.sha256(access_token.encode()).digest()
            claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if nonce is not None:
            claims["nonce"] = nonce
        header = {"typ": "dpop+jwt", "alg": alg, "jwk": dict(key.as_dict(private=False))}
        return jws.serialize_compact(header, json.dumps(claims), key, algorithms=[alg])

    def token(self, data: dict[str, str], headers: dict[str, str]) -> requests.Response:
        return requests.post(f"{self.url}/token", data=data, headers=headers, timeout=10)

    def code(self, client_id: str = "demo-confidential", **extra: str) -> tuple[str, str]:
        """Sign somchai in over HTTP; return the code and its PKCE verifier."""
        verifier, challenge = pkce_pair()
        params = {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK,
                  "scope": "openid profile offline_access", "state": "s", "nonce": "n",
                  "code_challenge": challenge, "code_challenge_method": "S256",
                  **extra}  # fmt: skip
        callback = sign_in(f"{self.url}/authorize?{urlencode(params)}", "somchai", CALLBACK)
        return parse_qs(urlsplit(callback).query)["code"][0], verifier

    def exchange(self, code: str, verifier: str, headers: dict[str, str],
                 **extra: str) -> requests.Response:  # fmt: skip
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
                "code_verifier": verifier, **extra}  # fmt: skip
        return self.token(data, headers)

    def claims(self, access_token: str) -> dict[str, Any]:
        keys = KeySet.import_key_set(requests.get(f"{self.url}/jwks.json", timeout=10).json())
        return dict(jwt.decode(access_token, keys, algorithms=["ES256", "RS256"]).claims)

    def events(self, name: str) -> list[AuditEvent]:
        with self.deps.sessions() as session:
            return list(session.scalars(select(AuditEvent).where(AuditEvent.event == name)))


@pytest.fixture
def make_site(settings, deps) -> Iterator[Callable[..., Site]]:
    """The IdP (the WSGI app with its fast paths, as deployed) on a loopback port."""
    stack = []

    def start(**overrides: Any) -> Site:
        port = free_port()
        local = build_deps(
            settings.model_copy(update={"issuer": f"http://127.0.0.1:{port}", **overrides}),
            clock=deps.clock, store=deps.store, engine=deps.engine,
        )  # fmt: skip
        if not stack:
            seed(local, "somchai")
        add_client(local, "bound-service", grant_types=["client_credentials"], redirect_uris=[],
                   scope="helpdesk", dpop_bound_access_tokens=True)  # fmt: skip
        serving_ = serving(create_app(deps=local, background=False), port)
        url = serving_.__enter__()
        stack.append(serving_)
        return Site(url, local)

    yield start
    for running in stack:
        running.__exit__(None, None, None)


@pytest.fixture
def site(make_site) -> Site:
    return make_site()


@pytest.fixture
def key() -> ECKey:
    return ECKey.generate_key("P-256")


def service_token(site: Site, key: Any, headers: dict[str, str] = SERVICE) -> dict[str, Any]:
    response = site.token({"grant_type": "client_credentials"},
                          {**headers, "DPoP": site.proof(key)})  # fmt: skip
    assert response.status_code == 200, response.text
    return dict(response.json())


def assert_dpop_refused(response: requests.Response, status: int = 400,
                        error: str = "invalid_dpop_proof") -> None:  # fmt: skip
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert "error_description" in response.json() or status == 401


def test_a_dpop_code_exchange_through_the_deployed_app_gets_a_bound_token(site, key):
    code, verifier = site.code()
    response = site.exchange(code, verifier, {**CONFIDENTIAL, "DPoP": site.proof(key)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    assert site.claims(body["access_token"])["cnf"] == {"jkt": key.thumbprint()}
    introspected = requests.post(f"{site.url}/introspect", data={"token": body["access_token"]},
                                 headers=SERVICE, timeout=10).json()  # fmt: skip
    assert introspected["active"] is True
    assert introspected["token_type"] == "DPoP"
    assert introspected["cnf"] == {"jkt": key.thumbprint()}
    issued = site.events("token.issued")[-1]
    assert issued.details["dpop_jkt"] == key.thumbprint()


def test_discovery_names_the_proof_algorithms(site):
    document = requests.get(f"{site.url}/.well-known/openid-configuration", timeout=10).json()
    assert document["dpop_signing_alg_values_supported"] == ["ES256", "PS256"]


def test_discovery_with_a_dpop_header_goes_through_flask_and_answers_the_same(site, key):
    plain = requests.get(f"{site.url}/.well-known/openid-configuration", timeout=10)
    with_proof = requests.get(f"{site.url}/.well-known/openid-configuration", timeout=10,
                              headers={"DPoP": site.proof(key, "GET")})  # fmt: skip
    assert with_proof.status_code == 200
    assert with_proof.json() == plain.json()


def test_userinfo_takes_a_bound_token_with_the_dpop_scheme_and_refuses_it_as_bearer(site, key):
    code, verifier = site.code()
    token = site.exchange(code, verifier, {**CONFIDENTIAL, "DPoP": site.proof(key)}).json()
    access = token["access_token"]
    userinfo = f"{site.url}/userinfo"
    proof = site.proof(key, "GET", "/userinfo", access_token=access)
    ok = requests.get(userinfo, headers={"Authorization": f"DPoP {access}", "DPoP": proof},
                      timeout=10)  # fmt: skip
    assert ok.status_code == 200, ok.text
    assert ok.json()["sub"]
    as_bearer = requests.get(userinfo, headers={"Authorization": f"Bearer {access}"}, timeout=10)
    assert as_bearer.status_code == 401
    assert as_bearer.json()["error"] == "invalid_token"
    challenge = as_bearer.headers["WWW-Authenticate"]
    assert challenge.startswith("DPoP ")
    assert 'algs="ES256 PS256"' in challenge
    # A proof alongside does not make the bearer scheme acceptable.
    with_proof = requests.get(userinfo, timeout=10, headers={
        "Authorization": f"Bearer {access}",
        "DPoP": site.proof(key, "GET", "/userinfo", access_token=access)})  # fmt: skip
    assert with_proof.status_code == 401


@pytest.mark.parametrize(
    "change",
    ["another key", "another token", "another method", "no proof", "replayed"],
)
def test_userinfo_refuses_a_proof_that_does_not_fit(site, key, change):
    code, verifier = site.code()
    exchanged = site.exchange(code, verifier, {**CONFIDENTIAL, "DPoP": site.proof(key)})
    access = exchanged.json()["access_token"]
    proof = site.proof(key, "GET", "/userinfo", access_token=access)
    headers = {"Authorization": f"DPoP {access}", "DPoP": proof}
    if change == "another key":
        headers["DPoP"] = site.proof(ECKey.generate_key("P-256"), "GET", "/userinfo",
                                     access_token=access)  # fmt: skip
    elif change == "another token":
        headers["DPoP"] = site.proof(key, "GET", "/userinfo", access_token=access + "x")
    elif change == "another method":
        headers["DPoP"] = site.proof(key, "POST", "/userinfo", access_token=access)
    elif change == "no proof":
        del headers["DPoP"]
    else:
        first = requests.get(f"{site.url}/userinfo", headers=headers, timeout=10)
        assert first.status_code == 200
    response = requests.get(f"{site.url}/userinfo", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_dpop_proof"
    assert response.headers["WWW-Authenticate"].startswith("DPoP ")
    assert 'error="invalid_dpop_proof"' in response.headers["WWW-Authenticate"]
    assert site.events("token.dpop_proof_refused")


def test_unbound_tokens_stay_bearer_tokens(site):
    code, verifier = site.code()
    body = site.exchange(code, verifier, CONFIDENTIAL).json()
    assert body["token_type"] == "Bearer"
    assert "cnf" not in site.claims(body["access_token"])
    access = body["access_token"]
    ok = requests.get(f"{site.url}/userinfo", headers={"Authorization": f"Bearer {access}"},
                      timeout=10)  # fmt: skip
    assert ok.status_code == 200


@pytest.mark.parametrize(
    "change",
    ["url", "method", "stale", "future", "typ", "private key in header", "HS256", "no jti"],
)
def test_the_token_endpoint_refuses_a_bad_proof(site, key, change):
    proof = site.proof(key)
    if change == "url":
        proof = site.proof(key, url=f"{site.url}/introspect")
    elif change == "method":
        proof = site.proof(key, "GET")
    elif change == "stale":
        proof = site.proof(key, iat=site.now() - 120)
    elif change == "future":
        proof = site.proof(key, iat=site.now() + 120)
    elif change == "typ":
        header = {"typ": "JWT", "alg": "ES256", "jwk": dict(key.as_dict(private=False))}
        claims = {"htm": "POST", "htu": f"{site.url}/token", "iat": site.now(), "jti": "a" * 16}
        proof = jws.serialize_compact(header, json.dumps(claims), key, algorithms=["ES256"])
    elif change == "private key in header":
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": dict(key.as_dict(private=True))}
        claims = {"htm": "POST", "htu": f"{site.url}/token", "iat": site.now(), "jti": "b" * 16}
        proof = jws.serialize_compact(header, json.dumps(claims), key, algorithms=["ES256"])
    elif change == "HS256":
        claims = {"htm": "POST", "htu": f"{site.url}/token", "iat": site.now(), "jti": "c" * 16}
        proof = jwt.encode({"typ": "dpop+jwt", "alg": "HS256"}, claims,
                           OctKey.import_key("k" * 32), algorithms=["HS256"])  # fmt: skip
    else:
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": dict(key.as_dict(private=False))}
        claims = {"htm": "POST", "htu": f"{site.url}/token", "iat": site.now()}
        proof = jws.serialize_compact(header, json.dumps(claims), key, algorithms=["ES256"])
    response = site.token({"grant_type": "client_credentials"}, {**SERVICE, "DPoP": proof})
    assert_dpop_refused(response)
    assert site.events("token.dpop_proof_refused")


def test_a_replayed_proof_is_refused(site, key):
    proof = site.proof(key)
    first = site.token({"grant_type": "client_credentials"}, {**SERVICE, "DPoP": proof})
    assert first.status_code == 200
    again = site.token({"grant_type": "client_credentials"}, {**SERVICE, "DPoP": proof})
    assert_dpop_refused(again)


def test_two_proofs_in_one_request_are_refused(site, key):
    headers = HTTPHeaderDict({**SERVICE, "Content-Type": "application/x-www-form-urlencoded"})
    headers.add("DPoP", site.proof(key))
    headers.add("DPoP", site.proof(key))
    response = urllib3.request("POST", f"{site.url}/token", headers=headers,
                               body="grant_type=client_credentials")  # fmt: skip
    assert response.status == 400
    assert response.json()["error"] == "invalid_dpop_proof"


def test_a_ps256_proof_binds_to_an_rsa_key(site):
    rsa = RSAKey.generate_key(2048)
    response = site.token({"grant_type": "client_credentials"},
                          {**SERVICE, "DPoP": site.proof(rsa, alg="PS256")})  # fmt: skip
    assert response.status_code == 200, response.text
    assert site.claims(response.json()["access_token"])["cnf"] == {"jkt": rsa.thumbprint()}


def test_a_client_registered_for_bound_tokens_must_send_a_proof(site, key):
    without = site.token({"grant_type": "client_credentials"}, BOUND_SERVICE)
    assert_dpop_refused(without)
    token = service_token(site, key, BOUND_SERVICE)
    assert token["token_type"] == "DPoP"


def test_a_public_clients_refresh_token_is_bound_to_its_key(site, key):
    code, verifier = site.code("demo-public")
    first = site.exchange(code, verifier, {"DPoP": site.proof(key)}, client_id="demo-public")
    assert first.status_code == 200, first.text
    refresh = first.json()["refresh_token"]
    data = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": "demo-public"}
    other = site.token(data, {"DPoP": site.proof(ECKey.generate_key("P-256"))})
    assert_dpop_refused(other)
    without = site.token(data, {})
    assert_dpop_refused(without)
    # The refused attempts used nothing up: the key's holder still refreshes.
    ok = site.token(data, {"DPoP": site.proof(key)})
    assert ok.status_code == 200, ok.text
    assert ok.json()["token_type"] == "DPoP"
    assert site.claims(ok.json()["access_token"])["cnf"] == {"jkt": key.thumbprint()}


def test_a_confidential_clients_refresh_binds_the_new_token_to_the_proof_sent(site, key):
    code, verifier = site.code()
    first = site.exchange(code, verifier, {**CONFIDENTIAL, "DPoP": site.proof(key)})
    new_key = ECKey.generate_key("P-256")
    data = {"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]}
    refreshed = site.token(data, {**CONFIDENTIAL, "DPoP": site.proof(new_key)})
    assert refreshed.status_code == 200, refreshed.text
    assert site.claims(refreshed.json()["access_token"])["cnf"] == {"jkt": new_key.thumbprint()}


def test_a_code_bound_with_dpop_jkt_is_redeemed_only_with_that_key(site, key):
    code, verifier = site.code(dpop_jkt=key.thumbprint())
    stranger = ECKey.generate_key("P-256")
    other = site.exchange(code, verifier, {**CONFIDENTIAL, "DPoP": site.proof(stranger)})
    assert_dpop_refused(other)
    assert_dpop_refused(site.exchange(code, verifier, CONFIDENTIAL))
    ok = site.exchange(code, verifier, {**CONFIDENTIAL, "DPoP": site.proof(key)})
    assert ok.status_code == 200, ok.text
    assert ok.json()["token_type"] == "DPoP"


def test_a_malformed_dpop_jkt_is_refused_at_the_authorization_endpoint(site):
    _, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": "demo-confidential", "redirect_uri": CALLBACK,
              "scope": "openid", "state": "s", "code_challenge": challenge,
              "code_challenge_method": "S256", "dpop_jkt": "not a thumbprint"}  # fmt: skip
    response = requests.get(f"{site.url}/authorize?{urlencode(params)}", timeout=10,
                            allow_redirects=False)  # fmt: skip
    assert response.status_code in (302, 303)
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["error"] == ["invalid_request"]


def test_the_nonce_flow_at_the_token_endpoint_and_userinfo(make_site, key):
    site = make_site(dpop_nonce_required=True)
    code, verifier = site.code()
    first = site.exchange(code, verifier, {**CONFIDENTIAL, "DPoP": site.proof(key)})
    assert_dpop_refused(first, error="use_dpop_nonce")
    nonce = first.headers["DPoP-Nonce"]
    wrong = site.exchange(code, verifier,
                          {**CONFIDENTIAL, "DPoP": site.proof(key, nonce="x" * 32)})  # fmt: skip
    assert_dpop_refused(wrong, error="use_dpop_nonce")
    ok = site.exchange(code, verifier, {**CONFIDENTIAL, "DPoP": site.proof(key, nonce=nonce)})
    assert ok.status_code == 200, ok.text
    assert ok.headers["DPoP-Nonce"]  # RFC 9449 §8.2: the next one comes with the answer
    access = ok.json()["access_token"]
    userinfo = f"{site.url}/userinfo"
    asked = requests.get(userinfo, timeout=10, headers={
        "Authorization": f"DPoP {access}",
        "DPoP": site.proof(key, "GET", "/userinfo", access_token=access)})  # fmt: skip
    assert asked.status_code == 401
    assert asked.json()["error"] == "use_dpop_nonce"
    assert 'error="use_dpop_nonce"' in asked.headers["WWW-Authenticate"]
    nonce = asked.headers["DPoP-Nonce"]
    answered = requests.get(userinfo, timeout=10, headers={
        "Authorization": f"DPoP {access}",
        "DPoP": site.proof(key, "GET", "/userinfo", access_token=access, nonce=nonce)})  # fmt: skip
    assert answered.status_code == 200, answered.text


def test_a_nonce_is_accepted_by_another_instance_and_expires(make_site, key):
    one = make_site(dpop_nonce_required=True)
    two = make_site(dpop_nonce_required=True)
    asked = one.token({"grant_type": "client_credentials"}, {**SERVICE, "DPoP": one.proof(key)})
    nonce = asked.headers["DPoP-Nonce"]
    # Same data key, another process: the nonce is derived, not stored.
    ok = two.token({"grant_type": "client_credentials"},
                   {**SERVICE, "DPoP": two.proof(key, nonce=nonce)})  # fmt: skip
    assert ok.status_code == 200, ok.text
    two.deps.clock.advance(700)  # past the window it was made in and the next
    late = two.token({"grant_type": "client_credentials"},
                     {**SERVICE, "DPoP": two.proof(key, nonce=nonce)})  # fmt: skip
    assert_dpop_refused(late, error="use_dpop_nonce")


def test_the_admin_api_takes_a_bound_token_with_a_proof_only(site, key):
    access = service_token(site, key)["access_token"]
    url = f"{site.url}/api/admin/v1/cases"
    ok = requests.get(url, timeout=10, headers={
        "Authorization": f"DPoP {access}",
        "DPoP": site.proof(key, "GET", "/api/admin/v1/cases", access_token=access)})  # fmt: skip
    assert ok.status_code == 200, ok.text
    as_bearer = requests.get(url, headers={"Authorization": f"Bearer {access}"}, timeout=10)
    assert as_bearer.status_code == 401
    assert as_bearer.json()["error"] == "invalid_token"
    assert as_bearer.headers["WWW-Authenticate"].startswith('DPoP realm="admin"')
    other_key = requests.get(url, timeout=10, headers={
        "Authorization": f"DPoP {access}",
        "DPoP": site.proof(ECKey.generate_key("P-256"), "GET", "/api/admin/v1/cases",
                           access_token=access)})  # fmt: skip
    assert other_key.status_code == 401
    assert other_key.json()["error"] == "invalid_dpop_proof"
