"""The introspection fast path: a resource server asking about one of our access tokens.

Resource servers introspect (RFC 7662) the same JWT on every call they serve. This layer
answers a plain request (``fast_forms``: ``token`` and an optional ``token_type_hint``, the
client authenticated by its secret) about a token shaped like a JWT, with the answer of the
Authlib endpoint (``introspect_access_token``, shared with it): the signature is verified once
per token and key set (``TokenSigner`` remembers verified tokens), expiry and the revocation
check (the token's ``jti`` and session, through the revocation list) on every request. For a
JWT the hint changes nothing (no refresh token has dots), so it is accepted and ignored, as
there. Anything else — an opaque token (a refresh token), another parameter, any error — goes
to Flask and Authlib untouched. A test compares both answers request by request.
"""

from __future__ import annotations

import json
from typing import Any

from idp.deps import Deps
from idp.oidc.endpoints import INACTIVE
from idp.oidc.endpoints import MAX_TOKEN_LENGTH
from idp.oidc.endpoints import introspect_access_token
from idp.web.context import request_id_from
from idp.web.fast_forms import Answer
from idp.web.fast_forms import FastEndpoint
from idp.web.fast_forms import WsgiApp
from idp.web.fast_forms import plain_request

INTROSPECTION_PATH = "/introspect"
_PARAMS = frozenset({"token", "token_type_hint"})
_MAX_BODY = MAX_TOKEN_LENGTH + 512
_INACTIVE_BODY = json.dumps(INACTIVE, sort_keys=True).encode()
# What ``json.dumps(claims, sort_keys=True)`` writes, without making an encoder per answer.
_ENCODE = json.JSONEncoder(sort_keys=True).encode


class IntrospectionFastPath(FastEndpoint):
    """``POST /introspect`` of a JWT by a client with a secret; Flask for the rest."""

    endpoint = "oidc.introspect"
    path = INTROSPECTION_PATH

    def __init__(self, behind: WsgiApp, deps: Deps) -> None:
        super().__init__(behind, deps)
        self._deps = deps

    def answer(self, environ: dict[str, Any]) -> Answer | None:
        request = plain_request(environ, params=_PARAMS, max_body=_MAX_BODY)
        if request is None:
            return None
        token = request.params.get("token", "")
        if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            return None
        client = request.client(self._deps.clients)
        if client is None:
            return None
        claims = introspect_access_token(self._deps, token, client)
        body = _ENCODE(claims).encode() if claims is not None else _INACTIVE_BODY
        return request_id_from(environ.get("HTTP_X_REQUEST_ID", "")), body
