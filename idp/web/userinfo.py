"""The userinfo endpoint (OIDC Core §5.3) behind RFC 6750 bearer-token checks."""

from __future__ import annotations

from flask import Response
from flask import jsonify
from flask import request
from sqlalchemy import select

from idp.accounts.models import User
from idp.oidc.claims import directory_claims
from idp.oidc.claims import requested_verified_claims
from idp.oidc.claims import user_claims
from idp.oidc.models import Grant
from idp.oidc.models import GrantAccessToken
from idp.oidc.tokens import InvalidAccessTokenError
from idp.roles.assignments import grant_roles
from idp.roles.periods import thai_date
from idp.web import context


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    # RFC 6750 §2.2: a form-encoded body parameter is allowed on POST.
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        return request.form.get("access_token") or None
    return None


def _challenge(status: int, error: str | None = None, description: str | None = None) -> Response:
    # RFC 6750 §3: no error code when the request carried no token at all.
    parts = ['Bearer realm="userinfo"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{description}"')
    body = {"error": error} if error else {}
    response = jsonify(body)
    response.status_code = status
    response.headers["WWW-Authenticate"] = ", ".join(parts)
    response.headers["Cache-Control"] = "no-store"
    return response


def userinfo_response() -> Response:
    token = _bearer_token()
    if token is None:
        return _challenge(401)
    deps = context.deps()
    now = context.now()
    try:
        claims = deps.signer.verify_access_token(token, now=now)
    except InvalidAccessTokenError:
        return _challenge(401, "invalid_token", "The access token is invalid or expired.")
    if deps.revocations.is_revoked(
        jti=claims["jti"], sid=claims.get("sid"), now=now, open_session=deps.sessions
    ):
        return _challenge(401, "invalid_token", "The access token was revoked.")
    if "openid" not in claims["scope"].split():
        return _challenge(403, "insufficient_scope", "The openid scope is required.")
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
        db, user, scope=claims["scope"], now=now, day=thai_date(now), may_hold_roles=True,
        client_id=claims["client_id"], audit=context.audit_context(),
    ).claims()  # fmt: skip
    # The unit an account was issued for is named too: a civil servant with no role still
    # reads their own unit by name.
    own_unit = [{"unit": body["gfms_unit"]}] if body.get("gfms_unit") else []
    body |= directory_claims(db, claims["scope"], [*(body.get("gfms_roles") or []), *own_unit])
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response
