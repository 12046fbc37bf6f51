"""The userinfo endpoint (OIDC Core §5.3) behind RFC 6750 bearer-token checks, or RFC 9449
DPoP checks for a DPoP-bound token."""

from __future__ import annotations

from flask import Response
from flask import jsonify
from sqlalchemy import select

from idp.accounts.models import User
from idp.oidc.claims import directory_claims
from idp.oidc.claims import requested_verified_claims
from idp.oidc.claims import user_claims
from idp.oidc.dpop import DPOP_TOKEN_TYPE
from idp.oidc.models import Grant
from idp.oidc.models import GrantAccessToken
from idp.oidc.tokens import InvalidAccessTokenError
from idp.roles.assignments import grant_roles
from idp.roles.periods import thai_date
from idp.web import context
from idp.web.resource_tokens import dpop_challenge
from idp.web.resource_tokens import presented_token
from idp.web.resource_tokens import proof_refusal


def _challenge(
    status: int,
    error: str | None = None,
    description: str | None = None,
    *,
    dpop: bool = False,
    nonce: str | None = None,
) -> Response:
    if dpop:
        # RFC 9449 §7.1: a token sent with the DPoP scheme is answered in that scheme.
        challenge = dpop_challenge("userinfo", error, description)
    else:
        # RFC 6750 §3: no error code when the request carried no token at all.
        parts = ['Bearer realm="userinfo"']
        if error:
            parts.append(f'error="{error}"')
        if description:
            parts.append(f'error_description="{description}"')
        challenge = ", ".join(parts)
    body = {"error": error} if error else {}
    response = jsonify(body)
    response.status_code = status
    response.headers["WWW-Authenticate"] = challenge
    if nonce:
        response.headers["DPoP-Nonce"] = nonce
    response.headers["Cache-Control"] = "no-store"
    return response


def userinfo_response() -> Response:
    presented = presented_token(form_allowed=True)
    if presented is None:
        return _challenge(401)
    dpop = presented.scheme == DPOP_TOKEN_TYPE
    deps = context.deps()
    now = context.now()
    try:
        claims = deps.signer.verify_access_token(presented.value, now=now)
    except InvalidAccessTokenError:
        return _challenge(
            401, "invalid_token", "The access token is invalid or expired.", dpop=dpop
        )
    try:
        refusal = proof_refusal(presented, claims)
    except InvalidAccessTokenError as exc:
        # A bound token sent as a bearer token is answered with the DPoP challenge.
        return _challenge(401, "invalid_token", exc.message, dpop=True)
    if refusal is not None:
        return _challenge(401, refusal.error, refusal.description, dpop=True, nonce=refusal.nonce)
    if deps.revocations.is_revoked(
        jti=claims["jti"], sid=claims.get("sid"), now=now, open_session=deps.sessions
    ):
        return _challenge(401, "invalid_token", "The access token was revoked.", dpop=dpop)
    if "openid" not in claims["scope"].split():
        return _challenge(403, "insufficient_scope", "The openid scope is required.", dpop=dpop)
    db = context.db()
    user = db.scalar(select(User).where(User.sub == claims["sub"]))
    if user is None or not user.is_active:
        return _challenge(401, "invalid_token", "The user may no longer sign in.")
    body = user_claims(user, claims["scope"])
    grant = db.scalar(
        select(Grant)
        .join(GrantAccessToken, GrantAccessToken.grant_id == Grant.id)
        .where(GrantAccessToken.jti == claims["jti"])
    )
    if grant is not None:
        body |= requested_verified_claims(user, grant.claims_request, "userinfo")
    # The roles held now (the token's role scopes were narrowed when it was issued): one that
    # ended since is no longer listed.
    body |= grant_roles(
        db,
        user,
        scope=claims["scope"],
        now=now,
        day=thai_date(now),
        may_hold_roles=True,
        client_id=claims["client_id"],
        audit=context.audit_context(),
    ).claims()
    # The unit an account was issued for is named too: a civil servant with no role still
    # reads their own unit by name.
    own_unit = [{"unit": body["gfms_unit"]}] if body.get("gfms_unit") else []
    body |= directory_claims(db, claims["scope"], [*(body.get("gfms_roles") or []), *own_unit])
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response
