"""Access tokens presented to the IdP's own resources (userinfo, the admin API): the bearer
scheme (RFC 6750) for unbound tokens, the DPoP scheme with a proof (RFC 9449 §7) for bound ones.
The rules are ``idp.oidc.dpop``'s; this reads them off the request and words the challenge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import request

from idp.audit.service import record
from idp.dpop import DpopNonceError
from idp.dpop import DpopProofError
from idp.oidc.dpop import DPOP_SIGNING_ALGS
from idp.oidc.dpop import DPOP_TOKEN_TYPE
from idp.oidc.dpop import BoundTokenAsBearerError
from idp.oidc.dpop import dpop_context
from idp.oidc.dpop import verify_resource_request
from idp.web import context


@dataclass(frozen=True)
class PresentedToken:
    value: str
    scheme: str  # "Bearer" or "DPoP"


@dataclass(frozen=True)
class ProofRefusal:
    """A DPoP refusal, to be answered 401 with a ``DPoP`` challenge (RFC 9449 §7.1)."""

    error: str
    description: str
    nonce: str | None = None  # RFC 9449 §9: sent in the DPoP-Nonce header


def presented_token(*, form_allowed: bool = False) -> PresentedToken | None:
    """The token of the Authorization header (either scheme, RFC 9110 §11.1: case-insensitive),
    or with ``form_allowed`` the RFC 6750 §2.2 form parameter of a POST (bearer only)."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "dpop") and value.strip():
        named = DPOP_TOKEN_TYPE if scheme.lower() == "dpop" else "Bearer"
        return PresentedToken(value.strip(), named)
    if (
        form_allowed
        and request.method == "POST"
        and request.mimetype == "application/x-www-form-urlencoded"
        and (form_token := request.form.get("access_token"))
    ):
        return PresentedToken(form_token, "Bearer")
    return None


def proof_refusal(presented: PresentedToken, claims: dict[str, Any]) -> ProofRefusal | None:
    """Check the token's scheme and DPoP proof against this request; None when they fit.

    Raises:
        InvalidAccessTokenError: the scheme does not fit the token (bound sent as bearer,
            or unbound sent as DPoP).
    """
    deps = context.deps()
    dpop = dpop_context(deps)
    now = context.now()
    try:
        verify_resource_request(
            dpop,
            scheme=presented.scheme,
            access_token=presented.value,
            claims=claims,
            proofs=request.headers.getlist("DPoP"),
            htm=request.method,
            path=request.path,
            now=now,
        )
    except BoundTokenAsBearerError:
        # SECURITY: a bound token without its key's proof is what a thief of the token holds.
        _record_refusal(claims, now, reason="bearer_scheme")
        raise
    except DpopNonceError:
        return ProofRefusal(
            "use_dpop_nonce",
            "Resource server requires nonce in DPoP proof.",
            nonce=dpop.nonces.current(now),
        )
    except DpopProofError:
        _record_refusal(claims, now, reason="invalid_proof")
        return ProofRefusal("invalid_dpop_proof", "The DPoP proof is not valid for this request.")
    return None


def _record_refusal(claims: dict[str, Any], now: datetime, *, reason: str) -> None:
    # Recorded in a transaction of its own: the answer is an error.
    with context.deps().sessions.begin() as db:
        record(
            db,
            "token.dpop_proof_refused",
            now=now,
            outcome="failure",
            client_id=str(claims.get("client_id")),
            context=context.audit_context(),
            endpoint=request.path,
            reason=reason,
        )


def dpop_challenge(realm: str, error: str | None, description: str | None) -> str:
    """RFC 9449 §7.1: the DPoP scheme's challenge names the algorithms we accept."""
    parts = [f'DPoP realm="{realm}"', f'algs="{" ".join(DPOP_SIGNING_ALGS)}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    return ", ".join(parts)
