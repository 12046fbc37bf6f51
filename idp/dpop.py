"""DPoP proofs (RFC 9449): the checks every receiver of a proof makes, whoever holds the key.

Shared by the phone's own calls (``idp.mfa.dpop``, ES256 keys of bound phones) and by OAuth
(``idp.oidc.dpop``: the token endpoint, userinfo and the admin API). What the key is *for*
(a bound phone, a token's ``cnf.jkt``) is the caller's business.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from joserfc.jwk import RSAKey

from idp.errors import IdpError
from idp.store.ephemeral import EphemeralStore

DPOP_TYP = "dpop+jwt"
# RFC 9449 §11.1: how far a proof's iat may be from our clock, either way.
MAX_AGE = 60
# A jti is remembered as long as a proof carrying it could still be accepted: first seen up to
# MAX_AGE before its iat, accepted until MAX_AGE after it, in whole seconds (hence the slack).
JTI_TTL = float(2 * MAX_AGE + 2)
MAX_PROOF_LENGTH = 8192
# RFC 9449 §8: a server-provided nonce is good for the window it was made in and the next.
NONCE_WINDOW = 300
_MIN_RSA_BITS = 2048


class _ProofRegistry(jws.JWSRegistry):
    # The header carries the public key: an RSA one (PS256) is larger than joserfc's default
    # 512-byte header allows (a 4096-bit modulus alone is 683 characters).
    max_header_length = 2048


class DpopProofError(IdpError):
    """RFC 9449 §7.1: the proof is missing, malformed, stale, replayed or for another
    request (or, at a resource, for another token)."""

    code = "invalid_dpop_proof"
    message = "The DPoP proof is not valid for this request."


class DpopNonceError(DpopProofError):
    """RFC 9449 §8, §9: the proof lacks the nonce this server provides, or carries an old one."""

    code = "use_dpop_nonce"
    message = "Use the DPoP nonce this server provides."


@dataclass(frozen=True)
class DpopProof:
    thumbprint: str  # RFC 7638 thumbprint of the key that made the proof ("jkt")
    jti: str


class DpopNonces:
    """Server-provided nonces without server state (RFC 9449 §8): an HMAC of the current time
    window under a key every instance shares, so any instance accepts any instance's nonce."""

    def __init__(self, mac: Callable[[str], str]) -> None:
        # ``mac`` is a keyed hash (HMAC-SHA256, hex) reserved for this purpose.
        self._mac = mac

    def current(self, now: datetime) -> str:
        return self._for_window(int(now.timestamp()) // NONCE_WINDOW)

    def is_valid(self, nonce: object, now: datetime) -> bool:
        if not isinstance(nonce, str) or len(nonce) > 64:
            return False
        window = int(now.timestamp()) // NONCE_WINDOW
        return any(hmac.compare_digest(nonce, self._for_window(w)) for w in (window, window - 1))

    def _for_window(self, window: int) -> str:
        return self._mac(f"dpop-nonce:{window}")[:32]


def verify_dpop_proof(
    proof: str | None,
    *,
    htm: str,
    htu: str,
    now: datetime,
    store: EphemeralStore,
    replay_key: Callable[[str, str], str],
    algorithms: Sequence[str] = ("ES256",),
    access_token: str | None = None,
    nonces: DpopNonces | None = None,
) -> DpopProof:
    """RFC 9449 §4.3: a typed proof signed with one of ``algorithms`` by the public ``jwk`` in
    its header, for this method and URL, recent, with ``ath`` when it goes with an access token
    (§4.3 step 11), with a nonce of ours when ``nonces`` are required, and never seen before:
    its jti is remembered across instances (``replay_key(thumbprint, jti)``) for its lifetime.

    Raises:
        DpopNonceError: the proof is good but lacks a current nonce of ours.
        DpopProofError: anything else.
    """
    if not proof or len(proof) > MAX_PROOF_LENGTH:
        raise DpopProofError()
    try:
        key, claims = open_signed_with_own_key(proof, typ=DPOP_TYP, algorithms=algorithms)
    except ValueError as exc:
        raise DpopProofError() from exc
    issued = claims.get("iat")
    jti = claims.get("jti")
    if (
        claims.get("htm") != htm
        or normalised_uri(claims.get("htu")) != normalised_uri(htu)
        or not isinstance(issued, int)
        or isinstance(issued, bool)
        # In integers: a float conversion of an absurd iat would overflow (a 500).
        or abs(int(now.timestamp()) - issued) > MAX_AGE
        or not isinstance(jti, str)
        or not 8 <= len(jti) <= 128
    ):
        raise DpopProofError()
    # RFC 9449 §4.3 step 11 / §7: the proof names the token it goes with, so a proof made
    # for one token cannot carry another.
    if access_token is not None and claims.get("ath") != token_hash(access_token):
        raise DpopProofError()
    if nonces is not None and not nonces.is_valid(claims.get("nonce"), now):
        raise DpopNonceError()
    thumbprint = key.thumbprint()
    # SECURITY: a proof is good once; a captured one cannot be replayed. Checked last, so a
    # proof refused above does not use up its jti.
    if not store.set(replay_key(thumbprint, jti), b"1", ttl=JTI_TTL, only_if_new=True):
        raise DpopProofError()
    # SECURITY: while Redis is away, the jtis it holds are out of sight: a proof made in a
    # second before the outage was found may have been used then, so it is refused (the
    # client's next proof is not). Asked after the marker is set: setting it may find the
    # outage. Whole seconds, as iat: a proof of the very second the outage was found passes.
    lost_at = store.markers_unseen_before()
    if lost_at is not None and issued < int(lost_at.timestamp()):
        raise DpopProofError()
    return DpopProof(thumbprint=thumbprint, jti=jti)


def open_signed_with_own_key(
    token: str, *, typ: str, algorithms: Sequence[str]
) -> tuple[ECKey | RSAKey, dict[str, Any]]:
    """Verify a compact JWS of type ``typ`` signed with one of ``algorithms`` (ES256: P-256;
    PS256: RSA of 2048 bits or more) by the public ``jwk`` in its own header; return that key
    and the claims. Who holds the key is for the caller to decide.

    Raises:
        ValueError: not such a token, or the signature does not verify.
    """
    try:
        registry = _ProofRegistry(algorithms=list(algorithms))
        header = jws.extract_compact(token.encode(), registry=registry).protected
        alg = header.get("alg")
        if header.get("typ") != typ or not isinstance(alg, str) or alg not in algorithms:
            raise ValueError("unexpected header")
        key = _public_key(header["jwk"], alg)
        claims = json.loads(
            jws.deserialize_compact(token, key, algorithms=[alg], registry=registry).payload
        )
    except (JoseError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError("not a verifiable token") from exc
    if not isinstance(claims, dict):
        raise ValueError("claims are not an object")
    return key, claims


def _public_key(jwk: Any, alg: str) -> ECKey | RSAKey:
    if not isinstance(jwk, dict):
        raise ValueError("jwk is not an object")
    # RFC 9449 §4.3 step 6: the header's key must be public, never a private one.
    if alg == "ES256":
        ec = ECKey.import_key(jwk)
        if ec.is_private or ec.curve_name != "P-256":
            raise ValueError("unexpected key")
        return ec
    if alg == "PS256":
        modulus = jwk.get("n")
        # Too small a modulus is refused before the import (which would warn about it).
        if not isinstance(modulus, str) or len(modulus) * 6 < _MIN_RSA_BITS:
            raise ValueError("unexpected key")
        rsa = RSAKey.import_key(jwk)
        if rsa.is_private or rsa.public_key.key_size < _MIN_RSA_BITS:
            raise ValueError("unexpected key")
        return rsa
    raise ValueError("unexpected algorithm")


def token_hash(access_token: str) -> str:
    """RFC 9449 §4.2 ``ath``: base64url SHA-256 of the access token's ASCII form."""
    digest = hashlib.sha256(access_token.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def normalised_uri(uri: object) -> str | None:
    """RFC 9449 §4.3: compare htu without query and fragment, after RFC 3986 §6.2.2/§6.2.3
    normalisation of scheme and host case and of the default port."""
    if not isinstance(uri, str):
        return None
    try:
        parts = urlsplit(uri)
    except ValueError:  # e.g. an unclosed IPv6 bracket: no URL of ours
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        return None
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        netloc = host
    else:
        netloc = f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path or '/'}"
