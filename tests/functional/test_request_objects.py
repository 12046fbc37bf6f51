"""Signed request objects (RFC 9101) at the authorization endpoint and inside pushed requests,
with FAPI 2.0 Message Signing's rules."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.factories import PASSWORD
from tests.factories import add_client
from tests.factories import seed
from tests.fapi import FapiClient
from tests.fapi import new_key
from tests.fapi import public_jwks
from tests.fapi import signed
from tests.fapi import unsigned
from tests.rp import RP
from tests.rp import callback_params


@pytest.fixture
def jar(client, deps, clock):
    seed(deps, "somchai")
    key = new_key()
    add_client(deps, "jar-rp", jwks=public_jwks(key))
    return FapiClient(RP(client, client_id="jar-rp", secret="s" * 40), key, clock.now)


def by_value(jar: FapiClient, request_object: str, **outer: str):
    query = {"client_id": jar.client_id, "request": request_object, **outer}
    return jar.rp.follow(jar.rp.client.get("/authorize?" + urlencode(query)))


def refused(response) -> str:
    assert response.status_code == 400, response.status_code
    assert "Location" not in response.headers
    body = response.get_data(as_text=True)
    assert "invalid_request_object" in body
    return body


def test_signed_request_object_replaces_the_query(jar):
    params = jar.rp.authorize_params()
    # RFC 9101 §6.3: only the object counts; the query's state is not the client's.
    page = by_value(jar, jar.request_object(params), state="from-the-query")
    assert page.status_code == 200
    callback = callback_params(jar.rp.submit(page, username="somchai", password=PASSWORD))
    assert callback["state"] == params["state"]
    assert jar.rp.exchange(callback["code"]).status_code == 200


def test_expired_request_object_is_refused(jar, clock):
    now = int(clock.now().timestamp())
    obj = jar.request_object(jar.rp.authorize_params(), nbf=now - 600, exp=now - 120)
    refused(by_value(jar, obj))


def test_request_object_living_over_an_hour_is_refused(jar, clock):
    now = int(clock.now().timestamp())
    obj = jar.request_object(jar.rp.authorize_params(), nbf=now, exp=now + 3601 + 60)
    refused(by_value(jar, obj))
    old = jar.request_object(jar.rp.authorize_params(), nbf=now - 3700, exp=now + 60)
    refused(by_value(jar, old))


def test_request_object_without_nbf_or_exp_is_refused(jar):
    refused(by_value(jar, jar.request_object(jar.rp.authorize_params(), nbf=None)))
    refused(by_value(jar, jar.request_object(jar.rp.authorize_params(), exp=None)))


def test_request_object_for_another_audience_is_refused(jar):
    obj = jar.request_object(jar.rp.authorize_params(), aud="https://other-op.example")
    refused(by_value(jar, obj))


def test_unsigned_request_object_is_refused(jar, clock):
    now = int(clock.now().timestamp())
    claims = {"iss": "jar-rp", "aud": "http://127.0.0.1:8000", "nbf": now, "exp": now + 60}
    refused(by_value(jar, unsigned({**claims, **jar.rp.authorize_params()})))


def test_request_object_signed_by_an_unknown_key_is_refused(jar):
    stranger = new_key(kid=jar.key.kid)  # same kid, other key
    refused(by_value(jar, jar.request_object(jar.rp.authorize_params(), key=stranger)))


def test_request_object_signed_with_hmac_is_refused(jar, clock):
    from joserfc.jwk import OctKey

    now = int(clock.now().timestamp())
    claims = {"iss": "jar-rp", "aud": "http://127.0.0.1:8000", "nbf": now, "exp": now + 60}
    forged = signed({**claims, **jar.rp.authorize_params()}, OctKey.import_key("s" * 40),
                    alg="HS256")  # fmt: skip
    refused(by_value(jar, forged))


def test_inner_client_id_must_be_the_outer_one(jar):
    obj = jar.request_object(jar.rp.authorize_params(client_id="demo-confidential"))
    refused(by_value(jar, obj))
    issued_by_other = jar.request_object(jar.rp.authorize_params(), iss="demo-confidential")
    refused(by_value(jar, issued_by_other))


def test_client_requiring_signed_requests_refuses_plain_ones(client, deps, clock):
    seed(deps, "somchai")
    key = new_key()
    add_client(deps, "signed-rp", jwks=public_jwks(key), require_signed_request_object=True)
    fapi = FapiClient(RP(client, client_id="signed-rp", secret="s" * 40), key, clock.now)
    plain = client.get("/authorize?" + urlencode(fapi.rp.authorize_params()))
    assert plain.status_code == 400
    assert "Location" not in plain.headers
    assert by_value(fapi, fapi.request_object(fapi.rp.authorize_params())).status_code == 200


def test_request_object_inside_a_pushed_request(client, deps, clock):
    seed(deps, "somchai")
    key = new_key()
    add_client(deps, "fapi-rp", secret=None, auth_methods=["private_key_jwt"],
               jwks=public_jwks(key), require_pushed_authorization_requests=True,
               require_signed_request_object=True)  # fmt: skip
    fapi = FapiClient(RP(client, client_id="fapi-rp", secret=None), key, clock.now)
    params = fapi.rp.authorize_params()
    plain = fapi.push(params)
    assert plain.status_code == 400
    assert plain.get_json()["error"] == "invalid_request"
    expired = fapi.push(
        {"client_id": "fapi-rp", "request": fapi.request_object(params, exp=1, nbf=0)}
    )
    assert expired.get_json()["error"] == "invalid_request_object"
    pushed = fapi.push({"client_id": "fapi-rp", "request": fapi.request_object(params)})
    assert pushed.status_code == 201, pushed.get_json()
    page = fapi.authorize_with(pushed.get_json()["request_uri"])
    callback = callback_params(fapi.rp.submit(page, username="somchai", password=PASSWORD))
    assert callback["state"] == params["state"]
