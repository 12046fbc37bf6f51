"""The checks of a DPoP proof (RFC 9449) shared by the phone's calls and OAuth."""

from __future__ import annotations

import json
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey
from joserfc.jwk import RSAKey

from idp.dpop import NONCE_WINDOW
from idp.dpop import DpopNonceError
from idp.dpop import DpopNonces
from idp.dpop import DpopProofError
from idp.dpop import normalised_uri
from idp.dpop import token_hash
from idp.dpop import verify_dpop_proof
from idp.store.ephemeral import MemoryStore
from idp.store.secrets import DataCipher

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
HTU = "https://idp.example/token"


def proof(key: Any, alg: str = "ES256", **claims: Any) -> str:
    body = {"htm": "POST", "htu": HTU, "iat": int(NOW.timestamp()), "jti": "j" * 16, **claims}
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": dict(key.as_dict(private=False))}
    return jws.serialize_compact(header, json.dumps(body), key, algorithms=[alg])


def verify(value: str, **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "htm": "POST", "htu": HTU, "now": NOW, "store": MemoryStore(),
        "replay_key": lambda jkt, jti: f"{jkt}:{jti}", "algorithms": ("ES256", "PS256"),
    }  # fmt: skip
    arguments.update(overrides)
    return verify_dpop_proof(value, **arguments)


def test_ath_is_the_rfc_9449_example_hash():
    # RFC 9449 §7.1, the example access token and its "ath".
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    assert token_hash(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


def test_a_proof_names_its_keys_thumbprint_and_is_good_once():
    key = ECKey.generate_key("P-256")
    store = MemoryStore()
    value = proof(key)
    assert verify(value, store=store).thumbprint == key.thumbprint()
    with pytest.raises(DpopProofError):
        verify(value, store=store)


@pytest.mark.parametrize(
    ("url", "same"),
    [
        ("HTTPS://IDP.example:443/token", True),
        ("https://idp.example/token?x=1#f", True),
        ("https://idp.example:8443/token", False),
        ("http://idp.example/token", False),
        ("https://idp.example/token/", False),
    ],
)
def test_htu_is_compared_after_normalisation(url, same):
    assert (normalised_uri(url) == normalised_uri(HTU)) is same


@pytest.mark.filterwarnings("ignore:Key size")
@pytest.mark.parametrize(
    ("make_key", "alg"),
    [
        (lambda: ECKey.generate_key("P-384"), "ES384"),
        (lambda: RSAKey.generate_key(1024), "PS256"),
        (lambda: RSAKey.generate_key(2048), "RS256"),
    ],
)
def test_only_the_offered_algorithms_and_key_sizes_are_accepted(make_key, alg):
    with pytest.raises(DpopProofError):
        verify(proof(make_key(), alg))


def test_a_proof_with_an_access_token_must_carry_its_hash():
    key = ECKey.generate_key("P-256")
    assert verify(proof(key, ath=token_hash("token")), access_token="token")
    with pytest.raises(DpopProofError):
        verify(proof(key, jti="k" * 16, ath=token_hash("other")), access_token="token")
    with pytest.raises(DpopProofError):
        verify(proof(key, jti="l" * 16), access_token="token")


def test_nonces_are_good_for_their_window_and_the_next_only(cipher: DataCipher):
    nonces = DpopNonces(lambda v: cipher.keyed_hash(v, purpose="dpop_nonce"))
    nonce = nonces.current(NOW)
    assert nonces.is_valid(nonce, NOW)
    assert nonces.is_valid(nonce, NOW + timedelta(seconds=NONCE_WINDOW))
    assert not nonces.is_valid(nonce, NOW + timedelta(seconds=2 * NONCE_WINDOW))
    other = DpopNonces(lambda v: cipher.keyed_hash(v, purpose="another purpose"))
    assert not other.is_valid(nonce, NOW)
    key = ECKey.generate_key("P-256")
    with pytest.raises(DpopNonceError):
        verify(proof(key), nonces=nonces)
    assert verify(proof(key, nonce=nonce), nonces=nonces)


@pytest.mark.parametrize(
    "claims",
    [{"iat": 10**400}, {"iat": -(10**400)}, {"htu": "https://[::1/token"}, {"htu": "https://i:x/"}],
)
def test_a_crafted_proof_is_refused_as_a_proof_error(claims):
    # Self-signed by anyone: an absurd iat or URL must be a refusal, never another exception.
    with pytest.raises(DpopProofError):
        verify(proof(ECKey.generate_key("P-256"), **claims), algorithms=("ES256",))


class _ForgetfulStore(MemoryStore):
    """A store whose markers set before ``lost_at`` are out of sight (a Redis outage)."""

    def __init__(self, lost_at: datetime) -> None:
        super().__init__()
        self.lost_at = lost_at

    def markers_unseen_before(self) -> datetime | None:
        return self.lost_at


def test_while_markers_are_out_of_sight_only_proofs_made_since_are_accepted():
    key = ECKey.generate_key("P-256")
    store = _ForgetfulStore(NOW)
    with pytest.raises(DpopProofError):
        verify(proof(key, iat=int(NOW.timestamp()) - 1), store=store)
    assert verify(proof(key, jti="k" * 16), store=store).thumbprint == key.thumbprint()
