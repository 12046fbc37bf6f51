"""verified_claims in our own tokens (OpenID Connect for Identity Assurance 1.0): given to
relying apps that ask, for users whose identity was proofed; acr stays about authentication."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.factories import make_user
from tests.factories import seed
from tests.rp import RP
from tests.rp import callback_params

REQUEST = {
    "id_token": {"verified_claims": {"verification": {"trust_framework": None},
                                     "claims": {"given_name": None, "family_name": None}}},
    "userinfo": {"verified_claims": {"verification": {"trust_framework": None},
                                     "claims": {"given_name#en": None}}},
}  # fmt: skip
EVIDENCE = {
    "provider": "paotang",
    "trust_framework": "th_etda_digital_id",
    "evidence": "document",
    "document_type": "idcard",
    "check_methods": ["data", "bvr", "pvr"],
    "verified_at": "2026-11-25T09:00:00+00:00",
    "ial": "2.3",
    "provider_txn": "t1",
    "verified_names": {
        "given_name": "สมชาย",
        "family_name": "ใจดี",
        "given_name#en": "Somchai",
        "family_name#en": "Jaidee",
    },
}


@pytest.fixture
def rp(client, deps):
    seed(deps)
    with deps.sessions.begin() as session:
        make_user(session, deps, "somchai", identity_evidence=EVIDENCE,
                  identity_proofed_at=datetime(2026, 11, 25, 9, tzinfo=UTC))  # fmt: skip
        make_user(session, deps, "malee", given_name_th="มาลี", family_name_th="ศรีสุข")
    return RP(client)


def id_token_claims(client, token: str) -> dict:
    keys = KeySet.import_key_set(client.get("/jwks.json").get_json())
    return dict(jwt.decode(token, keys).claims)


def test_a_proofed_user_s_verified_claims_are_given_where_asked(rp, client):
    tokens = rp.login_and_exchange(claims=json.dumps(REQUEST))
    verified = id_token_claims(client, tokens["id_token"])["verified_claims"]
    assert verified["verification"]["trust_framework"] == "th_etda_digital_id"
    assert verified["verification"]["assurance_level"] == "2.3"
    assert verified["claims"] == {"given_name": "สมชาย", "family_name": "ใจดี"}
    info = client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert info.get_json()["verified_claims"]["claims"] == {"given_name#en": "Somchai"}
    assert id_token_claims(client, tokens["id_token"])["acr"].endswith("/acr/aal1-pwd")


def test_nothing_is_given_unasked(rp, client):
    tokens = rp.login_and_exchange()
    assert "verified_claims" not in id_token_claims(client, tokens["id_token"])


def test_an_unproofed_user_has_no_verified_claims(rp, client):
    tokens = rp.login_and_exchange("malee", claims=json.dumps(REQUEST))
    assert "verified_claims" not in id_token_claims(client, tokens["id_token"])


@pytest.mark.parametrize("value", ["not json", "[1]", '{"id_token": 5}'])
def test_a_malformed_claims_request_is_invalid_request(rp, value):
    params = callback_params(rp.authorize(claims=value))
    assert params["error"] == "invalid_request"


def test_discovery_announces_identity_assurance(client, deps):
    body = client.get("/.well-known/openid-configuration").get_json()
    assert body["claims_parameter_supported"] is True
    assert body["verified_claims_supported"] is True
    assert body["trust_frameworks_supported"] == ["th_etda_digital_id"]
