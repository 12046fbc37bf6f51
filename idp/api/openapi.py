"""The OpenAPI 3.1 document of ``/api/admin/v1/``: the paths are written here, every body and
answer is a model of ``idp.api.schemas`` (its JSON Schema is the component); a test checks that
the routes, the paths and the models agree."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from idp.api import schemas
from idp.roles.models import RequestStatus

REF_TEMPLATE = "#/components/schemas/{model}"
_ERROR = {"$ref": "#/components/responses/Error"}
# Every operation: malformed input (400), authentication (401, 403), and a database that was
# briefly unreachable (503 with Retry-After).
_AUTH = {"400": _ERROR, "401": _ERROR, "403": _ERROR, "503": _ERROR}


def _ref(model: type[Any]) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(model)}}}


def _form(model: type[BaseModel]) -> dict[str, Any]:
    return {"required": True, "content": {"multipart/form-data": {"schema": _ref(model)}}}


def _ok(model: type[BaseModel], status: str = "200", description: str = "Done") -> dict[str, Any]:
    return {
        status: {
            "description": description,
            "content": {"application/json": {"schema": _ref(model)}},
        }
    }


@cache
def component_schemas() -> dict[str, Any]:
    """The JSON Schema of every model (requests as they are validated, answers as they are
    serialised), with the enumerations they use."""
    _, top = models_json_schema(
        [(model, "validation") for model in schemas.REQUESTS]
        + [(model, "serialization") for model in schemas.ANSWERS],
        ref_template=REF_TEMPLATE,
    )
    return dict(top["$defs"])


_STRING = {"type": "string"}
_DAY = {"type": "string", "description": "D/M/YYYY (Buddhist era) or YYYY-MM-DD, Thai time"}
_TRAIL_FILTERS = [
    {"name": "who", "in": "query", "schema": _STRING, "description": "username: actor or subject"},
    {
        "name": "event",
        "in": "query",
        "schema": _STRING,
        "description": "an event name, or a family ending with a dot (roles.)",
    },
    {"name": "from", "in": "query", "schema": _DAY},
    {"name": "to", "in": "query", "schema": _DAY, "description": "included"},
    {"name": "unit", "in": "query", "schema": _STRING},
    {"name": "before", "in": "query", "schema": {"type": "integer"}},
]
_REQUEST_ID = {"name": "request_id", "in": "path", "required": True, "schema": _STRING}
_ON_BEHALF_OF = {"type": "string", "description": schemas.ON_BEHALF_OF}
_CASE_ID = {"name": "case_id", "in": "path", "required": True, "schema": _STRING}
_ON_BEHALF_OF_QUERY = {"name": "on_behalf_of", "in": "query", "schema": _ON_BEHALF_OF}
_USERNAME = {"name": "username", "in": "path", "required": True, "schema": _STRING}


def document(issuer: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Soft Token IdP admin API",
            "version": "1",
            "description": (
                "Units, accounts, designation requests with the head of unit's written order, "
                "and administrative roles. Access tokens of this IdP (Bearer; or, for a token "
                "bound to a key, the DPoP scheme with a proof carrying 'ath', RFC 9449): a "
                "user's token "
                "with the 'admin' scope from a login confirmed on the phone acts within the "
                "user's administrative roles; a client's token with the 'helpdesk' scope acts "
                "as helpdesk, for the member of staff named by 'on_behalf_of' (in the JSON "
                "body, or the query for other requests) when given. Errors are JSON "
                "{error, error_description}: 400 bad input, 401 "
                "no or bad token (or 'insufficient_user_authentication', RFC 9470; "
                "'invalid_dpop_proof' or 'use_dpop_nonce' for a DPoP-bound token, RFC 9449), "
                "403 not "
                "allowed, 404 unknown, 409 a rule refused it, 413 too large."
            ),
        },
        "servers": [{"url": f"{issuer}/api/admin/v1"}],
        "security": [{"bearer": []}, {"dpop": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (RFC 9068)"},
                # RFC 9449 §7: a DPoP-bound token, with a proof in the DPoP header.
                "dpop": {
                    "type": "http",
                    "scheme": "DPoP",
                    "bearerFormat": "JWT (RFC 9068) with cnf.jkt",
                    "description": "Authorization: DPoP <token>, and a DPoP header with a "
                    "proof (ES256 or PS256) for this method and URL whose 'ath' is the "
                    "token's SHA-256.",
                },
            },
            "schemas": component_schemas(),
            "responses": {
                "Error": {
                    "description": "Refused",
                    "content": {"application/json": {"schema": _ref(schemas.Error)}},
                }
            },
        },
        "paths": _paths(),
    }


def _op(
    summary: str,
    responses: dict[str, Any],
    *,
    parameters: list[Any] | None = None,
    body: dict[str, Any] | None = None,
    errors: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One operation: its answers, the common refusals, and the other statuses it may give."""
    operation: dict[str, Any] = {"summary": summary}
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = body
    operation["responses"] = {**responses, **_AUTH, **{status: _ERROR for status in errors}}
    return operation


def _paths() -> dict[str, Any]:
    s = schemas
    return {
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI 3.1"}},
            }
        },
        "/units": {
            "get": _op("Units the caller may read", _ok(s.Units)),
            "post": _op(
                "Add a unit (CGD)",
                _ok(s.Unit, "201", "Added"),
                body=_json_body(s.NewUnit),
                errors=("404", "409"),
            ),
        },
        "/users": {
            "post": _op(
                "Issue an account: a username and a temporary password shown once",
                _ok(s.IssuedAccount, "201", "Issued"),
                body=_json_body(s.NewAccount),
                errors=("404", "409"),
            ),
        },
        "/users/import": {
            "post": _op(
                "Issue accounts from CSV, with a report per row",
                _ok(s.ImportReport),
                body={"required": True, "content": {"text/csv": {"schema": _STRING}}},
                errors=("413",),
            ),
        },
        "/users/{username}/roles": {
            "get": _op(
                "Roles a user holds today, in units the caller may read",
                _ok(s.UserRoles),
                parameters=[_USERNAME],
                errors=("404",),
            ),
        },
        "/designations": {
            "get": _op(
                "Latest requests of the units the caller may read",
                _ok(s.Designations),
                parameters=[{"name": "status", "in": "query", "schema": _ref(RequestStatus)}],
            ),
            "post": _op(
                "Submit a designation with the written order (head of unit)",
                _ok(s.DesignationRequest, "201", "Submitted"),
                body=_form(s.DesignationForm),
                errors=("404", "409", "413"),
            ),
        },
        "/designations/{request_id}": {
            "get": _op(
                "One request", _ok(s.DesignationRequest), parameters=[_REQUEST_ID], errors=("404",)
            ),
        },
        "/designations/{request_id}/order": {
            "get": _op(
                "The written order, as the type its bytes showed",
                {
                    "200": {
                        "description": "The file",
                        "content": {"application/pdf": {}, "image/png": {}, "image/jpeg": {}},
                    }
                },
                parameters=[_REQUEST_ID],
                errors=("404",),
            ),
        },
        "/designations/{request_id}/approve": {
            "post": _op(
                "Approve: the order is carried out (a role assigned, ended or changed); "
                "the person must change password",
                _ok(s.Approval),
                parameters=[_REQUEST_ID],
                body=_json_body(s.Decision),
                errors=("404", "409"),
            ),
        },
        "/designations/{request_id}/reject": {
            "post": _op(
                "Reject, with a reason",
                _ok(s.DesignationRequest),
                parameters=[_REQUEST_ID],
                body=_json_body(s.Decision),
                errors=("404", "409"),
            ),
        },
        "/users/{username}/suspend-phone": {
            "post": _op(
                "Suspend the user's phone (helpdesk): every session and token it "
                "confirmed ends at once; opens the lost-device case",
                {
                    **_ok(s.SuspendedPhone, "201", "Suspended; the case"),
                    **_ok(s.SuspendedPhone, "200", "Suspended before; the case"),
                },
                parameters=[_USERNAME],
                body=_json_body(s.PhoneSuspension),
                errors=("404", "409"),
            ),
        },
        "/users/{username}/suspend": {
            "post": _op(
                "Suspend the account (helpdesk): every session and token ends",
                _ok(s.AccountSuspended),
                parameters=[_USERNAME],
                body=_json_body(s.Reason),
                errors=("404",),
            ),
        },
        "/users/{username}/lift-suspension": {
            "post": _op(
                "Lift an account suspension (CGD, or the unit's treasury office); a "
                "person outside the caller's units is answered as unknown (404)",
                _ok(s.SuspensionLifted),
                parameters=[_USERNAME],
                body=_json_body(s.Reason),
                errors=("404", "409"),
            ),
        },
        "/users/{username}/access-pass": {
            "post": _op(
                "A one-time Temporary Access Pass to start registering a new phone",
                _ok(s.AccessPass, "201", "Shown once"),
                parameters=[_USERNAME, _ON_BEHALF_OF_QUERY],
                errors=("404",),
            ),
        },
        "/cases": {
            "get": _op(
                "Open lost-device cases (all with ?all, overdue ones with ?overdue)",
                _ok(s.Cases),
                parameters=[
                    {"name": "all", "in": "query", "schema": _STRING},
                    {"name": "overdue", "in": "query", "schema": _STRING},
                    _ON_BEHALF_OF_QUERY,
                ],
            ),
        },
        "/cases/{case_id}/letter": {
            "post": _op(
                "The head of unit's letter (PDF, PNG or JPEG): closes the case",
                _ok(s.Case),
                parameters=[_CASE_ID, _ON_BEHALF_OF_QUERY],
                body=_form(s.LetterForm),
                errors=("404", "409", "413"),
            ),
        },
        "/cases/{case_id}/declare-lost": {
            "post": _op(
                "The head of unit says the phone of an investigation was lost: the "
                "letter becomes due, counted from lost_at",
                _ok(s.Case),
                parameters=[_CASE_ID],
                body=_json_body(s.LossDeclaration),
                errors=("404", "409"),
            ),
        },
        "/cases/{case_id}/close": {
            "post": _op(
                "Close an investigation with its finding (helpdesk); the phone stays suspended",
                _ok(s.Case),
                parameters=[_CASE_ID],
                body=_json_body(s.Finding),
                errors=("404", "409"),
            ),
        },
        "/audit/events": {
            "get": _op(
                "The audit trail, newest first, with the hash chain's status (CGD and "
                "auditors; an auditor scoped to units or a province gets their units' "
                "events only)",
                _ok(s.AuditPage),
                parameters=_TRAIL_FILTERS,
            ),
        },
        "/audit/events.csv": {
            "get": _op(
                "The same events as CSV (UTF-8 with BOM); the export is audited",
                {"200": {"description": "CSV", "content": {"text/csv": {}}}},
                parameters=_TRAIL_FILTERS,
            ),
        },
        "/admin-grants": {
            "post": _op(
                "Grant an administrative role (CGD)",
                _ok(s.AdminGrant, "201", "Granted"),
                body=_json_body(s.NewAdminGrant),
                errors=("404", "409"),
            ),
        },
    }
