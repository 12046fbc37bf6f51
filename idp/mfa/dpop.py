"""DPoP proofs (RFC 9449) made with a bound phone's key: how the phone's own calls to the IdP
are authenticated, never by a bearer secret alone. The checks themselves are ``idp.dpop``'s;
a phone's key is always ES256 on P-256."""

from __future__ import annotations

from datetime import datetime

from joserfc.jwk import ECKey

from idp import dpop
from idp.dpop import DPOP_TYP as DPOP_TYP
from idp.dpop import DpopProof as DpopProof
from idp.mfa.errors import AnswerRejectedError
from idp.store.ephemeral import EphemeralStore
from idp.store.ephemeral import Keys

_MAX_PROOF_LENGTH = 4096
_PHONE_ALGORITHMS = ("ES256",)


class DpopProofError(AnswerRejectedError):
    """RFC 9449 §7.1: the proof itself is missing, malformed, stale, replayed or for another
    request."""

    code = "invalid_dpop_proof"
    message = "The DPoP proof is not valid for this request."


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
    if proof is not None and len(proof) > _MAX_PROOF_LENGTH:
        raise DpopProofError()
    try:
        return dpop.verify_dpop_proof(
            proof,
            htm=htm,
            htu=htu,
            now=now,
            store=store,
            replay_key=lambda _thumbprint, jti: keys.dpop_jti(jti),
            algorithms=_PHONE_ALGORITHMS,
        )
    except dpop.DpopProofError as exc:
        raise DpopProofError() from exc


def open_self_signed(token: str, *, typ: str) -> tuple[ECKey, dict[str, object]]:
    """Verify a compact ES256 JWS of type ``typ`` with the public P-256 ``jwk`` in its own
    header; return that key and the claims. Who holds the key is for the caller to decide.

    Raises:
        ValueError: not such a token, or the signature does not verify.
    """
    key, claims = dpop.open_signed_with_own_key(token, typ=typ, algorithms=_PHONE_ALGORITHMS)
    if not isinstance(key, ECKey):  # ES256 keys are EC keys; this only narrows the type
        raise ValueError("unexpected key")
    return key, claims
