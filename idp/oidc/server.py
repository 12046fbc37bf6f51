"""The authorization server: Authlib's Flask server with our grants, endpoints and seams.

The protocol engine: no pages, no browser session; the web layer hands it the request's
database session and audit context, and resumes it with the login's result.

Authlib internals it overrides or leans on (not public API, so an upgrade may move them;
``AUTHLIB_SEAMS`` below lists them and tests/unit/oidc/test_authlib_seams.py fails when one
is gone or no longer called where we expect):

- ``RefreshTokenGrant``: ``_validate_request_token`` and ``_validate_token_scope`` (grants.py):
  the token is looked up by hash, reuse revokes the family, a refresh never widens scope.
- ``EndSessionEndpoint``: ``_validate_id_token_hint`` (endpoints.py): the hint is verified with
  our own key ring, expired ones included.
- ``FlaskOAuth2Request.__init__`` is bypassed (``_FlaskRequest`` below): it sets
  ``_request`` and ``payload`` itself, without rebuilding the URL.
- ``OpenIDCode.__call__`` is replaced (grants.py ``OpenIDAuthorization``): its nonce and
  prompt hooks (``validate_openid_authorization_request``, ``validate_request_prompt``) are
  kept, its ``after_create_token_response`` hook (``process_token``) is
  skipped, because our grants make the ID token from the recorded authentication.
- ``JWTBearerClientAssertion``: ``process_assertion_claims`` (client_assertion.py): the
  signature is checked with our algorithm list and the claims on our clock;
  ``resolve_client_public_key`` gives the client's registered keys (client_keys.py).
"""

from __future__ import annotations

import json
import secrets
from collections import defaultdict
from collections.abc import Callable
from functools import cached_property
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Payload
from authlib.integrations.flask_oauth2.requests import FlaskOAuth2Request
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Flask
from flask import request as flask_request
from joserfc.errors import JoseError
from joserfc.jws import extract_compact
from prometheus_client import Counter
from sqlalchemy.orm import Session

from idp.audit.service import AuditContext
from idp.audit.service import record
from idp.deps import Deps
from idp.oidc.ciba import BackchannelAuthenticationEndpoint
from idp.oidc.ciba import CibaGrant
from idp.oidc.client_assertion import PrivateKeyJwt
from idp.oidc.client_keys import ClientKeys
from idp.oidc.dpop import dpop_context
from idp.oidc.endpoints import EndSession
from idp.oidc.endpoints import Introspection
from idp.oidc.endpoints import PushedAuthorization
from idp.oidc.endpoints import TokenRevocation
from idp.oidc.grants import AuthorizationCodeGrant
from idp.oidc.grants import ClientCredentialsGrant
from idp.oidc.grants import OpenIDAuthorization
from idp.oidc.grants import RefreshTokenGrant
from idp.oidc.grants import S256CodeChallenge
from idp.oidc.interaction import StoredAuthorizationRequest

# (class, member we override or set, the method of that class that must still use it)
AUTHLIB_SEAMS: tuple[tuple[str, str, str], ...] = (
    (
        "authlib.oauth2.rfc6749.grants:RefreshTokenGrant",
        "_validate_request_token",
        "validate_token_request",
    ),
    (
        "authlib.oauth2.rfc6749.grants:RefreshTokenGrant",
        "_validate_token_scope",
        "validate_token_request",
    ),
    ("authlib.oidc.rpinitiated:EndSessionEndpoint", "_validate_id_token_hint", "validate_request"),
    ("authlib.integrations.flask_oauth2.requests:FlaskOAuth2Request", "_request", "__init__"),
    ("authlib.integrations.flask_oauth2.requests:FlaskOAuth2Request", "payload", "__init__"),
    ("authlib.oidc.core:OpenIDCode", "validate_openid_authorization_request", "__call__"),
    ("authlib.oauth2.rfc7523:JWTBearerClientAssertion", "process_assertion_claims", "__call__"),
    ("authlib.oauth2.rfc7523:JWTBearerClientAssertion", "resolve_client_public_key", "__call__"),
)
# The hooks Authlib's OpenIDCode registers; OpenIDAuthorization keeps all but the first.
AUTHLIB_OPENID_HOOKS = (
    "after_create_token_response",
    "after_validate_authorization_request_payload",
    "after_validate_consent_request",
)

__all__ = ["IdpAuthorizationServer", "StoredAuthorizationRequest", "build_authorization_server"]

TOKENS_ISSUED = Counter("idp_tokens_issued_total", "Access tokens issued", ["grant_type"])


class _BodyOnlyPayload(OAuth2Payload):
    """RFC 6749 §3.2: token-endpoint parameters travel in the request body, not the URL."""

    def __init__(self, form: Any) -> None:
        self._form = form

    @property
    def data(self) -> Any:
        return self._form

    @cached_property
    def datalist(self) -> defaultdict[str, list[str]]:
        values: defaultdict[str, list[str]] = defaultdict(list)
        for key in self._form:
            values[key].extend(self._form.getlist(key))
        return values


class _FlaskRequest(FlaskOAuth2Request):
    """Authlib's Flask request, built without re-deriving the URL of every request.

    Authlib rebuilds the full request URL only to refuse plain http; the issuer setting
    already decides the scheme (https outside loopback, checked at start), so its URL is
    given instead. That reconstruction was a tenth of an introspection's time.
    """

    def __init__(self, request: Any, issuer: str) -> None:
        OAuth2Request.__init__(self, request.method, issuer + request.path, headers=request.headers)
        self._request = request
        if request.method == "POST" and request.path != "/authorize":
            self.payload: OAuth2Payload = _BodyOnlyPayload(request.form)
        else:
            self.payload = FlaskOAuth2Payload(request)


class _IssuerParameter(IssuerParameter):
    def __init__(self, issuer: str) -> None:
        self._issuer = issuer

    def get_issuer(self) -> str:
        return self._issuer


class IdpAuthorizationServer(AuthorizationServer):
    def __init__(
        self,
        deps: Deps,
        *,
        db: Callable[[], Session],
        audit_context: Callable[[], AuditContext],
    ) -> None:
        super().__init__()
        self.deps = deps
        self.dpop = dpop_context(deps)
        # The request's database session and audit context, given by the web layer: the
        # engine knows nothing of how a request keeps them.
        self._db = db
        self._audit_context = audit_context
        # Clients' public keys (private_key_jwt, request objects), fetched ones cached.
        self.client_keys = ClientKeys()

    def query_client(self, client_id: str) -> Any:
        return self.deps.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        # Grants persist what they issue themselves (grants.py), in the request transaction.
        return None

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return _FlaskRequest(flask_request, self.deps.settings.issuer)

    def handle_error_response(self, request: Any, error: OAuth2Error) -> Any:
        if error.error == "invalid_client":
            self._audit_client_failure(request, error)
        elif error.error == "invalid_dpop_proof":
            # A replayed or misdirected proof may be someone else's token request.
            with self.deps.sessions.begin() as db:
                record(
                    db,
                    "token.dpop_proof_refused",
                    now=self.deps.clock.now(),
                    outcome="failure",
                    context=self.audit_context(),
                    client_id=getattr(getattr(request, "client", None), "client_id", None),
                    endpoint=flask_request.path,
                )
        return super().handle_error_response(request, error)

    def _audit_client_failure(self, request: Any, error: OAuth2Error) -> None:
        """A failed client authentication is a security event, though the answer is an error
        (whose transaction is rolled back): it is recorded in a transaction of its own."""
        client_id = None
        method = None
        if request is not None:
            client_id, _ = extract_basic_authorization(request.headers)
            client_id = client_id or request.payload.data.get("client_id")
            if request.payload.data.get("client_assertion_type"):
                method = PrivateKeyJwt.CLIENT_AUTH_METHOD
                # Unverified (the assertion was refused): who it claims to come from.
                client_id = client_id or _claimed_subject(request.payload.data)
            if isinstance(client_id, str) and not client_id.isprintable():
                client_id = "(unprintable)"
        with self.deps.sessions.begin() as db:
            record(
                db,
                "client.authentication_failed",
                now=self.deps.clock.now(),
                outcome="failure",
                client_id=(client_id if isinstance(client_id, str) else "")[:64] or None,
                context=self.audit_context(),
                endpoint=flask_request.path,
                **({"method": method} if method else {}),
            )

    def db(self) -> Session:
        return self._db()

    def attempt_id(self) -> str:
        """This HTTP request's own id, never taken from the caller, and the same when the web
        layer runs the request again after a dropped database connection (outages.py): what
        the first run marked as used (an assertion's jti) is then recognised as its own."""
        # Kept in the WSGI environ: one per HTTP request; headers cannot name such a key.
        environ = flask_request.environ
        return str(environ.setdefault("idp.attempt_id", secrets.token_hex(16)))

    def audit_context(self) -> AuditContext:
        return self._audit_context()

    def count_token(self, grant_type: str) -> None:
        TOKENS_ISSUED.labels(grant_type).inc()


def build_authorization_server(
    app: Flask,
    deps: Deps,
    *,
    db: Callable[[], Session],
    audit_context: Callable[[], AuditContext],
) -> IdpAuthorizationServer:
    server = IdpAuthorizationServer(deps, db=db, audit_context=audit_context)
    server.init_app(app)
    server.scopes_supported = None  # clients filter scopes themselves (clients.py)
    server.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(), OpenIDAuthorization()])
    # RFC 7523 client assertions, wherever the endpoint lists private_key_jwt.
    server.register_client_auth_method(PrivateKeyJwt.CLIENT_AUTH_METHOD, PrivateKeyJwt(server))
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_grant(CibaGrant)
    server.register_endpoint(BackchannelAuthenticationEndpoint(server))
    server.register_endpoint(Introspection(server))
    server.register_endpoint(TokenRevocation(server))
    server.register_endpoint(PushedAuthorization(server))
    server.end_session_endpoint = EndSession(server)
    server.register_endpoint(server.end_session_endpoint)
    # RFC 9207: iss in every authorization response, so a client can tell its IdPs apart.
    _IssuerParameter(deps.settings.issuer)(server)
    return server


def _claimed_subject(data: Any) -> str | None:
    """The ``sub`` a refused client assertion names, for the audit trail only."""
    try:
        claims = json.loads(extract_compact(str(data.get("client_assertion", "")).encode()).payload)
    except (JoseError, ValueError, UnicodeError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) else None
