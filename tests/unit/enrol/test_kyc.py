"""The IdP believes a Paotang answer only when everything about it is right."""

from __future__ import annotations

import time
from datetime import UTC
from datetime import datetime

import pytest

from idp.enrol.errors import KycResponseInvalidError
from idp.enrol.kyc import HttpKycProvider
from mock_paotang.provider import SigningKey

ISSUER = "http://127.0.0.1:8101"


@pytest.fixture
def paotang_key(tmp_path) -> SigningKey:
    return SigningKey(str(tmp_path / "paotang.json"))


@pytest.fixture
def provider(paotang_key, monkeypatch) -> HttpKycProvider:
    kyc = HttpKycProvider(issuer=ISSUER, client_id="softtoken-idp", client_secret="s" * 32,
                          redirect_uri="http://127.0.0.1:8000/cb", timeout=1,
                          trust_framework="th_etda_digital_id")  # fmt: skip
    monkeypatch.setattr(kyc, "_keys", lambda refresh: paotang_key.public_set)
    return kyc


def claims(verification: dict | None = None, **changes) -> dict:
    now = int(time.time())
    when = datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")
    body = {
        "iss": ISSUER,
        "aud": "softtoken-idp",
        "sub": "p1",
        "nonce": "n1",
        "iat": now,
        "exp": now + 300,
        "txn": "t1",
        "verified_claims": {
            "verification": {
                "trust_framework": "th_etda_digital_id",
                "time": when,
                "evidence": [
                    {
                        "type": "document",
                        "check_details": [{"check_method": "data"}, {"check_method": "bvr"}],
                        "document_details": {"type": "idcard", "personal_number": "3501100456783"},
                    }
                ],
            },
            "claims": {"given_name": "นภา", "family_name": "ใหม่ทอง", "birthdate": "1976-01-31"},
        },
    }
    body.update(changes)
    if verification:
        body["verified_claims"]["verification"].update(verification)
    return {k: v for k, v in body.items() if v is not None}


def test_a_good_answer_is_read(provider, paotang_key):
    identity = provider._verify(paotang_key.sign(claims()), nonce="n1")
    assert identity.citizen_id == "3501100456783"
    assert identity.given_name_th == "นภา"
    assert identity.check_methods == ("data", "bvr")


@pytest.mark.parametrize(
    "change",
    [
        {"iss": "http://evil.example"},
        {"aud": "someone-else"},
        {"nonce": "an-old-nonce"},
        {"iat": int(time.time()) - 3600, "exp": int(time.time()) + 60},
        {"exp": int(time.time()) - 3600},
        {"verified_claims": None},
        {"verified_claims": {"verification": {"evidence": []}, "claims": {}}},
        {"aud": ["softtoken-idp", "other-rp"]},
        {"azp": "other-rp"},
        {"sub": None},
    ],
)
def test_a_wrong_answer_is_refused(provider, paotang_key, change):
    with pytest.raises(KycResponseInvalidError):
        provider._verify(paotang_key.sign(claims(**change)), nonce="n1")


def test_a_signature_by_another_key_is_refused(provider, tmp_path):
    rogue = SigningKey(str(tmp_path / "rogue.json"))
    with pytest.raises(KycResponseInvalidError):
        provider._verify(rogue.sign(claims()), nonce="n1")


def test_a_tampered_token_is_refused(provider, paotang_key):
    token = paotang_key.sign(claims())
    header, _body, signature = token.split(".")
    forged = paotang_key.sign(claims(sub="p2")).split(".")[1]
    with pytest.raises(KycResponseInvalidError):
        provider._verify(f"{header}.{forged}.{signature}", nonce="n1")


@pytest.mark.parametrize(
    "verification",
    [
        {"trust_framework": "none_at_all"},
        {"time": "2019-01-01T00:00:00Z"},
        {"evidence": [{"type": "document", "check_details": [{"check_method": "data"}],
                       "document_details": {"personal_number": "3501100456783"}}]},
        {"evidence": ["document"]},
    ],
)  # fmt: skip
def test_a_verification_we_do_not_rely_on_is_refused(provider, paotang_key, verification):
    with pytest.raises(KycResponseInvalidError):
        provider._verify(paotang_key.sign(claims(verification)), nonce="n1")
