"""How failures reach clients: protocol endpoints answer JSON, pages answer pages, and no
stack trace ever leaves the process."""

from __future__ import annotations

import logging

from flask import Flask
from flask import Response
from flask import jsonify
from flask import render_template
from flask import request
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException

from idp.web import context

log = logging.getLogger(__name__)

# Endpoints whose clients are programs: errors in the OAuth JSON shape (RFC 6749 §5.2).
_JSON_PATHS = ("/token", "/introspect", "/revoke", "/userinfo", "/api/", "/mfa/", "/evidence/")


def wants_json() -> bool:
    return request.path.startswith(_JSON_PATHS)


def malformed_input() -> Response:
    """The 400 for input nothing of ours accepts: OAuth's JSON shape (which the admin API
    shares) for programs, a page for people."""
    if wants_json():
        response = jsonify(
            {"error": "invalid_request", "error_description": "Malformed request parameter."}
        )
    else:
        response = Response(render_template("error.html", code="invalid_request", description=None))
    response.status_code = 400
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        if wants_json():
            code = "invalid_request" if status in (400, 413) else _generic(status)
            body = {"error": code}
            if status == 413:
                body["error_description"] = "The request body is too large."
            response = jsonify(body)
        else:
            code = "csrf" if error.description == "csrf" else _generic(status)
            response = Response(render_template("error.html", code=code, description=None))
        response.status_code = status
        return response

    @app.errorhandler(RecursionError)
    @app.errorhandler(UnicodeError)
    @app.errorhandler(DataError)
    def _unreadable_input(error: Exception) -> Response:
        # A second net behind the input guard (idp.web.hygiene): input that a parser or the
        # database could not take is the client's fault, never a 500.
        log.warning("idp.web.unreadable_input", extra={"request_id": context.request_id()},
                    exc_info=error)  # fmt: skip
        return malformed_input()

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        log.exception("idp.web.unhandled_error", extra={"request_id": context.request_id()})
        if wants_json():
            response = jsonify({"error": "server_error"})
        else:
            try:
                page = render_template("error.html", code="server_error", description=None)
            except Exception:  # the page itself failed: answer without it
                log.exception("idp.web.error_page_failed")
                page = "Internal error / เกิดข้อผิดพลาด"
            response = Response(page, mimetype="text/html")
        response.status_code = 500
        return response


def _generic(status: int) -> str:
    codes = {404: "not_found", 405: "method_not_allowed", 413: "too_large", 500: "server_error"}
    return codes.get(status, "error")
