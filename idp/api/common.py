"""What every operation of the admin API shares: the blueprint, JSON answers, and the mapping
of domain refusals to HTTP statuses."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask import Response
from flask import jsonify
from flask import request
from werkzeug.exceptions import BadRequest

from idp.api.auth import AuthError
from idp.errors import IdpError
from idp.web import context

bp = Blueprint("admin_api", __name__, url_prefix="/api/admin/v1")

_NOT_FOUND = {"unknown_unit", "unknown_user", "unknown_request", "unknown_case"}
_CONFLICT = {"already_decided", "separation_of_duties", "overlapping_designation",
             "unit_exists", "citizen_id_taken", "username_taken", "case_closed",
             "not_suspended", "no_phone", "nothing_to_end"}  # fmt: skip
_FORBIDDEN = {"forbidden", "own_request"}


class InvalidBodyError(IdpError):
    code = "invalid_request"
    message = "The request body must be a JSON object with the documented fields."


@bp.errorhandler(AuthError)
def _auth_failed(error: AuthError) -> Response:
    return error.response()


@bp.errorhandler(IdpError)
def _refused(error: IdpError) -> Response:
    context.db().rollback()
    if error.code in _NOT_FOUND:
        status = 404
    elif error.code in _CONFLICT:
        status = 409
    elif error.code in _FORBIDDEN:
        status = 403
    elif error.code == "order_file_too_large":
        status = 413
    else:
        status = 400
    return json_answer({"error": error.code, "error_description": error.message}, status)


def json_answer(body: Any, status: int = 200) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def json_body() -> dict[str, Any]:
    try:
        body = request.get_json(force=True, silent=False)
    except BadRequest as exc:
        raise InvalidBodyError() from exc
    if not isinstance(body, dict):
        raise InvalidBodyError()
    return body


def text_field(body: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidBodyError(f"'{name}' must be a non-empty string.")
    return value
