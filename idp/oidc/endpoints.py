"""Introspection (RFC 7662), revocation (RFC 7009), pushed authorization requests (RFC 9126)
and RP-initiated logout, on Authlib's endpoint classes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar

from authlib.consts import default_json_headers
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749 import TokenEndpoint
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.rpinitiated import EndSessionEndpoint
from authlib.oidc.rpinitiated.end_session import EndSessionRequest

from idp.accounts.models import User
from idp.audit.service import record
from idp.oidc.clients import KEY_METHODS
from idp.oidc.clients import SECRET_METHODS
from idp.oidc.clients import RegisteredClient
from idp.oidc.dpop import DPOP_TOKEN_TYPE
from idp.oidc.dpop import bound_jkt
from idp.oidc.grants import find_grant_of_refresh_token
from idp.oidc.grants import refresh_token_is_live
from idp.oidc.interaction import StoredAuthorizationRequest
from idp.oidc.interaction import validate_extensions
from idp.oidc.interaction import validate_request_shape
from idp.oidc.models import Grant
from idp.oidc.models import RefreshToken
from idp.oidc.par import push
from idp.oidc.par import resolve_pushed_params
from idp.oidc.tokens import InvalidAccessTokenError
from idp.revocation.models import RevokedKind
from idp.revocation.service import revoke_grant
from idp.store.secrets import sha256_hex

if TYPE_CHECKING:
    from idp.deps import Deps
    from idp.oidc.server import IdpAuthorizationServer

INACTIVE = {"active": False}
MAX_TOKEN_LENGTH = 8192


def _token_param(request: Any) -> str:
    token = request.form.get("token")
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidRequestError("Missing or oversized 'token' parameter.")
    return str(token)


class Introspection(IntrospectionEndpoint):
    """RFC 7662. A client may introspect the tokens issued to it; a client registered as a
    protected resource (``may_introspect``) may introspect any token."""

    CLIENT_AUTH_METHODS: ClassVar[list[str]] = [*SECRET_METHODS, *KEY_METHODS]
    server: IdpAuthorizationServer

    def create_endpoint_response(self, request: Any) -> tuple[int, dict[str, Any], list[Any]]:
        client: RegisteredClient = self.authenticate_endpoint_client(request)
        token = _token_param(request)
        hint = request.form.get("token_type_hint")
        # RFC 7662 §2.1: an unknown or wrong hint only changes the search order.
        if hint == "refresh_token" or token.count(".") != 2:
            payload = self._refresh_token(token, client) or self._access_token(token, client)
        else:
            payload = self._access_token(token, client) or self._refresh_token(token, client)
        return 200, payload or INACTIVE, default_json_headers

    def _access_token(self, token: str, client: RegisteredClient) -> dict[str, Any] | None:
        return introspect_access_token(self.server.deps, token, client)

    def _refresh_token(self, token: str, client: RegisteredClient) -> dict[str, Any] | None:
        if token.count(".") == 2:
            return None
        db = self.server.db()
        grant = find_grant_of_refresh_token(db, token)
        if grant is None:
            return None
        if not client.may_introspect and grant.client_id != client.client_id:
            return None
        row = db.get(RefreshToken, sha256_hex(token))
        deps = self.server.deps
        now = deps.clock.now()
        if row is None or not refresh_token_is_live(
            db, row, grant, now=now, policy=deps.session_policy
        ):
            return None
        user = db.get(User, grant.user_id)
        return {
            "active": True,
            "token_type": "refresh_token",
            "client_id": grant.client_id,
            "scope": grant.scope,
            "sub": user.sub if user else None,
            "exp": int(row.expires_at.timestamp()),
            "iat": int(row.issued_at.timestamp()),
            "iss": self.server.deps.settings.issuer,
        }


def introspect_access_token(
    deps: Deps, token: str, client: RegisteredClient
) -> dict[str, Any] | None:
    """RFC 7662 §2.2 for one of our access tokens: its claims when it is valid, unexpired,
    unrevoked (its ``jti`` and its session) and ``client`` may see it; else None."""
    now = deps.clock.now()
    try:
        claims = deps.signer.verify_access_token(token, now=now)
    except InvalidAccessTokenError:
        return None
    if not client.may_introspect and claims["client_id"] != client.client_id:
        return None
    if deps.revocations.is_revoked(
        jti=claims["jti"], sid=claims.get("sid"), now=now, open_session=deps.sessions
    ):
        return None
    # RFC 9449 §6.2: a bound token is a DPoP token, and its cnf.jkt is among the claims.
    token_type = DPOP_TOKEN_TYPE if bound_jkt(claims) else "Bearer"
    return {"active": True, "token_type": token_type, **claims}


class TokenRevocation(RevocationEndpoint):
    """RFC 7009. Revoking a refresh token revokes its grant and the grant's access tokens;
    revoking an access token puts its ``jti`` on the revocation list until it expires."""

    CLIENT_AUTH_METHODS: ClassVar[list[str]] = [*SECRET_METHODS, *KEY_METHODS, "none"]
    server: IdpAuthorizationServer

    def create_endpoint_response(self, request: Any) -> tuple[int, dict[str, Any], list[Any]]:
        client: RegisteredClient = self.authenticate_endpoint_client(request)
        token = _token_param(request)
        # RFC 7009 §2.2: the answer is 200 whether or not the token was known or valid, so
        # the endpoint cannot be used to probe tokens.
        if token.count(".") == 2:
            self._revoke_access_token(token, client)
        else:
            self._revoke_refresh_token(token, client)
        return 200, {}, default_json_headers

    def _revoke_access_token(self, token: str, client: RegisteredClient) -> None:
        deps = self.server.deps
        now = deps.clock.now()
        try:
            claims = deps.signer.verify_access_token(token, now=now)
        except InvalidAccessTokenError:
            return
        if claims["client_id"] != client.client_id:
            return
        deps.revocations.revoke(
            self.server.db(),
            RevokedKind.ACCESS_TOKEN,
            claims["jti"],
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            now=now,
            reason="client_revoked",
        )
        record(
            self.server.db(),
            "token.revoked",
            now=now,
            actor=claims["sub"],
            client_id=client.client_id,
            context=self.server.audit_context(),
            jti=claims["jti"],
        )

    def _revoke_refresh_token(self, token: str, client: RegisteredClient) -> None:
        db = self.server.db()
        grant: Grant | None = find_grant_of_refresh_token(db, token)
        if grant is None or grant.client_id != client.client_id:
            return
        revoke_grant(
            db,
            self.server.deps.revocations,
            grant,
            reason="client_revoked",
            now=self.server.deps.clock.now(),
            context=self.server.audit_context(),
        )


# Client authentication travels with a pushed request but is not part of it.
_CLIENT_AUTH_PARAMS = frozenset({"client_secret", "client_assertion", "client_assertion_type"})


class PushedAuthorization(TokenEndpoint):
    """RFC 9126: the client authenticates and pushes its authorization request, validated as
    the authorization endpoint would; it gets a one-use ``request_uri`` for the browser."""

    ENDPOINT_NAME = "par"
    # RFC 9126 §2: authenticated as at the token endpoint; a public client names itself.
    CLIENT_AUTH_METHODS: ClassVar[list[str]] = [*SECRET_METHODS, *KEY_METHODS, "none"]
    server: IdpAuthorizationServer

    def create_endpoint_response(self, request: Any) -> tuple[int, dict[str, Any], list[Any]]:
        client: RegisteredClient = self.authenticate_endpoint_client(request)
        deps = self.server.deps
        now = deps.clock.now()
        try:
            body = validate_request_shape(request.form)
            params = resolve_pushed_params(
                {k: v for k, v in body.items() if k not in _CLIENT_AUTH_PARAMS},
                client,
                client_keys=self.server.client_keys,
                issuer=deps.settings.issuer,
                now=now,
            )
            # The authorization endpoint's own checks, now, so the client hears of a
            # mistake from us rather than from the browser.
            stored = StoredAuthorizationRequest(deps.settings.issuer, params)
            grant = self.server.get_authorization_grant(stored)
            grant.validate_authorization_request()
            validate_extensions(params)
        except OAuth2Error as error:
            # RFC 9126 §2.3: errors answer the push itself; nothing is redirected.
            error.redirect_uri = None
            error.state = None
            raise
        request_uri, expires_in = push(
            deps.store, deps.keys, client_id=client.client_id, params=params, now=now
        )
        # RFC 9126 §2.2: 201 Created.
        return 201, {"request_uri": request_uri, "expires_in": expires_in}, default_json_headers


@dataclass
class LogoutRequest:
    """A validated RP-initiated logout: where to go afterwards and whether to ask first."""

    client: RegisteredClient | None
    redirect_uri: str | None
    id_token_claims: dict[str, Any] | None
    ui_locales: str | None

    @property
    def needs_confirmation(self) -> bool:
        # Without a valid id_token_hint the request may be forged (a logout CSRF), so the
        # user confirms (OpenID RP-Initiated Logout 1.0 §2 and §6).
        return self.id_token_claims is None


class EndSession(EndSessionEndpoint):
    """OpenID RP-Initiated Logout 1.0: id_token_hint verified with our keys (even expired),
    post_logout_redirect_uri only when registered and exactly equal."""

    server: IdpAuthorizationServer

    def get_server_jwks(self) -> Any:
        return self.server.deps.keyring.snapshot.verifying

    def get_algorithms(self) -> list[str]:
        return ["ES256", "RS256"]

    def is_post_logout_redirect_uri_legitimate(
        self, request: Any, post_logout_redirect_uri: str, client: Any, logout_hint: Any
    ) -> bool:
        # Without an id_token_hint the user confirms the logout first; the URI has already
        # been found among those registered by the client named in the request.
        return bool(request.payload.data.get("client_id") == client.client_id)

    def _validate_id_token_hint(self, id_token_hint: str) -> dict[str, Any]:
        try:
            return self.server.deps.signer.verify_own_id_token(id_token_hint)
        except InvalidAccessTokenError as exc:
            raise InvalidRequestError("Invalid 'id_token_hint'.") from exc

    def validate_logout(self, request: Any) -> LogoutRequest:
        """Validate the request; an error means: show it, do not redirect anywhere.

        Raises:
            InvalidRequestError
        """
        validated: EndSessionRequest = self.validate_request(request)
        return LogoutRequest(
            client=validated.client,
            redirect_uri=validated.redirect_uri,
            id_token_claims=validated.id_token_claims,
            ui_locales=validated.ui_locales,
        )

    def end_session(self, end_session_request: Any) -> None:
        # The logout view ends the session itself (it owns the cookie).
        return None
