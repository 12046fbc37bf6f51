"""Who calls the admin API: an access token of ours (RFC 6750 bearer, or RFC 9449 DPoP with a
proof of its key when it is DPoP-bound), either a user's with the
``admin`` scope from a login the phone confirmed, acting within that user's administrative
roles, or a client's with the ``helpdesk`` scope (a ticketing system), acting as helpdesk."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response
from flask import g
from flask import jsonify
from flask import request
from sqlalchemy import select

from idp.accounts.flow import Assurance
from idp.accounts.flow import acr_uri
from idp.accounts.flow import assurance_of
from idp.accounts.flow import meets
from idp.accounts.models import User
from idp.accounts.models import UserSession
from idp.accounts.sessions import is_live
from idp.audit.service import record
from idp.errors import IdpError
from idp.oidc.clients import ADMIN_SCOPE
from idp.oidc.dpop import DPOP_TOKEN_TYPE
from idp.oidc.tokens import InvalidAccessTokenError
from idp.roles.authority import Authority
from idp.roles.authority import authority_of
from idp.roles.models import AdminRole
from idp.web import context
from idp.web.resource_tokens import PresentedToken
from idp.web.resource_tokens import dpop_challenge
from idp.web.resource_tokens import presented_token
from idp.web.resource_tokens import proof_refusal

HELPDESK_SCOPE = "helpdesk"


@dataclass(frozen=True)
class Caller:
    authority: Authority
    user: User | None  # None for a client acting for a system
    actor: str  # for the audit trail: the user's sub, or the client id


class InvalidOnBehalfOfError(IdpError):
    code = "invalid_on_behalf_of"
    message = "'on_behalf_of' must name an active member of staff who holds the helpdesk role."


class AuthError(Exception):
    """Answered with RFC 6750 §3 challenge (or RFC 9470 for too weak a login)."""

    def __init__(
        self,
        status: int,
        error: str | None,
        description: str | None = None,
        *,
        acr: str | None = None,
        dpop: bool = False,
        nonce: str | None = None,
    ) -> None:
        super().__init__(error)
        self.status, self.error, self.description, self.acr = status, error, description, acr
        # RFC 9449 §7.1: answered in the DPoP scheme (with a nonce to use, §9).
        self.dpop, self.nonce = dpop, nonce

    def response(self) -> Response:
        if self.dpop:
            parts = [dpop_challenge("admin", self.error, self.description)]
        else:
            parts = ['Bearer realm="admin"']
            if self.error:
                parts.append(f'error="{self.error}"')
            if self.description:
                parts.append(f'error_description="{self.description}"')
        if self.acr:
            parts.append(f'acr_values="{self.acr}"')
        body = {"error": self.error or "invalid_request"}
        if self.description:
            body["error_description"] = self.description
        response = jsonify(body)
        response.status_code = self.status
        response.headers["WWW-Authenticate"] = ", ".join(parts)
        if self.nonce:
            response.headers["DPoP-Nonce"] = self.nonce
        response.headers["Cache-Control"] = "no-store"
        return response


def authenticate() -> Caller:
    """Raises AuthError."""
    presented = presented_token()
    if presented is None:
        raise AuthError(401, None)
    try:
        return _authenticate(presented)
    except AuthError as error:
        # RFC 9449 §7.1: a token sent with the DPoP scheme is answered in that scheme.
        error.dpop = error.dpop or presented.scheme == DPOP_TOKEN_TYPE
        raise


def _authenticate(presented: PresentedToken) -> Caller:
    deps = context.deps()
    now = context.now()
    try:
        claims = deps.signer.verify_access_token(presented.value, now=now)
    except InvalidAccessTokenError as exc:
        raise AuthError(401, "invalid_token", "The access token is invalid or expired.") from exc
    try:
        refusal = proof_refusal(presented, claims)
    except InvalidAccessTokenError as exc:
        raise AuthError(401, "invalid_token", exc.message, dpop=True) from exc
    if refusal is not None:
        raise AuthError(401, refusal.error, refusal.description, dpop=True, nonce=refusal.nonce)
    if deps.revocations.is_revoked(
        jti=claims["jti"], sid=claims.get("sid"), now=now, open_session=deps.sessions
    ):
        raise AuthError(401, "invalid_token", "The access token was revoked.")
    scopes = set(str(claims["scope"]).split())
    if "auth_time" not in claims:  # a client's own token (client credentials)
        if HELPDESK_SCOPE not in scopes:
            raise AuthError(403, "insufficient_scope", "The helpdesk scope is required.")
        # Every event of this request names the client, whoever it acts for.
        g.audit_client_id = claims["client_id"]
        authority = Authority(roles=frozenset({AdminRole.HELPDESK}))
        officer = _on_behalf_of(claims["client_id"])
        return Caller(authority, None, officer.sub if officer else claims["client_id"])
    if _given_on_behalf_of() is not None:
        # A person's own token acts for that person only.
        raise InvalidOnBehalfOfError()
    if ADMIN_SCOPE not in scopes:
        raise AuthError(403, "insufficient_scope", "The admin scope is required.")
    if not meets(
        assurance_of(deps.settings.issuer, str(claims.get("acr", ""))), Assurance.SOFT_TOKEN
    ):
        # RFC 9470: the client can ask for a stronger login and try again.
        raise AuthError(
            401,
            "insufficient_user_authentication",
            "A login confirmed on the phone is required.",
            acr=acr_uri(deps.settings.issuer, Assurance.SOFT_TOKEN),
        )
    db = context.db()
    # Administration lives as long as the login it came from: never an offline grant's token.
    login = db.get(UserSession, claims.get("sid") or "")
    if login is None or not is_live(login, now=now, policy=deps.session_policy):
        raise AuthError(401, "invalid_token", "The login session of this token has ended.")
    user = db.get(User, login.user_id)
    if user is None or not user.is_active or user.sub != claims["sub"]:
        raise AuthError(401, "invalid_token", "The user may no longer sign in.")
    authority = authority_of(db, user.id)
    if not authority.is_administrative:
        raise AuthError(403, "insufficient_scope", "The user holds no administrative role.")
    return Caller(authority, user, user.sub)


def _given_on_behalf_of() -> str | None:
    body = request.get_json(silent=True) if request.is_json else None
    given = body.get("on_behalf_of") if isinstance(body, dict) else None
    return given if given is not None else request.args.get("on_behalf_of")


def _on_behalf_of(client_id: str) -> User | None:
    """The member of staff an integration acts for (``on_behalf_of``, their username): the
    officer who took the call, recorded as the actor next to the client.

    Raises:
        InvalidOnBehalfOfError: not a username of an active person holding the helpdesk role.
    """
    given = _given_on_behalf_of()
    if given is None:
        return None
    db = context.db()
    officer = (
        db.scalar(select(User).where(User.username == given)) if isinstance(given, str) else None
    )
    # SECURITY: an integration cannot put a name of its choosing in the trail: only someone
    # who could have done this at the helpdesk console themselves.
    if (
        officer is None
        or not officer.is_active
        or AdminRole.HELPDESK not in authority_of(db, officer.id).roles
    ):
        record(
            db,
            "api.on_behalf_of_refused",
            now=context.now(),
            outcome="failure",
            client_id=client_id,
            context=context.audit_context(),
            on_behalf_of=str(given)[:64],
        )
        db.commit()
        raise InvalidOnBehalfOfError()
    return officer
