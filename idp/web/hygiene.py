"""Refuse malformed input before any view reads it: control characters in parameters and
undecodable Basic credentials get a clear 400/401 answer instead of reaching the database."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any
from typing import TypeVar
from urllib.parse import unquote

from flask import Flask
from flask import Response
from flask import jsonify
from flask import render_template
from flask import request

from idp.settings import Settings
from idp.text import has_control_characters
from idp.web.errors import wants_json

View = TypeVar("View", bound=Callable[..., Any])

CLIENT_AUTHENTICATING_PATHS = frozenset({"/token", "/introspect", "/revoke"})


BodyLimit = Callable[[Settings], int]


def large_body(limit: BodyLimit) -> Callable[[View], View]:
    """Mark a view that takes an upload larger than the app-wide body limit: the limit is
    raised before anything (this module included) reads the body."""

    def mark(view: View) -> View:
        view.body_limit = limit  # type: ignore[attr-defined]
        return view

    return mark


def _invalid_request() -> Response:
    if wants_json():
        response = jsonify(
            {"error": "invalid_request", "error_description": "Malformed request parameter."}
        )
    else:
        response = Response(render_template("error.html", code="invalid_request", description=None))
    response.status_code = 400
    return response


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
    @app.before_request
    def _refuse_malformed_input() -> Response | None:
        view = app.view_functions.get(request.endpoint or "")
        limit: BodyLimit | None = getattr(view, "body_limit", None)
        if limit is not None:
            request.max_content_length = limit(app.extensions["idp"].settings)
        for values in (request.args, request.form if request.method == "POST" else None):
            if values is None:
                continue
            for key, value in values.items(multi=True):
                if has_control_characters(key) or has_control_characters(value):
                    return _invalid_request()
        if request.path in CLIENT_AUTHENTICATING_PATHS:
            header = request.headers.get("Authorization", "")
            if header[:6].lower() == "basic " and not _basic_credentials_are_readable(header):
                return _invalid_client()
        return None
