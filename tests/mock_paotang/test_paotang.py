"""The mock Paotang as a product part: an OpenID provider for identity assurance that refuses
what the real one refuses, and misbehaves on request."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from mock_paotang import create_app
from mock_paotang.settings import PaotangSettings
from tests.rp import basic
from tests.rp import pkce_pair

ISSUER = "http://127.0.0.1:8101"
CLIENT = "softtoken-idp"
SECRET = "paotang-demo-client-secret"
CALLBACK = "http://127.0.0.1:8000/enrol/proofing/callback"
NAPA = {"citizen_id": "3-5011-00456-78-3", "laser_code": "NP4-5678901-23", "face": "match"}
CLAIMS = {
    "id_token": {
        "verified_claims": {
            "verification": {"trust_framework": None, "evidence": None},
            "claims": {"given_name": None, "family_name": None, "birthdate": None},
        }
    }
}


@pytest.fixture
def settings(tmp_path) -> PaotangSettings:
    return PaotangSettings(key_file=str(tmp_path / "key.json"), test_control=True)


@pytest.fixture
def client(settings):
    return create_app(settings).test_client()


class Citizen:
    """Plays the citizen in the Paotang app page."""

    def __init__(self, client) -> None:
        self.client = client
        self.verifier, self.challenge = pkce_pair()

    def open(self, **overrides):
        params = {
            "response_type": "code",
            "client_id": CLIENT,
            "redirect_uri": CALLBACK,
            "scope": "openid",
            "state": "st-1",
            "nonce": "n-1",
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
            "claims": json.dumps(CLAIMS),
        }
        params.update(overrides)
        return self.client.get("/authorize?" + urlencode({k: v for k, v in params.items() if v}))

    def submit(self, page, **fields):
        tx = re.search(r'name="tx" value="([^"]+)"', page.get_data(as_text=True)).group(1)
        data = {"tx": tx, "consent": "yes", "action": "verify", **fields}
        return self.client.post("/authorize/verify", data=data)


def redirect_params(response) -> dict[str, str]:
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith(CALLBACK)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def refusal_code(response) -> str:
    match = re.search(r'data-code="([a-z_]+)"', response.get_data(as_text=True))
    assert match, response.get_data(as_text=True)[:400]
    return match.group(1)


def test_discovery_announces_identity_assurance(client):
    body = client.get("/.well-known/openid-configuration").get_json()
    assert body["issuer"] == ISSUER
    assert body["verified_claims_supported"] is True
    assert body["claims_parameter_supported"] is True
    assert body["code_challenge_methods_supported"] == ["S256"]


def test_verified_citizen_yields_an_id_token_with_verified_claims(client):
    citizen = Citizen(client)
    params = redirect_params(citizen.submit(citizen.open(), **NAPA))
    assert params["state"] == "st-1"
    assert params["iss"] == ISSUER
    response = client.post(
        "/token",
        data={"grant_type": "authorization_code", "code": params["code"],
              "redirect_uri": CALLBACK, "code_verifier": citizen.verifier},
        headers=basic(CLIENT, SECRET),
    )  # fmt: skip
    assert response.status_code == 200
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    claims = jwt.decode(response.get_json()["id_token"], keys, algorithms=["ES256"]).claims
    assert claims["iss"] == ISSUER
    assert claims["aud"] == CLIENT
    assert claims["nonce"] == "n-1"
    verified = claims["verified_claims"]
    assert verified["verification"]["trust_framework"] == "th_etda_digital_id"
    [evidence] = verified["verification"]["evidence"]
    assert evidence["document_details"]["personal_number"] == "3501100456783"
    assert {c["check_method"] for c in evidence["check_details"]} == {"data", "bvr", "pvr"}
    assert verified["claims"] == {
        "given_name": "นภา", "family_name": "ใหม่ทอง", "birthdate": "1976-01-31",
    }  # fmt: skip
    assert "3501100456783" not in claims["sub"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"citizen_id": "3501100456784"}, "bad_check_digit"),
        ({"laser_code": "NP45678901"}, "bad_laser_format"),
        ({"citizen_id": "1234567890121"}, "unknown_citizen"),
        ({"laser_code": "NP4-5678901-24"}, "laser_mismatch"),
        ({"citizen_id": "3846563212236", "laser_code": "SW1212343456"}, "card_expired"),
        ({"face": "mismatch"}, "face_mismatch"),
        ({"consent": ""}, "consent_required"),
    ],
)
def test_each_refusal_has_its_own_message(client, fields, code):
    citizen = Citizen(client)
    response = citizen.submit(citizen.open(), **{**NAPA, **fields})
    assert response.status_code == 200
    assert refusal_code(response) == code


def test_three_refusals_end_the_request_with_access_denied(client):
    citizen = Citizen(client)
    page = citizen.open()
    for _ in range(2):
        page = citizen.submit(page, **{**NAPA, "face": "mismatch"})
        assert refusal_code(page) == "face_mismatch"
    params = redirect_params(citizen.submit(page, **{**NAPA, "face": "mismatch"}))
    assert params["error"] == "access_denied"
    assert "face_mismatch" in params["error_description"]


def test_cancel_is_access_denied(client):
    citizen = Citizen(client)
    params = redirect_params(citizen.submit(citizen.open(), action="cancel"))
    assert params == {"error": "access_denied", "error_description": "The citizen cancelled.",
                      "iss": ISSUER, "state": "st-1"}  # fmt: skip


def test_unregistered_redirect_is_never_followed(client):
    response = Citizen(client).open(redirect_uri="http://evil.example/cb")
    assert response.status_code == 400
    assert "Location" not in response.headers


def test_pkce_is_required(client):
    params = redirect_params(Citizen(client).open(code_challenge_method="plain"))
    assert params["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"code_verifier": "x" * 43}, 400, "invalid_grant"),
        ({"redirect_uri": "http://127.0.0.1:8000/other"}, 400, "invalid_grant"),
        ({"secret": "wrong"}, 401, "invalid_client"),
    ],
)
def test_token_requests_that_must_fail(client, change, status, error):
    citizen = Citizen(client)
    params = redirect_params(citizen.submit(citizen.open(), **NAPA))
    data = {"grant_type": "authorization_code", "code": params["code"],
            "redirect_uri": CALLBACK, "code_verifier": citizen.verifier}  # fmt: skip
    secret = change.pop("secret", SECRET)
    data.update(change)
    response = client.post("/token", data=data, headers=basic(CLIENT, secret))
    assert response.status_code == status
    assert response.get_json()["error"] == error


def test_a_code_is_redeemed_once(client):
    citizen = Citizen(client)
    params = redirect_params(citizen.submit(citizen.open(), **NAPA))
    data = {"grant_type": "authorization_code", "code": params["code"],
            "redirect_uri": CALLBACK, "code_verifier": citizen.verifier}  # fmt: skip
    assert client.post("/token", data=data, headers=basic(CLIENT, SECRET)).status_code == 200
    again = client.post("/token", data=data, headers=basic(CLIENT, SECRET))
    assert again.get_json()["error"] == "invalid_grant"


def test_outage_answers_503_everywhere_but_health(client):
    client.post("/_knobs", json={"outage": True})
    page = Citizen(client).open()
    assert page.status_code == 503
    assert 'id="unavailable"' in page.get_data(as_text=True)
    assert client.post("/token", data={}).status_code == 503
    assert client.get("/jwks.json").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_forced_failure_refuses_a_good_citizen(client):
    client.post("/_knobs", json={"force_failure": "face_mismatch"})
    citizen = Citizen(client)
    assert refusal_code(citizen.submit(citizen.open(), **NAPA)) == "face_mismatch"


def test_registry_down_sends_the_citizen_back_to_try_later(client):
    client.post("/_knobs", json={"force_failure": "dopa_unavailable"})
    citizen = Citizen(client)
    params = redirect_params(citizen.submit(citizen.open(), **NAPA))
    assert params["error"] == "temporarily_unavailable"


def test_only_the_claims_asked_for_are_given(client):
    request = {"id_token": {"verified_claims": {"verification": {"trust_framework": None},
                                                "claims": {"family_name": None}}}}  # fmt: skip
    citizen = Citizen(client)
    params = redirect_params(citizen.submit(citizen.open(claims=json.dumps(request)), **NAPA))
    response = client.post(
        "/token",
        data={"grant_type": "authorization_code", "code": params["code"],
              "redirect_uri": CALLBACK, "code_verifier": citizen.verifier},
        headers=basic(CLIENT, SECRET),
    )  # fmt: skip
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    claims = jwt.decode(response.get_json()["id_token"], keys).claims
    assert claims["verified_claims"]["claims"] == {"family_name": "ใหม่ทอง"}


def test_a_malformed_claims_request_is_refused_at_once(client):
    params = redirect_params(Citizen(client).open(claims='{"id_token": "x"}'))
    assert params["error"] == "invalid_request"


def test_knobs_are_closed_unless_test_control_is_on(tmp_path):
    closed = create_app(PaotangSettings(key_file=str(tmp_path / "k.json"))).test_client()
    assert closed.post("/_knobs", json={"outage": True}).status_code == 404


def test_the_signing_key_survives_a_restart(settings):
    first = create_app(settings).test_client().get("/jwks.json").get_json()
    second = create_app(settings).test_client().get("/jwks.json").get_json()
    assert first == second
