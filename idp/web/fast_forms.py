"""What the protocol fast paths (``fast_token``, ``fast_introspection``) share: reading a
plain form request with a client's secret, and writing a JSON answer as the Flask app would.

"Plain" is narrow on purpose: ``POST``, no query, ``application/x-www-form-urlencoded``, a
short body of known parameters, each once, in printable ASCII, clean headers, the client
authenticated by HTTP Basic (``client_secret_basic``) or by ``client_id`` and
``client_secret`` in the body (``client_secret_post``), never both, and no ``DPoP`` header.
Anything else is left to Flask, whose input checks and Authlib's client authentication then
answer it; so is any request whose client fails to authenticate (the failure is audited
there). A fast path reads the body and leaves a fresh copy of it for Flask.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote
from urllib.parse import unquote_plus

from idp.deps import Deps
from idp.oidc.clients import ClientRegistry
from idp.oidc.clients import RegisteredClient
from idp.web.hygiene import headers_are_clean
from idp.web.ops import REQUEST_LATENCY
from idp.web.ops import access_log
from idp.web.security import document_headers

_FORM_TYPE = "application/x-www-form-urlencoded"
# A body of name=value pairs with nothing to unescape but %XX and "+".
_PLAIN_FORM = re.compile(rb"[A-Za-z_]+=[A-Za-z0-9._~%+\-]*(?:&[A-Za-z_]+=[A-Za-z0-9._~%+\-]*)*")
_BASIC = re.compile(r"Basic ([A-Za-z0-9+/]+={0,2})")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")
_CREDENTIAL_PARAMS = frozenset({"client_id", "client_secret"})
# As Authlib's JSON answers (RFC 6749 §5.1, RFC 7662 §2.2) and werkzeug send them; their
# bodies are what Flask's JSON provider writes (Authlib uses it): ``json.dumps`` with sorted
# keys.
_JSON_HEADERS = (
    ("Content-Type", "application/json"),
    ("Cache-Control", "no-store"),
    ("Pragma", "no-cache"),
)

Answer = tuple[str, bytes]  # the request id and the JSON body of a 200
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


class PlainRequest:
    """A plain form request: its parameters (credentials removed) and who says it sends it."""

    __slots__ = ("client_id", "method", "params", "secret")

    def __init__(self, method: str, client_id: str, secret: str, params: dict[str, str]) -> None:
        self.method = method
        self.client_id = client_id
        self.secret = secret
        self.params = params

    def client(
        self, clients: ClientRegistry, *, grant_type: str | None = None
    ) -> RegisteredClient | None:
        """The client, when it exists, is registered for this method (and ``grant_type``),
        and the secret matches (the keyed-hash check, constant time)."""
        client = clients.get(self.client_id)
        if client is None or self.method not in client.auth_methods:
            return None
        if grant_type is not None and not client.check_grant_type(grant_type):
            return None
        return client if client.check_client_secret(self.secret) else None


def plain_request(
    environ: dict[str, Any], *, params: frozenset[str], max_body: int
) -> PlainRequest | None:
    """The request when it is plain (see the module) with parameters among ``params``."""
    if environ.get("QUERY_STRING") or "HTTP_DPOP" in environ:
        return None
    if environ.get("CONTENT_TYPE") != _FORM_TYPE or not headers_are_clean(environ):
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    if not 0 < length <= max_body:
        return None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    if len(body) != length or not _PLAIN_FORM.fullmatch(body):
        return None
    form: dict[str, str] = {}
    known = _known(params)
    for pair in body.decode("ascii").split("&"):
        name, _, raw = pair.partition("=")
        # The pattern above let through printable characters only: a value with nothing to
        # unescape (a JWT) is already what unescaping would give.
        value = _unescaped(raw, plus=True) if "%" in raw or "+" in raw else raw
        if name in form or value is None or name not in known:
            return None  # repeated, unknown, or for Flask's input checks to look at
        form[name] = value
    authorization = environ.get("HTTP_AUTHORIZATION")
    if authorization is None:
        if not form.keys() >= _CREDENTIAL_PARAMS:
            return None
        client_id, secret = form.pop("client_id"), form.pop("client_secret")
        method = "client_secret_post"
    else:
        credentials = _basic_credentials(authorization)
        if credentials is None or not _CREDENTIAL_PARAMS.isdisjoint(form):
            return None
        client_id, secret = credentials
        method = "client_secret_basic"
    if not client_id or not secret:
        return None
    return PlainRequest(method, client_id, secret, form)


@functools.cache
def _known(params: frozenset[str]) -> frozenset[str]:
    return params | _CREDENTIAL_PARAMS


def _basic_credentials(header: str) -> tuple[str, str] | None:
    """RFC 6749 §2.3.1: both parts form-urlencoded, joined by a colon, base64'd; unescaped as
    Authlib does (percent-escapes only), and only when printable ASCII."""
    match = _BASIC.fullmatch(header)
    if match is None:
        return None
    try:
        decoded = base64.b64decode(match.group(1), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    client_id_value, secret_value = _unescaped(client_id), _unescaped(secret)
    if not colon or not client_id_value or not secret_value:
        return None
    return client_id_value, secret_value


def _unescaped(raw: str, *, plus: bool = False) -> str | None:
    """A form value (``plus``: "+" is a space) or a Basic credential unescaped, when it is
    printable ASCII (or empty); None for anything else."""
    if "%" in raw or (plus and "+" in raw):
        try:
            value = unquote_plus(raw, errors="strict") if plus else unquote(raw, errors="strict")
        except UnicodeDecodeError:
            return None
    else:
        value = raw  # nothing to unescape: unquoting would give it back unchanged
    return value if not value or _PRINTABLE_ASCII.fullmatch(value) else None


class FastEndpoint:
    """One protocol endpoint's fast path: ``answer`` gives the JSON of a 200, or None for
    Flask (``behind``) to answer the request; this writes the answer as Flask's hooks would
    (security headers, request id, latency metric, access log)."""

    endpoint: str  # Flask's endpoint name, for the latency metric
    path: str

    def __init__(self, behind: WsgiApp, deps: Deps) -> None:
        self.behind = behind
        self._headers = list(_JSON_HEADERS)
        self._after = document_headers("application/json", production=deps.settings.is_production)
        self._latency = REQUEST_LATENCY.labels(self.endpoint, "POST", "200")

    def answer(self, environ: dict[str, Any]) -> Answer | None:
        raise NotImplementedError

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        started = time.perf_counter()
        try:
            answer = self.answer(environ)
        except Exception:
            answer = None
        if answer is None:
            return self.behind(environ, start_response)
        request_id, body = answer
        start_response(
            "200 OK",
            [
                *self._headers,
                ("Content-Length", str(len(body))),
                *self._after,
                ("X-Request-Id", request_id),
            ],
        )
        elapsed = time.perf_counter() - started
        self._latency.observe(elapsed)
        access_log.info(
            "idp.http.request",
            extra={
                "request_id": request_id,
                "method": "POST",
                "path": self.path,
                "status": 200,
                "duration_ms": round(elapsed * 1000, 2),
                "client_ip": environ.get("REMOTE_ADDR"),
            },
        )
        return [body]
