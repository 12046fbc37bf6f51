"""Signing keys (rotation with overlap) and token verification (RFC 8725)."""

from __future__ import annotations

import base64
import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from sqlalchemy import select

from idp.oidc import tokens as tokens_module
from idp.oidc.keys import KeyRetirementError
from idp.oidc.keys import KeyRing
from idp.oidc.keys import KeyRotationError
from idp.oidc.keys import ensure_keys
from idp.oidc.keys import retire_expired
from idp.oidc.keys import retire_key
from idp.oidc.keys import rotate_keys
from idp.oidc.models import KeyStatus
from idp.oidc.models import SigningKey
from idp.oidc.tokens import Authentication
from idp.oidc.tokens import InvalidAccessTokenError
from idp.oidc.tokens import TokenSigner

NOW = datetime(2026, 11, 25, tzinfo=UTC)
LATER = NOW + timedelta(seconds=600)  # the next key has been published long enough
ISSUER = "https://login.example.go.th"


class Clock:
    def __init__(self) -> None:
        self.now_value = NOW

    def now(self) -> datetime:
        return self.now_value


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keyring(sessions, cipher, clock) -> KeyRing:
    with sessions.begin() as session:
        ensure_keys(session, cipher, now=NOW)
    return KeyRing(sessions, cipher, clock=clock, overlap=3600)


@pytest.fixture
def signer(keyring) -> TokenSigner:
    return TokenSigner(keyring, issuer=ISSUER, access_ttl=300, id_ttl=300)


def statuses(sessions, alg: str) -> dict[str, str]:
    with sessions() as session:
        rows = session.scalars(select(SigningKey).where(SigningKey.alg == alg)).all()
        return {row.kid: row.status for row in rows}


def test_rotation_signs_with_the_prepublished_key_and_keeps_the_old_one(
    sessions, cipher, keyring, clock
):
    before = statuses(sessions, "ES256")
    next_kid = next(k for k, s in before.items() if s == KeyStatus.NEXT)
    old_kid = next(k for k, s in before.items() if s == KeyStatus.CURRENT)
    with sessions.begin() as session:
        signing = rotate_keys(session, cipher, now=LATER, overlap=3600, algs=("ES256",))
    assert signing == [next_kid]
    after = statuses(sessions, "ES256")
    assert after[next_kid] == KeyStatus.CURRENT
    assert after[old_kid] == KeyStatus.PREVIOUS
    snapshot = keyring.reload()
    published = {key["kid"] for key in json.loads(snapshot.jwks_json)["keys"]}
    assert {next_kid, old_kid} <= published
    assert snapshot.signing["ES256"][0] == next_kid
    clock.now_value = LATER + timedelta(seconds=3601)
    # Unpublished once the overlap has passed, before anything marks it retired.
    assert old_kid not in keyring.reload().jwks_json.decode()
    with sessions.begin() as session:
        retire_expired(session, now=clock.now_value, overlap=3600)
    assert statuses(sessions, "ES256")[old_kid] == KeyStatus.RETIRED


def test_a_second_rotation_keeps_the_first_key_for_its_whole_overlap(sessions, cipher, keyring):
    first = next(k for k, s in statuses(sessions, "ES256").items() if s == KeyStatus.CURRENT)
    with sessions.begin() as session:
        rotate_keys(session, cipher, now=LATER, overlap=3600, algs=("ES256",))
    with sessions.begin() as session:
        later = LATER + timedelta(seconds=10)
        rotate_keys(session, cipher, now=later, overlap=3600, algs=("ES256",), force=True)
    assert first in keyring.reload().jwks_json.decode()


def test_a_leaked_key_is_retired_at_once_but_never_the_signing_one(sessions, cipher, keyring):
    keys = statuses(sessions, "ES256")
    current = next(k for k, s in keys.items() if s == KeyStatus.CURRENT)
    with sessions.begin() as session, pytest.raises(KeyRetirementError):
        retire_key(session, cipher, current, now=LATER)
    with sessions.begin() as session:
        rotate_keys(session, cipher, now=LATER, overlap=3600, algs=("ES256",))
    with sessions.begin() as session:
        retire_key(session, cipher, current, now=LATER)
    assert current not in keyring.reload().jwks_json.decode()


def test_token_signed_before_rotation_still_verifies_during_the_overlap(
    sessions, cipher, keyring, signer
):
    token = signer.issue_access_token(client_id="c", scope="s", now=NOW, auth=None).token
    with sessions.begin() as session:
        rotate_keys(session, cipher, now=LATER, overlap=3600, algs=("ES256", "RS256"))
    keyring.reload()
    assert signer.verify_access_token(token, now=NOW + timedelta(seconds=10))["client_id"] == "c"


def test_user_access_token_carries_the_authentication(signer):
    auth = Authentication(sub="u1", sid="s1", auth_time=NOW, acr="acr", amr=("pwd",))
    issued = signer.issue_access_token(client_id="c", scope="openid", now=NOW, auth=auth)
    claims = signer.verify_access_token(issued.token, now=NOW)
    assert (claims["sub"], claims["sid"], claims["amr"]) == ("u1", "s1", ["pwd"])
    assert issued.expires_at == NOW + timedelta(seconds=300)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_unsigned_token_is_refused(signer):
    forged = f"{_b64({'alg': 'none', 'typ': 'at+jwt'})}.{_b64({'sub': 'x'})}."
    with pytest.raises(InvalidAccessTokenError):
        signer.verify_access_token(forged, now=NOW)


def test_hmac_token_keyed_with_a_public_key_is_refused(signer, keyring):
    # RFC 8725 §2.1: the algorithm confusion attack.
    public = json.loads(keyring.snapshot.jwks_json)["keys"][0]
    key = OctKey.import_key(json.dumps(public))
    claims = {"iss": ISSUER, "sub": "x", "client_id": "c", "jti": "j", "scope": "s",
              "iat": int(NOW.timestamp()), "exp": int(NOW.timestamp()) + 60}  # fmt: skip
    token = jwt.encode({"alg": "HS256", "typ": "at+jwt"}, claims, key, algorithms=["HS256"])
    with pytest.raises(InvalidAccessTokenError):
        signer.verify_access_token(token, now=NOW)


def test_other_issuer_expiry_and_id_tokens_are_refused(keyring, signer):
    issued = signer.issue_access_token(client_id="c", scope="s", now=NOW, auth=None)
    with pytest.raises(InvalidAccessTokenError):
        signer.verify_access_token(issued.token, now=NOW + timedelta(seconds=300))
    other = TokenSigner(keyring, issuer="https://other.example", access_ttl=300, id_ttl=300)
    with pytest.raises(InvalidAccessTokenError):
        signer.verify_access_token(
            other.issue_access_token(client_id="c", scope="s", now=NOW, auth=None).token, now=NOW
        )
    auth = Authentication(sub="u", sid=None, auth_time=NOW, acr="a", amr=("pwd",))
    id_token = signer.issue_id_token(client_id="c", auth=auth, now=NOW, nonce=None,
                                     access_token=None, claims={}, alg="ES256")  # fmt: skip
    with pytest.raises(InvalidAccessTokenError):
        signer.verify_access_token(id_token, now=NOW)


def test_rotation_waits_until_the_next_key_has_been_published_long_enough(sessions, cipher):
    with sessions.begin() as session:
        ensure_keys(session, cipher, now=NOW)
    with sessions.begin() as session, pytest.raises(KeyRotationError):
        rotate_keys(session, cipher, now=NOW + timedelta(seconds=60), overlap=3600, algs=("ES256",))


def test_retiring_the_next_key_publishes_a_fresh_one(sessions, cipher, keyring):
    next_kid = next(k for k, s in statuses(sessions, "ES256").items() if s == KeyStatus.NEXT)
    with sessions.begin() as session:
        retire_key(session, cipher, next_kid, now=LATER)
    after = statuses(sessions, "ES256")
    assert after[next_kid] == KeyStatus.RETIRED
    assert list(after.values()).count(KeyStatus.NEXT) == 1
    with sessions.begin() as session, pytest.raises(KeyRotationError):
        rotate_keys(
            session, cipher, now=LATER + timedelta(seconds=1), overlap=3600, algs=("ES256",)
        )


def test_verified_tokens_are_remembered_by_hash_most_recently_used_first(signer, monkeypatch):
    monkeypatch.setattr("idp.oidc.tokens._VERIFIED_CACHE_SIZE", 2)
    calls: list[str] = []
    real = tokens_module.decode_verified

    def counting(token, keys, *, expected_typ):
        calls.append(token)
        return real(token, keys, expected_typ=expected_typ)

    monkeypatch.setattr(tokens_module, "decode_verified", counting)
    first, second, third = (
        signer.issue_access_token(client_id="c", scope=f"s{n}", now=NOW, auth=None).token
        for n in range(3)
    )
    for token in (first, second, first, third):  # third pushes out second, used longest ago
        signer.verify_access_token(token, now=NOW)
    assert calls == [first, second, third]
    assert first not in str(list(signer._verified))  # kept by hash, not as the token
    signer.verify_access_token(first, now=NOW)
    signer.verify_access_token(second, now=NOW)
    assert calls == [first, second, third, second]
    # A remembered token is still refused once it has expired.
    with pytest.raises(InvalidAccessTokenError):
        signer.verify_access_token(first, now=NOW + timedelta(seconds=300))
