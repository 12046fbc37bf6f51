"""The OpenAPI 3.1 document of ``/api/admin/v1/``; a test checks it names every route."""

from __future__ import annotations

from typing import Any

_ERROR = {"$ref": "#/components/responses/Error"}
# Every operation: malformed input (400), authentication (401, 403), and a database that was
# briefly unreachable (503 with Retry-After).
_AUTH = {"400": _ERROR, "401": _ERROR, "403": _ERROR, "503": _ERROR}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _ok(schema: dict[str, Any], status: str = "200", description: str = "Done") -> dict[str, Any]:
    return {
        status: {"description": description, "content": {"application/json": {"schema": schema}}}
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_STRING = {"type": "string"}
_DATE = {"type": "string", "format": "date", "description": "Christian era, YYYY-MM-DD"}
_ORDER_KIND = {
    "enum": ["designate", "end", "change"],
    "description": "designate a person, end a role from a day, or change one role for another",
}
_DAY = {"type": "string", "description": "D/M/YYYY (Buddhist era) or YYYY-MM-DD, Thai time"}
_TRAIL_FILTERS = [
    {"name": "who", "in": "query", "schema": _STRING, "description": "username: actor or subject"},
    {"name": "event", "in": "query", "schema": _STRING,
     "description": "an event name, or a family ending with a dot (roles.)"},
    {"name": "from", "in": "query", "schema": _DAY},
    {"name": "to", "in": "query", "schema": _DAY, "description": "included"},
    {"name": "unit", "in": "query", "schema": _STRING},
    {"name": "before", "in": "query", "schema": {"type": "integer"}},
]  # fmt: skip
_REQUEST_ID = {"name": "request_id", "in": "path", "required": True, "schema": _STRING}
_LOST_AT = {
    "type": "string",
    "description": "When the phone was lost: an ISO 8601 date (2026-11-20) or date-time "
    "(2026-11-20T18:30, Thai time without an offset). Default: now. A future value is "
    "refused (400 invalid_lost_at). The letter's 3 Thai working days count from this day.",
}
_ON_BEHALF_OF = {
    "type": "string",
    "description": "For an integration's token (helpdesk scope) only: the username of the "
    "member of staff it acts for, who must hold the helpdesk role; recorded as the actor, "
    "with the client, in the audit trail. A user's own token may not send it (400).",
}
_REASON = {"type": "object", "properties": {"reason": _STRING, "on_behalf_of": _ON_BEHALF_OF}}
_SUSPENSION_REASON = {
    "type": "object",
    "required": ["reason"],
    "properties": {
        "reason": {"enum": ["lost", "stolen", "compromised", "other"]},
        "lost_at": _LOST_AT,
        "verified": {
            "type": "array",
            "items": {"enum": ["citizen_id", "unit", "callback", "head_of_unit"]},
            "description": "What was verified of the caller, recorded; a suspension never "
            "waits for it",
        },
        "on_behalf_of": _ON_BEHALF_OF,
    },
}
_CASE_ID = {"name": "case_id", "in": "path", "required": True, "schema": _STRING}
_ON_BEHALF_OF_QUERY = {"name": "on_behalf_of", "in": "query", "schema": _ON_BEHALF_OF}
_USERNAME = {"name": "username", "in": "path", "required": True, "schema": _STRING}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": _STRING, "error_description": _STRING},
    },
    "Unit": {
        "type": "object",
        "required": ["code", "name_th", "province", "treasury_office"],
        "properties": {
            "code": {"type": "string", "pattern": "^[0-9]{10}$"},
            "name_th": _STRING,
            "name_en": _STRING,
            "province": _STRING,
            "treasury_office": _STRING,
        },
    },
    "NewAccount": {
        "type": "object",
        "required": ["citizen_id", "given_name_th", "family_name_th", "unit_code"],
        "properties": {
            "citizen_id": {"type": "string", "pattern": "^[0-9๐-๙]{13}$"},
            "given_name_th": _STRING,
            "family_name_th": _STRING,
            "given_name_en": _STRING,
            "family_name_en": _STRING,
            "unit_code": _STRING,
            "email": _STRING,
            "legacy_token_key": {"type": "boolean"},
            "username": {"type": "string", "description": "Made from the English names if absent"},
        },
    },
    "IssuedAccount": {
        "type": "object",
        "properties": {
            "username": _STRING,
            "sub": _STRING,
            "temporary_password": {"type": "string", "description": "Shown once"},
        },
    },
    "ImportReport": {
        "type": "object",
        "properties": {
            "issued": {"type": "integer"},
            "rows": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "row": {"type": "integer"},
                        "issued": {"type": "boolean"},
                        "username": _STRING,
                        "temporary_password": _STRING,
                        "error": _STRING,
                        "error_description": _STRING,
                    },
                },
            },
        },
    },
    "GfmsRole": {
        "type": "object",
        "required": ["unit", "role"],
        "properties": {
            "unit": _STRING,
            "role": {"enum": ["recorder", "approve-1", "approve-2"]},
            "substitute_for": {"type": "string", "description": "sub of the person acted for"},
        },
    },
    "DesignationRequest": {
        "description": "For kind end, role ends from valid_from on; for kind change, ends_role "
        "ends the day before valid_from and role starts on it",
        "type": "object",
        "properties": {
            "id": _STRING,
            "unit_code": _STRING,
            "user_id": _STRING,
            "kind": _ORDER_KIND,
            "role": {"enum": ["recorder", "approve-1", "approve-2"]},
            "ends_role": {"enum": ["recorder", "approve-1", "approve-2", None]},
            "valid_from": _DATE,
            "valid_until": {"type": ["string", "null"], "format": "date"},
            "substitute_for": {"type": ["string", "null"]},
            "order_number": _STRING,
            "order_date": _DATE,
            "order_filename": _STRING,
            "order_media_type": _STRING,
            "order_size": {"type": "integer"},
            "order_sha256": _STRING,
            "note": _STRING,
            "status": {"enum": ["pending", "approved", "rejected"]},
            "submitted_by": _STRING,
            "submitted_at": {"type": "string", "format": "date-time"},
            "decided_by": {"type": ["string", "null"]},
            "decided_at": {"type": ["string", "null"], "format": "date-time"},
            "decision_reason": {"type": ["string", "null"]},
        },
    },
    "AuditEvent": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "seq": {"type": ["integer", "null"], "description": "position in the chain"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "event": _STRING,
            "outcome": {"enum": ["success", "failure"]},
            "actor": {"type": ["string", "null"], "description": "sub or client id"},
            "client_id": {"type": ["string", "null"]},
            "client_ip": {"type": ["string", "null"]},
            "request_id": {"type": ["string", "null"]},
            "details": {"type": "object"},
            "chain_hash": {"type": ["string", "null"]},
        },
    },
    "ChainStatus": {
        "type": "object",
        "properties": {
            "intact": {"type": "boolean"},
            "checked": {"type": "integer"},
            "unsealed": {"type": "integer"},
            "broken_at_seq": {"type": ["integer", "null"]},
            "reason": {"type": ["string", "null"]},
            "head_seq": {"type": "integer"},
            "head_hash": _STRING,
        },
    },
    "Assignment": {
        "type": "object",
        "properties": {
            "id": _STRING,
            "unit_code": _STRING,
            "role": _STRING,
            "valid_from": _DATE,
            "valid_until": {"type": ["string", "null"]},
            "substitute_for": {"type": ["string", "null"]},
            "request_id": _STRING,
        },
    },
    "Case": {
        "type": "object",
        "properties": {
            "id": _STRING,
            "username": _STRING,
            "reason": {"enum": ["lost", "stolen", "compromised", "other"]},
            "kind": {
                "enum": ["lost", "investigation"],
                "description": "lost: lost or stolen, the letter is due; investigation: "
                "compromised, 'this was not me' or other, no letter unless declared lost",
            },
            "channel": {"enum": ["helpdesk", "api", "self", "not_me"]},
            "verified": {"type": "array", "items": _STRING},
            "reported_at": {"type": "string", "format": "date-time"},
            "lost_at": {
                "type": "string",
                "description": "The loss: a date-time in Thai time (+07:00) when the time is "
                "known, else the date",
            },
            "letter_due": {
                "type": ["string", "null"],
                "format": "date",
                "description": "3 Thai civil-service working days after the day of the loss",
            },
            "overdue": {"type": "boolean"},
            "overdue_when_reported": {
                "type": "boolean",
                "description": "The letter's last day had passed when the loss was reported",
            },
            "closed_at": {"type": ["string", "null"], "format": "date-time"},
            "letter_received_at": {"type": ["string", "null"], "format": "date-time"},
            "letter_sha256": {"type": ["string", "null"]},
        },
    },
    "AdminGrant": {
        "type": "object",
        "required": ["username", "role"],
        "properties": {
            "username": _STRING,
            "role": {
                "enum": ["cgd-admin", "treasury-admin", "head-of-unit", "helpdesk", "auditor"]
            },
            "province": {"type": "string", "description": "For a treasury administrator"},
            "unit_code": {"type": "string", "description": "For a head of unit"},
        },
    },
}


def document(issuer: str) -> dict[str, Any]:
    designation_form = {
        "type": "object",
        "required": [
            "unit_code",
            "username",
            "role",
            "valid_from",
            "order_number",
            "order_date",
            "order_file",
        ],
        "properties": {
            "unit_code": _STRING,
            "username": _STRING,
            "kind": _ORDER_KIND,
            "role": {
                "enum": ["recorder", "approve-1", "approve-2"],
                "description": "the role designated, ended (kind end) or taken on (kind change)",
            },
            "ends_role": {
                "enum": ["recorder", "approve-1", "approve-2"],
                "description": "kind change: the role given up",
            },
            "valid_from": {
                "type": "string",
                "format": "date",
                "description": "kind end and change: the first day without the old role "
                "(today at the latest when approved later)",
            },
            "valid_until": _DATE,
            "substitute_for": {"type": "string", "description": "username acted for"},
            "order_number": _STRING,
            "order_date": _DATE,
            "note": _STRING,
            "order_file": {
                "type": "string",
                "format": "binary",
                "description": "PDF, PNG or JPEG, recognised by its bytes",
            },
        },
    }
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
            "schemas": _SCHEMAS,
            "responses": {
                "Error": {
                    "description": "Refused",
                    "content": {"application/json": {"schema": _ref("Error")}},
                }
            },
        },
        "paths": {
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1"}},
                }
            },
            "/units": {
                "get": {
                    "summary": "Units the caller may read",
                    "responses": {
                        **_ok(
                            {
                                "type": "object",
                                "properties": {"units": {"type": "array", "items": _ref("Unit")}},
                            }
                        ),
                        **_AUTH,
                    },
                },
                "post": {
                    "summary": "Add a unit (CGD)",
                    "requestBody": _json_body(_ref("Unit")),
                    "responses": {
                        **_ok(_ref("Unit"), "201", "Added"),
                        **_AUTH,
                        "400": _ERROR,
                        "409": _ERROR,
                    },
                },
            },
            "/users": {
                "post": {
                    "summary": "Issue an account: a username and a temporary password shown once",
                    "requestBody": _json_body(_ref("NewAccount")),
                    "responses": {
                        **_ok(_ref("IssuedAccount"), "201", "Issued"),
                        **_AUTH,
                        "400": _ERROR,
                        "404": _ERROR,
                        "409": _ERROR,
                    },
                }
            },
            "/users/import": {
                "post": {
                    "summary": "Issue accounts from CSV, with a report per row",
                    "requestBody": {"required": True, "content": {"text/csv": {"schema": _STRING}}},
                    "responses": {**_ok(_ref("ImportReport")), **_AUTH, "400": _ERROR},
                }
            },
            "/users/{username}/roles": {
                "get": {
                    "summary": "Roles a user holds today, in units the caller may read",
                    "parameters": [
                        {"name": "username", "in": "path", "required": True, "schema": _STRING}
                    ],
                    "responses": {
                        **_ok(
                            {
                                "type": "object",
                                "properties": {
                                    "username": _STRING,
                                    "sub": _STRING,
                                    "gfms_roles": {"type": "array", "items": _ref("GfmsRole")},
                                },
                            }
                        ),
                        **_AUTH,
                        "404": _ERROR,
                    },
                }
            },
            "/designations": {
                "get": {
                    "summary": "Latest requests of the units the caller may read",
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {"enum": ["pending", "approved", "rejected"]},
                        }
                    ],
                    "responses": {
                        **_ok(
                            {
                                "type": "object",
                                "properties": {
                                    "designations": {
                                        "type": "array",
                                        "items": _ref("DesignationRequest"),
                                    }
                                },
                            }
                        ),
                        **_AUTH,
                    },
                },
                "post": {
                    "summary": "Submit a designation with the written order (head of unit)",
                    "requestBody": {
                        "required": True,
                        "content": {"multipart/form-data": {"schema": designation_form}},
                    },
                    "responses": {
                        **_ok(_ref("DesignationRequest"), "201", "Submitted"),
                        **_AUTH,
                        "400": _ERROR,
                        "404": _ERROR,
                        "409": _ERROR,
                        "413": _ERROR,
                    },
                },
            },
            "/designations/{request_id}": {
                "get": {
                    "summary": "One request",
                    "parameters": [_REQUEST_ID],
                    "responses": {**_ok(_ref("DesignationRequest")), **_AUTH, "404": _ERROR},
                }
            },
            "/designations/{request_id}/order": {
                "get": {
                    "summary": "The written order, as the type its bytes showed",
                    "parameters": [_REQUEST_ID],
                    "responses": {
                        "200": {
                            "description": "The file",
                            "content": {"application/pdf": {}, "image/png": {}, "image/jpeg": {}},
                        },
                        **_AUTH,
                        "404": _ERROR,
                    },
                }
            },
            "/designations/{request_id}/approve": {
                "post": {
                    "summary": "Approve: the order is carried out (a role assigned, ended or "
                    "changed); the person must change password",
                    "parameters": [_REQUEST_ID],
                    "requestBody": _json_body(_REASON),
                    "responses": {
                        **_ok(
                            {
                                "type": "object",
                                "properties": {
                                    "status": _STRING,
                                    "assignment": {
                                        "oneOf": [_ref("Assignment"), {"type": "null"}],
                                        "description": "the role started (none for kind end)",
                                    },
                                    "ended": {
                                        "type": "array",
                                        "items": _ref("Assignment"),
                                        "description": "assignments ended or cut short",
                                    },
                                },
                            }
                        ),
                        **_AUTH,
                        "404": _ERROR,
                        "409": _ERROR,
                    },
                }
            },
            "/designations/{request_id}/reject": {
                "post": {
                    "summary": "Reject, with a reason",
                    "parameters": [_REQUEST_ID],
                    "requestBody": _json_body(_REASON),
                    "responses": {
                        **_ok(_ref("DesignationRequest")),
                        **_AUTH,
                        "400": _ERROR,
                        "404": _ERROR,
                        "409": _ERROR,
                    },
                }
            },
            "/users/{username}/suspend-phone": {
                "post": {
                    "summary": "Suspend the user's phone (helpdesk): every session and token it "
                    "confirmed ends at once; opens the lost-device case",
                    "parameters": [_USERNAME],
                    "requestBody": _json_body(_SUSPENSION_REASON),
                    "responses": {
                        **_ok(_ref("Case"), "201", "Suspended; the case"),
                        **_ok(_ref("Case"), "200", "Suspended before; the case"),
                        **_AUTH,
                        "400": _ERROR,
                        "404": _ERROR,
                        "409": _ERROR,
                    },
                }
            },
            "/users/{username}/suspend": {
                "post": {
                    "summary": "Suspend the account (helpdesk): every session and token ends",
                    "parameters": [_USERNAME],
                    "requestBody": _json_body(_REASON),
                    "responses": {**_ok({"type": "object"}), **_AUTH, "404": _ERROR},
                }
            },
            "/users/{username}/lift-suspension": {
                "post": {
                    "summary": "Lift an account suspension (CGD, or the unit's treasury office)",
                    "parameters": [_USERNAME],
                    "requestBody": _json_body(_REASON),
                    "responses": {**_ok({"type": "object"}), **_AUTH, "404": _ERROR, "409": _ERROR},
                }
            },
            "/users/{username}/access-pass": {
                "post": {
                    "summary": "A one-time Temporary Access Pass to start registering a new phone",
                    "parameters": [_USERNAME, _ON_BEHALF_OF_QUERY],
                    "responses": {
                        **_ok(
                            {
                                "type": "object",
                                "properties": {
                                    "access_pass": _STRING,
                                    "expires_in": {"type": "integer"},
                                },
                            },
                            "201",
                            "Shown once",
                        ),
                        **_AUTH,
                        "400": _ERROR,
                        "404": _ERROR,
                    },
                }
            },
            "/cases": {
                "get": {
                    "summary": "Open lost-device cases (all with ?all, overdue ones with ?overdue)",
                    "parameters": [
                        {"name": "all", "in": "query", "schema": _STRING},
                        {"name": "overdue", "in": "query", "schema": _STRING},
                        _ON_BEHALF_OF_QUERY,
                    ],
                    "responses": {
                        **_ok(
                            {
                                "type": "object",
                                "properties": {"cases": {"type": "array", "items": _ref("Case")}},
                            }
                        ),
                        **_AUTH,
                    },
                }
            },
            "/cases/{case_id}/letter": {
                "post": {
                    "summary": "The head of unit's letter (PDF, PNG or JPEG): closes the case",
                    "parameters": [
                        {"name": "case_id", "in": "path", "required": True, "schema": _STRING},
                        _ON_BEHALF_OF_QUERY,
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["letter_file"],
                                    "properties": {
                                        "letter_file": {"type": "string", "format": "binary"}
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        **_ok(_ref("Case")),
                        **_AUTH,
                        "400": _ERROR,
                        "404": _ERROR,
                        "409": _ERROR,
                        "413": _ERROR,
                    },
                }
            },
            "/cases/{case_id}/declare-lost": {
                "post": {
                    "summary": "The head of unit says the phone of an investigation was lost: "
                    "the letter becomes due, counted from lost_at",
                    "parameters": [_CASE_ID],
                    "requestBody": _json_body(
                        {"type": "object", "properties": {"lost_at": _LOST_AT}}
                    ),
                    "responses": {**_ok(_ref("Case")), **_AUTH, "400": _ERROR, "404": _ERROR},
                }
            },
            "/cases/{case_id}/close": {
                "post": {
                    "summary": "Close an investigation with its finding (helpdesk); the phone "
                    "stays suspended",
                    "parameters": [_CASE_ID],
                    "requestBody": _json_body(
                        {
                            "type": "object",
                            "required": ["finding"],
                            "properties": {"finding": _STRING},
                        }
                    ),
                    "responses": {**_ok(_ref("Case")), **_AUTH, "400": _ERROR, "404": _ERROR},
                }
            },
            "/audit/events": {
                "get": {
                    "summary": "The audit trail, newest first, with the hash chain's status "
                    "(CGD and auditors; an auditor scoped to units or a province gets their "
                    "units' events only)",
                    "parameters": _TRAIL_FILTERS,
                    "responses": {
                        **_ok(
                            {
                                "type": "object",
                                "properties": {
                                    "events": {"type": "array", "items": _ref("AuditEvent")},
                                    "next_before": {
                                        "type": ["integer", "null"],
                                        "description": "pass as before for older events",
                                    },
                                    "scope": {
                                        "type": ["array", "null"],
                                        "items": _STRING,
                                        "description": "the unit codes read; null: every unit",
                                    },
                                    "chain": _ref("ChainStatus"),
                                },
                            }
                        ),
                        **_AUTH,
                        "400": _ERROR,
                    },
                }
            },
            "/audit/events.csv": {
                "get": {
                    "summary": "The same events as CSV (UTF-8 with BOM); the export is audited",
                    "parameters": _TRAIL_FILTERS,
                    "responses": {
                        "200": {"description": "CSV", "content": {"text/csv": {}}},
                        **_AUTH,
                        "400": _ERROR,
                    },
                }
            },
            "/admin-grants": {
                "post": {
                    "summary": "Grant an administrative role (CGD)",
                    "requestBody": _json_body(_ref("AdminGrant")),
                    "responses": {
                        **_ok(_ref("AdminGrant"), "201", "Granted"),
                        **_AUTH,
                        "400": _ERROR,
                        "404": _ERROR,
                    },
                }
            },
        },
    }
