"""Fast paths: a small WSGI layer in front of Flask for the constant documents and, through
``fast_token`` and ``fast_introspection``, the plainest token and introspection requests.

Discovery and the JWKS are bytes prepared once (at start and at each key rotation, see
``jsondoc``); answering them through Flask's request context, routing, hooks and response
objects cost ten times what the answer itself does. This layer answers a plain ``GET`` of
either with the same status, headers and body as the Flask views (``idp.oidc.views``) and the
app-wide hooks (request id, security headers, latency metric, access log) would; anything
else (another method, a query string, another path, a DPoP proof) goes to Flask unchanged.
A test compares both answers request by request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any

from idp.deps import Deps
from idp.oidc.keys import JWKS_MAX_AGE
from idp.oidc.keys import KeySnapshot
from idp.web.context import request_id_from
from idp.web.fast_introspection import INTROSPECTION_PATH
from idp.web.fast_introspection import IntrospectionFastPath
from idp.web.fast_token import TOKEN_PATH
from idp.web.fast_token import TokenFastPath
from idp.web.hygiene import headers_are_clean
from idp.web.ops import REQUEST_LATENCY
from idp.web.ops import access_log
from idp.web.security import document_headers

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Headers = list[tuple[str, str]]

DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/jwks.json"


class _Document:
    """One constant JSON document: its prepared headers for 200 and 304, its metric series."""

    def __init__(self, endpoint: str, body: bytes, etag: str, *, production: bool) -> None:
        self.endpoint = endpoint
        self.body = body
        self.etag = etag
        caching = [
            ("ETag", etag),
            ("Cache-Control", f"public, max-age={JWKS_MAX_AGE}"),
            ("Access-Control-Allow-Origin", "*"),
        ]
        # As Flask sends them: werkzeug's Response sets the type and length first, the view
        # the caching headers, then the after_request hooks (security, request id) run.
        self.ok: Headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            *caching,
            *document_headers("application/json", production=production),
        ]
        set_ = {name for name, _ in caching}  # the security hook only sets what is missing
        # The view's body-less 304 is a text/html response, so the security hook gives it the
        # page headers; werkzeug then drops its Content-Type (RFC 9110 §15.4.5).
        self.not_modified: Headers = [
            *caching,
            *(h for h in document_headers("text/html", production=production) if h[0] not in set_),
        ]
        self.latency = {
            status: REQUEST_LATENCY.labels(endpoint, "GET", status) for status in ("200", "304")
        }


class FastPaths:
    """The WSGI application to serve: fast paths first, Flask (``behind``) for the rest."""

    def __init__(self, behind: WsgiApp, deps: Deps, discovery: tuple[bytes, str]) -> None:
        self.behind = behind
        self._keyring = deps.keyring
        self._production = deps.settings.is_production
        self._discovery = _Document("oidc.discovery", *discovery, production=self._production)
        self._jwks: tuple[KeySnapshot, _Document] | None = None
        self.token = TokenFastPath(behind, deps)
        self.introspection = IntrospectionFastPath(behind, deps)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = environ.get("REQUEST_METHOD")
        if method == "POST":
            # The token and introspection layers hand a request with a DPoP proof to Flask
            # themselves (``plain_request``).
            path = environ.get("PATH_INFO")
            if path == TOKEN_PATH:
                return self.token(environ, start_response)
            if path == INTROSPECTION_PATH:
                return self.introspection(environ, start_response)
            return self.behind(environ, start_response)
        if method != "GET" or environ.get("QUERY_STRING") or "HTTP_DPOP" in environ:
            # SECURITY: a request carrying a DPoP proof (RFC 9449) goes to the protocol path,
            # which checks the proof; no fast path may answer it while ignoring the proof.
            return self.behind(environ, start_response)
        path = environ.get("PATH_INFO")
        if path == JWKS_PATH:
            document = self._jwks_document()
        elif path == DISCOVERY_PATH:
            document = self._discovery
        else:
            return self.behind(environ, start_response)
        # Malformed headers get the input guard's answer from Flask, as on every other route.
        if not headers_are_clean(environ):
            return self.behind(environ, start_response)
        return self._answer(document, environ, start_response)

    def _jwks_document(self) -> _Document:
        snapshot = self._keyring.snapshot
        prepared = self._jwks
        if prepared is None or prepared[0] is not snapshot:
            # The key ring replaced its snapshot (a rotation): prepare the new answer once.
            document = _Document(
                "oidc.jwks", snapshot.jwks_json, snapshot.jwks_etag, production=self._production
            )
            prepared = self._jwks = (snapshot, document)
        return prepared[1]

    def _answer(
        self, document: _Document, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> list[bytes]:
        started = time.perf_counter()
        request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID", ""))
        # The Flask view's test, kept as it is: a substring of the header.
        if document.etag in environ.get("HTTP_IF_NONE_MATCH", ""):
            status, headers, body = "304", document.not_modified, b""
        else:
            status, headers, body = "200", document.ok, document.body
        start_response(
            "304 NOT MODIFIED" if status == "304" else "200 OK",
            [*headers, ("X-Request-Id", request_id)],
        )
        elapsed = time.perf_counter() - started
        document.latency[status].observe(elapsed)
        access_log.info(
            "idp.http.request",
            extra={
                "request_id": request_id,
                "method": "GET",
                "path": environ["PATH_INFO"],
                "status": int(status),
                "duration_ms": round(elapsed * 1000, 2),
                "client_ip": environ.get("REMOTE_ADDR"),
            },
        )
        return [body] if body else []
