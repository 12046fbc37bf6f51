"""DPoP proofs (RFC 9449) made with a bound phone's key: how the phone's own calls to the IdP
are authenticated, never by a bearer secret alone."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from idp.mfa.errors import AnswerRejectedError
from idp.store.ephemeral import EphemeralStore
from idp.store.ephemeral import Keys

DPOP_TYP = "dpop+jwt"
_MAX_AGE = 60
_JTI_TTL = 120.0


class DpopProofError(AnswerRejectedError):
    """RFC 9449 §7.1: the proof itself is missing, malformed, stale, replayed or for another
    request."""

    code = "invalid_dpop_proof"
    message = "The DPoP proof is not valid for this request."


@dataclass(frozen=True)
class DpopProof:
    thumbprint: str  # RFC 7638 thumbprint of the key that made the proof
    jti: str


def verify_dpop_proof(
    proof: str | None,
    *,
    htm: str,
    htu: str,
    now: datetime,
    store: EphemeralStore,
    keys: Keys,
) -> DpopProof:
    """RFC 9449 §4.3: typed, ES256, a public jwk, method and URL of this request, recent,
    and never seen before (its jti is remembered, across instances, for its lifetime).

    Raises:
        DpopProofError
    """
    if not proof or len(proof) > 4096:
        raise DpopProofError()
    try:
        key, claims = open_self_signed(proof, typ=DPOP_TYP)
    except ValueError as exc:
        raise DpopProofError() from exc
    issued = claims.get("iat")
    jti = claims.get("jti")
    if (
        claims.get("htm") != htm
        or _normalised(claims.get("htu")) != _normalised(htu)
        or not isinstance(issued, int)
        or abs(now.timestamp() - issued) > _MAX_AGE
        or not isinstance(jti, str)
        or not 8 <= len(jti) <= 128
    ):
        raise DpopProofError()
    # SECURITY: a proof is good once; a captured one cannot be replayed.
    if not store.set(keys.dpop_jti(jti), b"1", ttl=_JTI_TTL, only_if_new=True):
        raise DpopProofError()
    return DpopProof(thumbprint=key.thumbprint(), jti=jti)


def open_self_signed(token: str, *, typ: str) -> tuple[ECKey, dict[str, object]]:
    """Verify a compact ES256 JWS of type ``typ`` with the public P-256 ``jwk`` in its own
    header; return that key and the claims. Who holds the key is for the caller to decide.

    Raises:
        ValueError: not such a token, or the signature does not verify.
    """
    try:
        header = jws.extract_compact(token.encode()).protected
        if header.get("typ") != typ or header.get("alg") != "ES256":
            raise ValueError("unexpected header")
        key = ECKey.import_key(header["jwk"])
        if key.is_private or key.curve_name != "P-256":
            raise ValueError("unexpected key")
        claims = json.loads(jws.deserialize_compact(token, key, algorithms=["ES256"]).payload)
    except (JoseError, KeyError, TypeError) as exc:
        raise ValueError("not a verifiable token") from exc
    if not isinstance(claims, dict):
        raise ValueError("claims are not an object")
    return key, claims


def _normalised(uri: object) -> str | None:
    """RFC 9449 §4.3: compare htu without query and fragment, after RFC 3986 §6.2.2/§6.2.3
    normalisation of scheme and host case and of the default port."""
    if not isinstance(uri, str):
        return None
    parts = urlsplit(uri)
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
