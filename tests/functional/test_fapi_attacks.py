"""Attacks on the FAPI 2.0 front and back channel (PAR, request objects, private_key_jwt), each
performed as an attacker would over HTTP; every one must be refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from werkzeug.wrappers import Request
from werkzeug.wrappers import Response

from idp.demo import seed as demo_seed
from tests.factories import PASSWORD
from tests.factories import add_client
from tests.factories import seed
from tests.fapi import ASSERTION_TYPE
from tests.fapi import FapiClient
from tests.fapi import new_key
from tests.fapi import public_jwks
from tests.fapi import unsigned
from tests.functional.test_fapi_during_redis_outage import outage
from tests.rp import CALLBACK
from tests.rp import ISSUER
from tests.rp import RP
from tests.rp import basic
from tests.rp import callback_params
from tests.servers import serving

SECRET = "fapi-attack-client-secret-0123456789abcdef"


@pytest.fixture
def fapi(client, deps, clock):
    seed(deps, "somchai")
    key = new_key()
    add_client(deps, "fapi-rp", secret=None, auth_methods=["private_key_jwt"],
               jwks=public_jwks(key), require_pushed_authorization_requests=True)  # fmt: skip
    return FapiClient(RP(client, client_id="fapi-rp", secret=None), key, clock.now)


@pytest.fixture
def jar(client, deps, clock):
    """A client that signs its requests (and pushes nothing)."""
    key = new_key()
    add_client(deps, "jar-rp", secret=SECRET, auth_methods=["client_secret_basic"],
               jwks=public_jwks(key), require_signed_request_object=True)  # fmt: skip
    return FapiClient(RP(client, client_id="jar-rp", secret=SECRET), key, clock.now)


def hs256(claims: dict[str, Any], secret: bytes, **header: Any) -> str:
    """An HS256 JWT made by hand: what an attacker makes with a public key's bytes as the
    HMAC secret (algorithm confusion), which JOSE libraries rightly refuse to make."""

    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    head = part(json.dumps({"alg": "HS256", "typ": "JWT", **header}).encode())
    body = part(json.dumps(claims).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{part(mac)}"


def shown_error(response) -> str:
    """The error page of a refused front-channel request: never a redirect."""
    assert response.status_code == 400, response.status_code
    assert "Location" not in response.headers
    return response.get_data(as_text=True)


def refused_client(response) -> None:
    assert response.status_code in (400, 401), response.status_code
    assert response.get_json()["error"] == "invalid_client"


# --- pushed requests ---------------------------------------------------------------------


def test_parallel_use_of_one_request_uri_gets_one_login_page(fapi, app):
    request_uri = fapi.push(fapi.rp.authorize_params()).get_json()["request_uri"]
    query = "/authorize?" + urlencode({"client_id": "fapi-rp", "request_uri": request_uri})
    browsers = [app.test_client() for _ in range(8)]
    with ThreadPoolExecutor(len(browsers)) as pool:
        statuses = list(pool.map(lambda browser: browser.get(query).status_code, browsers))
    assert sorted(statuses) == [303] + [400] * 7, statuses


def test_query_parameters_beside_a_request_uri_do_not_count(fapi, client):
    params = fapi.rp.authorize_params()
    request_uri = fapi.push(params).get_json()["request_uri"]
    query = {
        "client_id": "fapi-rp",
        "request_uri": request_uri,
        "redirect_uri": "https://evil.example/cb",
        "state": "attacker-state",
        "scope": "openid admin",
        "code_challenge": "A" * 43,
        "code_challenge_method": "plain",
        "prompt": "none",
        "response_mode": "form_post",
    }
    page = fapi.rp.follow(client.get("/authorize?" + urlencode(query)))
    assert page.status_code == 200
    answer = fapi.rp.submit(page, username="somchai", password=PASSWORD)
    assert answer.headers["Location"].startswith(CALLBACK + "?")
    callback = callback_params(answer)
    assert callback["state"] == params["state"]
    tokens = fapi.token(grant_type="authorization_code", code=callback["code"],
                        redirect_uri=CALLBACK, code_verifier=fapi.rp.verifier)  # fmt: skip
    assert tokens.status_code == 200, tokens.get_json()
    assert "admin" not in tokens.get_json()["scope"].split()


def test_par_required_client_cannot_send_a_request_object_by_value(fapi, client):
    request = fapi.request_object({**fapi.rp.authorize_params()})
    query = urlencode({"client_id": "fapi-rp", "request": request})
    assert "invalid_request" in shown_error(client.get("/authorize?" + query))


def test_pushed_request_cannot_downgrade_pkce(fapi):
    plain = fapi.push(fapi.rp.authorize_params(code_challenge_method="plain"))
    assert plain.status_code == 400
    assert plain.get_json()["error"] == "invalid_request"
    inside = fapi.request_object(fapi.rp.authorize_params(code_challenge=None,
                                                          code_challenge_method=None))  # fmt: skip
    no_pkce = fapi.push({"client_id": "fapi-rp", "request": inside})
    assert no_pkce.status_code == 400
    assert no_pkce.get_json()["error"] == "invalid_request"


def test_push_for_an_unregistered_redirect_uri_gives_no_request_uri(fapi):
    pushed = fapi.push(fapi.rp.authorize_params(redirect_uri=CALLBACK + "/../evil"))
    assert pushed.status_code == 400
    assert "request_uri" not in pushed.get_json()


# --- request objects ---------------------------------------------------------------------


def by_value(rp: FapiClient, request: str, client_id: str | None = None):
    query = urlencode({"client_id": client_id or rp.client_id, "request": request})
    return rp.rp.client.get("/authorize?" + query)


def test_request_object_hmac_with_the_public_key_or_secret_is_refused(jar):
    claims = {"iss": "jar-rp", "aud": ISSUER, "nbf": int(jar.now().timestamp()),
              "exp": int(jar.now().timestamp()) + 300, **jar.rp.authorize_params()}  # fmt: skip
    public_pem = jar.key.as_pem(private=False)
    for secret in (public_pem, SECRET.encode()):
        forged = hs256(claims, secret, kid=jar.key.kid)
        assert "invalid_request_object" in shown_error(by_value(jar, forged))
    assert "invalid_request_object" in shown_error(by_value(jar, unsigned(claims)))


def test_request_object_signed_with_another_clients_key_is_refused(jar, fapi):
    # fapi-rp's key, its kid in the header: verified against jar-rp's keys only.
    params = jar.rp.authorize_params()
    forged = fapi.request_object({**params, "client_id": "jar-rp"}, iss="jar-rp")
    assert "invalid_request_object" in shown_error(by_value(jar, forged))


def test_request_object_time_and_audience_attacks_are_refused(jar):
    now = int(jar.now().timestamp())
    params = jar.rp.authorize_params()
    for overrides in (
        {"nbf": now + 3600, "exp": now + 3900},  # not yet valid
        {"exp": now + 7200},  # lives too long
        {"nbf": now - 7200, "exp": now + 60},  # made long ago
        {"aud": ["https://other.example"]},
        {"iss": "fapi-rp"},
        {"client_id": "fapi-rp"},
        {"request": "eyJ.x.y"},  # nested
        {"request_uri": "urn:ietf:params:oauth:request_uri:x"},
        {"nbf": "soon"},
        {"exp": None},
    ):
        request = jar.request_object({**params, **{"client_id": "jar-rp"}}, **overrides)
        body = shown_error(by_value(jar, request))
        assert "invalid_request_object" in body, overrides


def test_request_object_with_plain_pkce_is_refused(jar, client):
    params = jar.rp.authorize_params(code_challenge_method="plain")
    response = by_value(jar, jar.request_object(params))
    assert response.status_code in (302, 303, 400)
    if response.status_code != 400:
        assert "error=invalid_request" in response.headers["Location"]


# --- private_key_jwt ---------------------------------------------------------------------


@pytest.fixture
def service(client, deps, clock):
    key = new_key()
    add_client(deps, "pkj-only", secret=None, auth_methods=["private_key_jwt"],
               jwks=public_jwks(key), grant_types=["client_credentials"],
               scope="helpdesk")  # fmt: skip
    return FapiClient(RP(client, client_id="pkj-only", secret=None), key, clock.now)


def token_with(client, assertion: str, **extra: str):
    data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion, **extra}  # fmt: skip
    return client.post("/token", data=data)


def test_parallel_replay_of_one_assertion_gets_one_token(service, app):
    assertion = service.assertion()
    callers = [app.test_client() for _ in range(8)]
    with ThreadPoolExecutor(len(callers)) as pool:
        statuses = list(pool.map(lambda c: token_with(c, assertion).status_code, callers))
    assert sorted(statuses).count(200) == 1, statuses


def test_assertion_claim_attacks_are_refused(service, client):
    now = int(service.now().timestamp())
    for overrides in (
        {"exp": None},
        {"exp": now + 86400},
        {"iss": "demo-confidential"},
        {"aud": ISSUER + "/userinfo"},
        {"aud": "https://other.example"},
        {"jti": None},
        {"exp": "tomorrow"},
        {"nbf": now + 600},
    ):
        refused_client(token_with(client, service.assertion(**overrides)))


def test_assertion_for_an_endpoint_url_is_refused(service, client):
    """Audience injection (draft-ietf-oauth-rfc7523bis): a malicious authorization server the
    client also uses names our token endpoint as one of its own endpoints, and replays here
    the assertion the client made for it. Only our issuer, as the sole audience, is ours."""
    for aud in (
        ISSUER + "/token",
        ISSUER + "/par",
        [ISSUER, "https://attacker-as.example"],
        [ISSUER + "/token", "https://attacker-as.example/token"],
    ):
        refused_client(token_with(client, service.assertion(aud=aud)))
    assert token_with(client, service.assertion(aud=ISSUER)).status_code == 200
    assert token_with(client, service.assertion(aud=[ISSUER])).status_code == 200


def test_malformed_assertions_are_refused_without_a_server_error(service, client):
    for overrides in (
        {"sub": ["pkj-only"], "iss": ["pkj-only"]},
        {"sub": 7, "iss": 7},
        {"sub": None},
        {"sub": "nobody", "iss": "nobody"},
        {"sub": "x" * 5000, "iss": "x" * 5000},
        {"jti": 12345678901},
        {"aud": [ISSUER, 7]},
        {"aud": {}},
    ):
        refused_client(token_with(client, service.assertion(**overrides)))
    for garbage in ("", "a.b.c", "e30.e30.", "x" * 20000, service.assertion() + "x"):
        response = token_with(client, garbage)
        assert response.status_code in (400, 401), (garbage[:20], response.status_code)


def test_assertion_for_one_client_with_another_client_id_is_refused(service, client):
    refused_client(token_with(client, service.assertion(), client_id="demo-service"))


def test_key_client_cannot_authenticate_with_a_secret_or_its_name(service, client, deps):
    add_client(deps, "pkj-with-secret", secret=SECRET, auth_methods=["private_key_jwt"],
               jwks=public_jwks(new_key()), grant_types=["client_credentials"],
               scope="helpdesk")  # fmt: skip
    data = {"grant_type": "client_credentials"}
    refused_client(client.post("/token", data=data, headers=basic("pkj-with-secret", SECRET)))
    refused_client(client.post("/token", data={**data, "client_id": "pkj-with-secret",
                                               "client_secret": SECRET}))  # fmt: skip
    refused_client(client.post("/token", data={**data, "client_id": "pkj-only"}))
    revoke = client.post("/revoke", data={"token": "x", "client_id": "pkj-only"})
    refused_client(revoke)


def test_secret_client_cannot_authenticate_by_assertion(client, deps, clock):
    key = new_key()
    add_client(deps, "secret-rp", secret=SECRET, auth_methods=["client_secret_basic"],
               jwks=public_jwks(key), grant_types=["client_credentials"],
               scope="helpdesk")  # fmt: skip
    secret_rp = FapiClient(RP(client, client_id="secret-rp", secret=None), key, clock.now)
    refused_client(token_with(client, secret_rp.assertion()))
    forged = hs256(secret_rp.assertion_claims(), SECRET.encode(), kid=key.kid)
    refused_client(token_with(client, forged))


def test_attempt_id_cannot_be_sent_by_the_caller(service, client):
    """The replay guard recognises a request's own mark by an id in the WSGI environ: a
    header that looks like it must not let a replay pass."""
    assertion = service.assertion()
    assert token_with(client, assertion).status_code == 200
    for name in ("Idp-Attempt-Id", "idp.attempt_id", "X-Attempt-Id"):
        replay = client.post(
            "/token",
            data={"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                  "client_assertion": assertion},
            headers={name: "x"},
        )  # fmt: skip
        refused_client(replay)


def assertion_with_keys_served_by(chunks, client, deps, clock, then=None):
    """The token endpoint's answer to an assertion of a client whose jwks_uri streams
    ``chunks`` (a generator function) as its answer; ``then`` runs while it still serves."""

    @Request.application
    def jwks_endpoint(request: Request) -> Response:
        return Response(chunks(), mimetype="application/json", direct_passthrough=True)

    with serving(jwks_endpoint) as url:
        add_client(deps, "keys-by-uri", secret=None, auth_methods=["private_key_jwt"],
                   jwks_uri=url + "/jwks.json", grant_types=["client_credentials"],
                   scope="helpdesk")  # fmt: skip
        rp = FapiClient(RP(client, client_id="keys-by-uri", secret=None), new_key(), clock.now)
        response = token_with(client, rp.assertion())
        if then is not None:
            then(rp)
        time.sleep(0.5)  # what the server still manages to send
        return response


def test_a_slow_jwks_uri_cannot_hold_the_token_endpoint(client, deps, clock):
    """A jwks_uri that drips its answer: requests' timeout bounds each read, not the whole."""

    def dripping():
        yield b'{"keys": ['
        for _ in range(60):
            time.sleep(0.5)
            yield b" " * 1024

    started = time.monotonic()
    refused_client(assertion_with_keys_served_by(dripping, client, deps, clock))
    assert time.monotonic() - started < 12


def test_a_huge_jwks_uri_answer_is_not_read_whole(client, deps, clock):
    sent = {"bytes": 0}

    def huge():
        yield b'{"keys": [], "pad": "'
        for _ in range(2048):  # 128 MiB at most
            sent["bytes"] += 65536
            yield b"x" * 65536

    refused_client(assertion_with_keys_served_by(huge, client, deps, clock))
    # Socket buffers take some, but not the whole answer: the reader stopped early.
    assert sent["bytes"] < 32 * 1024 * 1024, sent


def test_a_failing_jwks_uri_is_not_asked_again_for_each_assertion(client, deps, clock):
    """Anyone may send assertions naming a client: while its jwks_uri fails, each one must not
    cost an outgoing request and a worker waiting for it."""
    hits = {"count": 0}

    def failing():
        hits["count"] += 1
        time.sleep(1)
        yield b"not json"

    def three_more(rp: FapiClient) -> None:
        for _ in range(3):
            started = time.monotonic()
            refused_client(token_with(client, rp.assertion(key=new_key())))
            assert time.monotonic() - started < 0.5

    refused_client(assertion_with_keys_served_by(failing, client, deps, clock, then=three_more))
    assert hits["count"] == 1


# --- the demo client's key -----------------------------------------------------------------


def test_demo_fapi_private_key_is_never_readable_by_others(deps, tmp_path, monkeypatch):
    """Private from its creation, not by a chmod after writing (Path.chmod does nothing here,
    so a file made with the usual umask and restricted afterwards would stay 0644)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Path, "chmod", lambda self, mode: None)
    old_umask = os.umask(0o022)
    try:
        with deps.sessions.begin() as session:
            demo_seed(session, deps)
    finally:
        os.umask(old_umask)
    path = tmp_path / "instance" / "demo-fapi.private.jwk.json"
    assert path.stat().st_mode & 0o777 == 0o600
    monkeypatch.undo()
    # A key file copied in with loose permissions is restricted when the seed reads it.
    monkeypatch.chdir(tmp_path)
    path.chmod(0o644)
    with deps.sessions.begin() as session:
        demo_seed(session, deps)
    assert path.stat().st_mode & 0o777 == 0o600


# --- through a Redis outage ----------------------------------------------------------------


# The outage fixture: an instance whose Redis can fail, the database fallback as in service.
through_outage = outage


def test_assertion_used_before_a_redis_outage_stays_used_during_it(through_outage):
    """A jti marked while Redis was up must not be new to the database during an outage."""
    fapi, redis = through_outage
    params = fapi.rp.authorize_params()
    assertion = fapi.assertion()
    assert fapi.push(params, **fapi.auth(assertion)).status_code == 201
    redis.fail()
    refused_client(fapi.push(params, **fapi.auth(assertion)))
    redis.heal()
    refused_client(fapi.push(params, **fapi.auth(assertion)))


def test_parallel_replay_during_a_redis_outage_gets_one_request_uri(through_outage):
    fapi, redis = through_outage
    redis.fail()
    params = fapi.rp.authorize_params()
    assertion = fapi.assertion()
    app = fapi.rp.client.application
    callers = [app.test_client() for _ in range(6)]

    def push(caller):
        return caller.post("/par", data={**params, **fapi.auth(assertion)}).status_code

    with ThreadPoolExecutor(len(callers)) as pool:
        statuses = list(pool.map(push, callers))
    assert sorted(statuses).count(201) == 1, statuses
