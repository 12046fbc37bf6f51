"""The token fast path: ``client_credentials`` with a client secret, outside Flask.

A service asking for a token with its secret is the busiest request this IdP serves, and
Flask's request context, hooks and response objects, Authlib's dispatch and a transaction
per request cost several times the token itself. This layer answers that request when it is
plain (``fast_forms``: ``grant_type=client_credentials`` and an optional ``scope``, the client
authenticated by ``client_secret_basic`` or ``client_secret_post``) and its client is
registered for ``client_credentials`` and may have the scopes asked for
(``client_credentials_scope``, the rule of the Authlib grant).

It signs the same RFC 9068 access token as the grant (``TokenSigner``, the key ring's current
key) and writes the same ``token.issued`` audit row through a group commit, answering only
once the row's transaction committed. Everything else — another grant, any other parameter
(``client_assertion``, ``resource``, ...), a ``DPoP`` header or a client registered for
DPoP-bound tokens, every error, and a request whose audit row could not be committed — goes
to the Authlib path untouched. A test compares both
answers request by request.
"""

from __future__ import annotations

import json
from typing import Any

from idp.audit.group_commit import GroupCommit
from idp.audit.service import INSERT_EVENT
from idp.audit.service import AuditContext
from idp.audit.service import event_row
from idp.deps import Deps
from idp.oidc.clients import client_credentials_scope
from idp.oidc.server import TOKENS_ISSUED
from idp.web.context import request_id_from
from idp.web.fast_forms import Answer
from idp.web.fast_forms import FastEndpoint
from idp.web.fast_forms import WsgiApp
from idp.web.fast_forms import plain_request

TOKEN_PATH = "/token"
GRANT_TYPE = "client_credentials"
_PARAMS = frozenset({"grant_type", "scope"})
# Longer bodies are not plain client_credentials requests; Flask reads them.
_MAX_BODY = 2048


class TokenFastPath(FastEndpoint):
    """``POST /token`` for ``client_credentials`` with a secret; Flask (``behind``) for the rest."""

    endpoint = "oidc.token"
    path = TOKEN_PATH

    def __init__(self, behind: WsgiApp, deps: Deps) -> None:
        super().__init__(behind, deps)
        self._clients = deps.clients
        self._signer = deps.signer
        self._clock = deps.clock
        self._alg = deps.settings.signing_alg
        self._audit = GroupCommit(deps.engine, INSERT_EVENT)
        self._issued = TOKENS_ISSUED.labels(GRANT_TYPE)

    def answer(self, environ: dict[str, Any]) -> Answer | None:
        request = plain_request(environ, params=_PARAMS, max_body=_MAX_BODY)
        if request is None or request.params.get("grant_type") != GRANT_TYPE:
            return None
        client = request.client(self._clients, grant_type=GRANT_TYPE)
        # SECURITY: a client registered for DPoP-bound tokens is refused a bearer token; the
        # protocol path says so (RFC 9449 §5.2).
        if client is None or client.dpop_bound_access_tokens:
            return None
        scope = client_credentials_scope(client, request.params.get("scope"))
        if scope is None:
            return None
        now = self._clock.now()
        access = self._signer.issue_access_token(
            client_id=client.client_id, scope=scope, now=now, auth=None, alg=self._alg
        )
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID", ""))
        context = AuditContext(client_ip=environ.get("REMOTE_ADDR"), request_id=request_id)
        row = event_row(
            "token.issued",
            now=now,
            actor=client.client_id,
            client_id=client.client_id,
            context=context,
            grant_type=GRANT_TYPE,
            jti=access.jti,
            scope=scope,
        )
        # No token leaves before its audit row is durable; if the batch failed, the token is
        # dropped unseen and Flask answers the request as it answers any database failure.
        if not self._audit.append(row):
            return None
        self._issued.inc()
        token = {
            "access_token": access.token,
            "token_type": "Bearer",
            "expires_in": self._signer.access_ttl,
            "scope": scope,
        }
        return request_id, json.dumps(token, sort_keys=True).encode()
