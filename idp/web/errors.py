"""How failures reach clients: protocol endpoints answer JSON, pages answer pages, and no
stack trace ever leaves the process."""

from __future__ import annotations

import logging

from flask import Flask
from flask import Response
from flask import jsonify
from flask import render_template
from flask import request
from werkzeug.exceptions import HTTPException

from idp.web import context

log = logging.getLogger(__name__)

# Endpoints whose clients are programs: errors in the OAuth JSON shape (RFC 6749 §5.2).
_JSON_PATHS = ("/token", "/introspect", "/revoke", "/userinfo", "/api/", "/mfa/", "/evidence/")


def wants_json() -> bool:
    return request.path.startswith(_JSON_PATHS)


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
