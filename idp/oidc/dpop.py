"""DPoP-bound access tokens (RFC 9449): proofs at the token endpoint, the key binding of codes,
grants and tokens, and the checks a resource (userinfo, the admin API) makes.

Decisions the RFC leaves open:
- ES256 and PS256 proofs (§5.1 ``dpop_signing_alg_values_supported``); no EdDSA, which
  RFC 9864 deprecates for the fully-specified Ed25519.
- Server nonces (§8, §9) only when ``IDP_DPOP_NONCE_REQUIRED`` is on (FAPI 2.0 does not ask
  for them): then every proof must carry one. They are stateless (``idp.dpop.DpopNonces``).
- Public clients' refresh tokens are bound to the key of the code exchange (§5); confidential
  clients' are not (their refresh needs the client's credentials), but each new access token
  is bound to the proof sent with the refresh.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import OAuth2Error

from idp.deps import Deps
from idp.dpop import DpopNonceError
from idp.dpop import DpopNonces
from idp.dpop import DpopProof
from idp.dpop import DpopProofError
from idp.dpop import verify_dpop_proof
from idp.oidc.tokens import InvalidAccessTokenError
from idp.store.ephemeral import EphemeralStore
from idp.store.ephemeral import Keys
from idp.store.secrets import DataCipher

DPOP_SIGNING_ALGS = ("ES256", "PS256")
DPOP_TOKEN_TYPE = "DPoP"
# RFC 7638 thumbprint with SHA-256: 32 bytes, base64url without padding.
_JKT = re.compile(r"[A-Za-z0-9_-]{43}")


class InvalidDpopProofError(OAuth2Error):
    """RFC 9449 §5: the token request's proof is missing where one is required, invalid, or
    made with another key than the one the code or refresh token is bound to."""

    error = "invalid_dpop_proof"


class UseDpopNonceError(OAuth2Error):
    """RFC 9449 §8: retry with the nonce in the ``DPoP-Nonce`` header."""

    error = "use_dpop_nonce"

    def __init__(self, nonce: str) -> None:
        super().__init__("Authorization server requires nonce in DPoP proof.")
        self.nonce = nonce

    def get_headers(self) -> list[tuple[str, str]]:
        return [*default_json_headers, ("DPoP-Nonce", self.nonce)]


class DpopContext:
    """What checking a proof needs from the process: store, keys, nonce key and policy."""

    def __init__(
        self,
        *,
        issuer: str,
        store: EphemeralStore,
        keys: Keys,
        cipher: DataCipher,
        nonce_required: bool,
    ) -> None:
        self.issuer = issuer
        self._store = store
        self._keys = keys
        self.nonces = DpopNonces(lambda value: cipher.keyed_hash(value, purpose="dpop_nonce"))
        self.nonce_required = nonce_required

    def verify(
        self,
        proofs: Sequence[str],
        *,
        htm: str,
        path: str,
        now: datetime,
        access_token: str | None = None,
    ) -> DpopProof:
        """RFC 9449 §4.3 for a request to ``path`` of this issuer.

        Raises:
            DpopNonceError, DpopProofError
        """
        # RFC 9449 §4.3 step 1: exactly one DPoP header.
        if len(proofs) != 1:
            raise DpopProofError()
        return verify_dpop_proof(
            proofs[0],
            htm=htm,
            htu=f"{self.issuer}{path}",
            now=now,
            store=self._store,
            replay_key=self._keys.oauth_dpop_jti,
            algorithms=DPOP_SIGNING_ALGS,
            access_token=access_token,
            nonces=self.nonces if self.nonce_required else None,
        )

    def fresh_nonce(self, now: datetime) -> str | None:
        """RFC 9449 §8.2: the nonce to hand out with an answer, when nonces are in use."""
        return self.nonces.current(now) if self.nonce_required else None


def dpop_context(deps: Deps) -> DpopContext:
    settings = deps.settings
    return DpopContext(
        issuer=settings.issuer,
        store=deps.store,
        keys=deps.keys,
        cipher=deps.cipher,
        nonce_required=settings.dpop_nonce_required,
    )


def proofs_in(headers: Any) -> list[str]:
    """Every DPoP header of a request (werkzeug's headers, or a plain mapping)."""
    getlist = getattr(headers, "getlist", None)
    if getlist is not None:
        return list(getlist("DPoP"))
    value = headers.get("DPoP") if headers else None
    return [value] if value is not None else []


def verify_token_request_proof(
    dpop: DpopContext, proofs: Sequence[str], *, now: datetime
) -> DpopProof | None:
    """RFC 9449 §5: the proof sent to the token endpoint, or None when there is none.

    Raises:
        UseDpopNonceError, InvalidDpopProofError
    """
    if not proofs:
        return None
    try:
        return dpop.verify(proofs, htm="POST", path="/token", now=now)
    except DpopNonceError as exc:
        raise UseDpopNonceError(dpop.nonces.current(now)) from exc
    except DpopProofError as exc:
        raise InvalidDpopProofError("The DPoP proof is not valid for this request.") from exc


def validate_proof_binding(
    proof: DpopProof | None, *, client_requires_proof: bool, bound_jkt: str | None
) -> None:
    """RFC 9449 §5.2: a client registered with ``dpop_bound_access_tokens`` always sends a
    proof; §10 and §5: a code or refresh token bound to a key is usable only with that key.

    Raises:
        InvalidDpopProofError
    """
    if proof is None:
        if client_requires_proof or bound_jkt is not None:
            raise InvalidDpopProofError("A DPoP proof is required.")
        return
    # SECURITY: a stolen bound code or refresh token is useless without the private key.
    if bound_jkt is not None and proof.thumbprint != bound_jkt:
        raise InvalidDpopProofError("The DPoP proof is not made with the key of this grant.")


def validate_dpop_jkt(value: str | None) -> None:
    """RFC 9449 §10: ``dpop_jkt`` in an authorization request is a SHA-256 JWK thumbprint.

    Raises:
        InvalidRequestError
    """
    if value is not None and not _JKT.fullmatch(value):
        raise InvalidRequestError("'dpop_jkt' must be a base64url SHA-256 JWK thumbprint.")


def bound_jkt(claims: dict[str, Any]) -> str | None:
    """RFC 9449 §6.1: the thumbprint an access token is bound to, if any."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) else None


class BoundTokenAsBearerError(InvalidAccessTokenError):
    message = "The access token is DPoP-bound: send it with the DPoP scheme and a proof."


class UnboundTokenAsDpopError(InvalidAccessTokenError):
    message = "The access token is not DPoP-bound: send it with the Bearer scheme."


def verify_resource_request(
    dpop: DpopContext,
    *,
    scheme: str,
    access_token: str,
    claims: dict[str, Any],
    proofs: Sequence[str],
    htm: str,
    path: str,
    now: datetime,
) -> None:
    """RFC 9449 §7: a bound token comes with the DPoP scheme and a proof of its key, made for
    this request and this token (``ath``); an unbound one stays a bearer token (RFC 6750).

    Raises:
        InvalidAccessTokenError: the scheme does not fit the token.
        DpopNonceError, DpopProofError: the proof does not fit the request, token or key.
    """
    jkt = bound_jkt(claims)
    if scheme != DPOP_TOKEN_TYPE:
        # SECURITY: RFC 9449 §7.2: a bound token is never accepted as a bearer token, or a
        # stolen one would be usable without the key.
        if jkt is not None:
            raise BoundTokenAsBearerError()
        return
    if jkt is None:
        raise UnboundTokenAsDpopError()
    proof = dpop.verify(proofs, htm=htm, path=path, now=now, access_token=access_token)
    if proof.thumbprint != jkt:
        raise DpopProofError()
