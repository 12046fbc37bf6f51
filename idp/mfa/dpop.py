"""DPoP proofs (RFC 9449) made with a bound phone's key: how the phone's own calls to the IdP
are authenticated, never by a bearer secret alone."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from idp.mfa.errors import AnswerRejectedError
from idp.store.ephemeral import EphemeralStore
from idp.store.ephemeral import Keys

DPOP_TYP = "dpop+jwt"
_MAX_AGE = 60
_JTI_TTL = 120.0


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
        AnswerRejectedError
    """
    if not proof or len(proof) > 4096:
        raise AnswerRejectedError()
    try:
        header = jws.extract_compact(proof.encode()).protected
        if header.get("typ") != DPOP_TYP or header.get("alg") != "ES256":
            raise AnswerRejectedError()
        key = ECKey.import_key(header["jwk"])
        if key.is_private or key.curve_name != "P-256":
            raise AnswerRejectedError()
        claims = json.loads(jws.deserialize_compact(proof, key, algorithms=["ES256"]).payload)
    except (JoseError, KeyError, TypeError, ValueError) as exc:
        raise AnswerRejectedError() from exc
    if not isinstance(claims, dict):
        raise AnswerRejectedError()
    issued = claims.get("iat")
    jti = claims.get("jti")
    if (
        claims.get("htm") != htm
        or claims.get("htu") != htu
        or not isinstance(issued, int)
        or abs(now.timestamp() - issued) > _MAX_AGE
        or not isinstance(jti, str)
        or not 8 <= len(jti) <= 128
    ):
        raise AnswerRejectedError()
    # SECURITY: a proof is good once; a captured one cannot be replayed.
    if not store.set(keys.dpop_jti(jti), b"1", ttl=_JTI_TTL, only_if_new=True):
        raise AnswerRejectedError()
    return DpopProof(thumbprint=key.thumbprint(), jti=jti)
