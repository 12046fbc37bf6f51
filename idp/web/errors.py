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
from idp.web.outages import RETRY_AFTER_SECONDS
from idp.web.outages import is_database_unavailable

log = logging.getLogger(__name__)

# Endpoints whose clients are programs: errors in the OAuth JSON shape (RFC 6749 §5.2).
_JSON_PATHS = (
    "/token",
    "/par",
    "/bc-authorize",
    "/introspect",
    "/revoke",
    "/userinfo",
    "/api/",
    "/mfa/",
    "/evidence/",
)


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


def database_unavailable() -> Response:
    """The 503 for a database that could not be reached: try again in a moment."""
    if wants_json():
        response = jsonify(
            {
                "error": "temporarily_unavailable",
                "error_description": "The service is briefly unavailable; try again.",
            }
        )
    else:
        response = Response(
            render_template("error.html", code="temporarily_unavailable", description=None)
        )
    response.status_code = 503
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _answer_for(error: BaseException) -> Response | None:
    """The answer owed for a failure that is not a bug of ours, if it is one."""
    if isinstance(error, RecursionError | UnicodeError | DataError):
        # A second net behind the input guard (idp.web.hygiene): input that a parser or
        # the database could not take is the client's fault.
        log.warning("idp.web.unreadable_input", extra={"request_id": context.request_id()})
        return malformed_input()
    if is_database_unavailable(error):
        log.warning("idp.web.database_unavailable", extra={"request_id": context.request_id()})
        return database_unavailable()
    return None


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> Response:
        # Flask hands what failed after the view (the commit) over as a wrapped 500.
        cause = getattr(error, "original_exception", None)
        answer = _answer_for(cause) if cause is not None else None
        if answer is not None:
            return answer
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

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        answer = _answer_for(error)
        if answer is not None:
            return answer
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
