"""Attacks on DPoP-bound access tokens (RFC 9449), each performed over HTTP against the app as
deployed: every one must be refused with a standard error, never answered with a 500 or a
token, and the refusals that hint at a stolen token are in the audit trail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from joserfc import jws
from joserfc.jwk import ECKey

from idp import create_app
from idp.deps import build_deps
from idp.store.durable import FallbackStore
from idp.store.ephemeral import Keys
from tests.conftest import NAMESPACE
from tests.factories import add_client
from tests.factories import seed
from tests.functional.test_dpop import CONFIDENTIAL
from tests.functional.test_dpop import SERVICE
from tests.functional.test_dpop import Site
from tests.functional.test_dpop import assert_dpop_refused
from tests.functional.test_dpop import make_site  # noqa: F401 - the fixture
from tests.functional.test_dpop import service_token
from tests.functional.test_gfms_portal import portal  # noqa: F401 - the fixture
from tests.functional.test_revocation_resilience import FlakyStore
from tests.portal_stack import CLIENT_ID as PORTAL_CLIENT
from tests.portal_stack import SECRET as PORTAL_SECRET
from tests.rp import CALLBACK
from tests.rp import pkce_pair
from tests.servers import free_port
from tests.servers import serving


@pytest.fixture
def site(make_site) -> Site:  # noqa: F811 - the fixture imported above
    return make_site()


@pytest.fixture
def key() -> ECKey:
    return ECKey.generate_key("P-256")


def signed(signer: ECKey, claims: dict[str, Any]) -> str:
    """A proof with exactly ``claims``, properly signed by ``key`` (an attacker's own key)."""
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": dict(signer.as_dict(private=False))}
    return jws.serialize_compact(header, json.dumps(claims), signer, algorithms=["ES256"])


@pytest.mark.parametrize("claim", ["huge iat", "unparsable htu"])
def test_a_crafted_proof_is_refused_not_answered_with_a_500(site, key, claim):
    claims: dict[str, Any] = {"htm": "POST", "htu": f"{site.url}/token", "iat": site.now(),
                              "jti": "crafted-" + claim.replace(" ", "-")}  # fmt: skip
    if claim == "huge iat":
        claims["iat"] = 10**400  # JSON allows it; a float conversion overflows
    else:
        claims["htu"] = "http://[::1/token"  # urlsplit raises on it
    response = site.token({"grant_type": "client_credentials"},
                          {**SERVICE, "DPoP": signed(key, claims)})  # fmt: skip
    assert_dpop_refused(response)
    access = service_token(site, key)["access_token"]
    claims |= {"htm": "GET", "jti": claims["jti"] + "-ui"}
    if claim == "huge iat":
        claims["htu"] = f"{site.url}/api/admin/v1/cases"
    refused = requests.get(f"{site.url}/api/admin/v1/cases", timeout=10, headers={
        "Authorization": f"DPoP {access}", "DPoP": signed(key, claims)})  # fmt: skip
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"] == "invalid_dpop_proof"


def test_a_bound_token_sent_as_bearer_is_recorded(site, key):
    # A bound token without its proof is what a thief holds: the attempt must be audited.
    code, verifier = site.code()
    access = site.exchange(code, verifier, {**CONFIDENTIAL, "DPoP": site.proof(key)}).json()[
        "access_token"
    ]
    before = len(site.events("token.dpop_proof_refused"))
    for url in (f"{site.url}/userinfo", f"{site.url}/api/admin/v1/cases"):
        response = requests.get(url, headers={"Authorization": f"Bearer {access}"}, timeout=10)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("DPoP ")
    assert len(site.events("token.dpop_proof_refused")) == before + 2


def test_two_dpop_jkt_parameters_are_refused(site, key):
    # RFC 6749 §3.1: a parameter is sent at most once; which of two keys binds the code
    # must not be left to whichever part of the server reads it.
    _, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": "demo-confidential", "redirect_uri": CALLBACK,
              "scope": "openid", "state": "s", "code_challenge": challenge,
              "code_challenge_method": "S256",
              "dpop_jkt": [key.thumbprint(), ECKey.generate_key("P-256").thumbprint()]}  # fmt: skip
    response = requests.get(f"{site.url}/authorize?{urlencode(params, doseq=True)}", timeout=10,
                            allow_redirects=False)  # fmt: skip
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert '<code id="error-code">invalid_request</code>' in response.text


@pytest.fixture
def outage_site(settings, pg_engine, redis_store, clock, clean_state) -> Iterator[tuple]:
    """The IdP on Redis with its database fallback, Redis made to fail on demand."""
    flaky = FlakyStore(redis_store)
    store = FallbackStore(flaky, pg_engine, shared_prefix=Keys(NAMESPACE).revocations_prefix,
                          now=clock.now)  # fmt: skip
    port = free_port()
    local = build_deps(settings.model_copy(update={"issuer": f"http://127.0.0.1:{port}"}),
                       clock=clock, store=store, engine=pg_engine)  # fmt: skip
    seed(local, "somchai")
    with serving(create_app(deps=local, background=False), port) as url:
        yield Site(url, local), flaky


def test_a_proof_used_before_redis_fails_is_not_accepted_again_during_the_outage(outage_site):
    # The attacker saw a request (proof and token) go by; Redis then fails, and its jti
    # markers with it: the captured proof must not become good again.
    idp, redis = outage_site
    holder = ECKey.generate_key("P-256")
    access = service_token(idp, holder)["access_token"]
    url = f"{idp.url}/api/admin/v1/cases"
    headers = {
        "Authorization": f"DPoP {access}",
        "DPoP": idp.proof(holder, "GET", "/api/admin/v1/cases", access_token=access),
    }
    assert requests.get(url, headers=headers, timeout=10).status_code == 200
    idp.deps.clock.advance(1)
    redis.fail()
    replayed = requests.get(url, headers=headers, timeout=10)
    assert replayed.status_code == 401, replayed.text
    assert replayed.json()["error"] == "invalid_dpop_proof"
    # A proof made during the outage is good, once.
    fresh = {**headers, "DPoP": idp.proof(holder, "GET", "/api/admin/v1/cases",
                                           access_token=access)}  # fmt: skip
    assert requests.get(url, headers=fresh, timeout=10).status_code == 200
    assert requests.get(url, headers=fresh, timeout=10).status_code == 401


def test_the_portals_bearer_api_refuses_a_dpop_bound_token(portal):  # noqa: F811
    # The portal's API is a resource of ours that takes bearer tokens only: a token bound to a
    # key (one of its audience, stolen without the key) must not pass there as a bearer token.
    stack = portal.stack
    add_client(stack.deps, PORTAL_CLIENT, secret=PORTAL_SECRET, redirect_uris=[],
               grant_types=["client_credentials"], scope="openid")  # fmt: skip
    holder = ECKey.generate_key("P-256")
    idp = Site(stack.idp, stack.deps)
    issued = requests.post(f"{stack.idp}/token", data={"grant_type": "client_credentials"},
                           auth=(PORTAL_CLIENT, PORTAL_SECRET),
                           headers={"DPoP": idp.proof(holder)}, timeout=10)  # fmt: skip
    assert issued.status_code == 200, issued.text
    assert issued.json()["token_type"] == "DPoP"
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    answer = requests.get(f"{portal.url}/api/documents", headers=bearer, timeout=10)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"] == "invalid_token"
