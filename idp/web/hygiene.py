"""Refuse malformed input before any view reads it, for every route in one place.

Control characters, lone surrogates and bytes that are not UTF-8, anywhere a client can put
them (path, query, form, JSON body, headers, cookies), and nesting deep enough to exhaust the
parser's recursion (``claims=[[[[…``) get a clear 400 instead of reaching a view, a parser or
the database. Protocol endpoints and the admin API answer in their JSON error shape, pages
with a page.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from collections.abc import Iterator
from typing import Any
from typing import TypeVar
from urllib.parse import unquote
from urllib.parse import unquote_to_bytes

from flask import Flask
from flask import Request
from flask import Response
from flask import jsonify
from flask import request

from idp.roles.orders import OrderDocument
from idp.roles.orders import accept_order
from idp.settings import Settings
from idp.text import has_control_characters
from idp.web import context
from idp.web.errors import malformed_input

View = TypeVar("View", bound=Callable[..., Any])

CLIENT_AUTHENTICATING_PATHS = frozenset(
    {"/token", "/par", "/bc-authorize", "/introspect", "/revoke"}
)

# Deep enough for any claims request or authorization details we accept (they nest 3-4
# levels), far below the depth at which a recursive parser fails.
MAX_NESTING = 32
# Browsers and proxies cap URLs near 8 KiB; ours are far shorter.
MAX_QUERY_BYTES = 16 * 1024
MAX_PARAMETERS = 200

_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Header values (RFC 9110 §5.5): no control characters but horizontal tab.
_HEADER_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class MalformedInputError(ValueError):
    """The request carries something no well-formed request of ours contains."""


BodyLimit = Callable[[Settings], int]


def large_body(limit: BodyLimit) -> Callable[[View], View]:
    """Mark a view that takes an upload larger than the app-wide body limit: the limit is
    raised before anything (this module included) reads the body."""

    def mark(view: View) -> View:
        view.body_limit = limit  # type: ignore[attr-defined]
        return view

    return mark


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting in ``text``, skipping JSON string literals (a linear scan,
    so that measuring it cannot itself recurse)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def validate_text(value: str) -> None:
    """Raises MalformedInputError for control characters, lone surrogates or deep nesting."""
    if has_control_characters(value) or _SURROGATE.search(value):
        raise MalformedInputError()
    if ("[" in value or "{" in value) and nesting_depth(value) > MAX_NESTING:
        raise MalformedInputError()


def _strings_in(document: Any) -> Iterator[str]:
    # Iterative: the document is already known to be shallow, but a wide one stays cheap.
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def _decode_utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedInputError() from exc


def _validate_urlencoded(raw: bytes) -> None:
    # Werkzeug decodes parameters with replacement characters; the raw bytes tell whether
    # they were UTF-8 at all.
    for pair in raw.split(b"&"):
        _decode_utf8(unquote_to_bytes(pair.replace(b"+", b" ")))


def _looks_like_json(req: Request, raw: bytes) -> bool:
    # The admin API parses bodies as JSON whatever their declared type.
    return req.is_json or raw.lstrip()[:1] in (b"{", b"[")


def headers_are_clean(environ: dict[str, Any]) -> bool:
    """No control character in any header value (cookies included) or the content type."""
    # One scan over all header values (tab, the one control character they may hold, joins).
    headers = "\t".join([value for key, value in environ.items() if key[:5] == "HTTP_"])
    headers += "\t" + str(environ.get("CONTENT_TYPE", ""))
    return _HEADER_CONTROL.search(headers) is None


def validate_request(req: Request) -> None:
    """Raises MalformedInputError when any part of ``req`` is malformed."""
    environ = req.environ
    path = _decode_utf8(str(environ.get("PATH_INFO", "")).encode("latin-1", "replace"))
    # No route of ours has a replacement character: one here stood for bytes that were not
    # UTF-8 before something decoded them leniently.
    if "\ufffd" in path:
        raise MalformedInputError()
    query = str(environ.get("QUERY_STRING", "")).encode("latin-1", "replace")
    if len(query) > MAX_QUERY_BYTES or query.count(b"&") >= MAX_PARAMETERS:
        raise MalformedInputError()
    _validate_urlencoded(query)
    if not headers_are_clean(environ):
        raise MalformedInputError()
    values: list[str] = [path, *req.args.keys(), *req.args.values()]
    if req.method in ("POST", "PUT", "PATCH", "DELETE"):
        mimetype = req.mimetype
        if mimetype == "application/x-www-form-urlencoded":
            _validate_urlencoded(req.get_data(cache=True))
        if mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            # A part whose name werkzeug cannot read (a quoted backslash) has the key None.
            for key, value in req.form.items(multi=True):
                values.extend((key or "", value))
            for key, upload in req.files.items(multi=True):
                values.extend((key or "", upload.filename or ""))
        else:
            raw = req.get_data(cache=True)
            if raw and _looks_like_json(req, raw):
                body = _decode_utf8(raw)
                if nesting_depth(body) > MAX_NESTING:
                    raise MalformedInputError()
                try:
                    document = json.loads(body)
                except ValueError:
                    document = None  # the view answers its own "not JSON" error
                values.extend(_strings_in(document))
    validate_text("\t".join(values))
    for value in values:
        if ("[" in value or "{" in value) and nesting_depth(value) > MAX_NESTING:
            raise MalformedInputError()


def _invalid_client() -> Response:
    response = jsonify(
        {"error": "invalid_client", "error_description": "Malformed client credentials."}
    )
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Basic error="invalid_client"'
    return response


def _basic_credentials_are_readable(header: str) -> bool:
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    if ":" not in decoded:
        return False
    # RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
    return not any(has_control_characters(unquote(part)) for part in decoded.split(":", 1))


def init_app(app: Flask) -> None:
    # First of the app's own hooks: nothing before it may read parameters.
    @app.before_request
    def _refuse_malformed_input() -> Response | None:
        view = app.view_functions.get(request.endpoint or "")
        limit: BodyLimit | None = getattr(view, "body_limit", None)
        if limit is not None:
            request.max_content_length = limit(app.extensions["idp"].settings)
        try:
            validate_request(request._get_current_object())  # type: ignore[attr-defined]
        except MalformedInputError:
            return malformed_input()
        if request.path in CLIENT_AUTHENTICATING_PATHS:
            header = request.headers.get("Authorization", "")
            if header[:6].lower() == "basic " and not _basic_credentials_are_readable(header):
                return _invalid_client()
        return None


def uploaded_order(field: str) -> OrderDocument:
    """The file of a multipart form's ``field`` as an order (or a lost phone's letter), read
    no further than one byte past the limit: a larger one is refused, not buffered.

    Raises:
        OrderFileError (none sent, or not a PDF or image), OrderTooLargeError
    """
    max_bytes = context.deps().settings.order_max_bytes
    upload = request.files.get(field)
    if upload is None:
        return accept_order("", b"", max_bytes=max_bytes)
    return accept_order(upload.filename or "", upload.read(max_bytes + 1), max_bytes=max_bytes)
