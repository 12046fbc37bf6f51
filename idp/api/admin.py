"""``/api/admin/v1/``: units, accounts, designation requests and administrative roles, each
operation the console offers, with the same rules (the domain decides; this only translates).
Errors are JSON ``{"error", "error_description"}``; the document is ``openapi.json``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any
from typing import TypeVar

from flask import Response
from flask import jsonify
from flask import request

from idp.accounts.issuance import IMPORT_MAX_BYTES
from idp.accounts.issuance import NewAccount
from idp.api import schemas
from idp.api.auth import Caller
from idp.api.auth import authenticate
from idp.api.common import InvalidBodyError
from idp.api.common import answer
from idp.api.common import bp
from idp.api.common import known_user
from idp.api.common import parse
from idp.api.openapi import document
from idp.roles import errors
from idp.roles.assignments import held_roles
from idp.roles.authority import grant_admin_role
from idp.roles.designations import Designation
from idp.roles.designations import approve_request
from idp.roles.designations import order_file
from idp.roles.designations import reject_request
from idp.roles.designations import submit_request
from idp.roles.models import DesignationRequest
from idp.roles.models import RequestStatus
from idp.roles.models import RoleAssignment
from idp.roles.models import Unit
from idp.roles.periods import thai_date
from idp.roles.queries import readable_request
from idp.roles.queries import readable_requests
from idp.roles.queries import units_for
from idp.roles.units import create_unit
from idp.web import context
from idp.web.hygiene import large_body
from idp.web.hygiene import uploaded_order
from idp.web.role_texts import order_headers


def _date(value: object, name: str) -> date:
    try:
        parsed = date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.year > 2400:  # a Buddhist-era year is not a date here
        raise InvalidBodyError(f"'{name}' must be a date, YYYY-MM-DD in the Christian era.")
    return parsed


def _person(caller: Caller) -> Any:
    """Designations are decided by people, never by a system's client."""
    if caller.user is None:
        raise errors.NotAllowedError()
    return caller.user


# --- the document ---------------------------------------------------------------------------


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document(context.deps().settings.issuer))


# --- units ----------------------------------------------------------------------------------


def _unit(unit: Unit) -> schemas.Unit:
    return schemas.Unit.model_validate(unit, from_attributes=True)


@bp.get("/units")
def list_units() -> Response:
    caller = authenticate()
    return answer(
        schemas.Units(units=[_unit(u) for u in units_for(context.db(), caller.authority)])
    )


@bp.post("/units")
def add_unit() -> Response:
    caller = authenticate()
    body = parse(schemas.NewUnit)
    unit = create_unit(
        context.db(),
        caller.authority,
        code=body.code,
        name_th=body.name_th,
        name_en=body.name_en or "",
        province=body.province,
        treasury_office=body.treasury_office,
        now=context.now(),
        actor=caller.actor,
        audit=context.audit_context(),
    )
    return answer(_unit(unit), 201)


# --- accounts -------------------------------------------------------------------------------


@bp.post("/users")
def issue_user() -> Response:
    caller = authenticate()
    body = parse(schemas.NewAccount)
    issued = context.deps().issuance.issue_account(
        context.db(),
        caller.authority,
        NewAccount(
            citizen_id=body.citizen_id,
            given_name_th=body.given_name_th,
            family_name_th=body.family_name_th,
            unit_code=body.unit_code,
            given_name_en=body.given_name_en or "",
            family_name_en=body.family_name_en or "",
            email=body.email or None,
            legacy_token_key=body.legacy_token_key,
            username=body.username or None,
        ),
        now=context.now(),
        actor=caller.actor,
        audit=context.audit_context(),
    )
    return answer(schemas.IssuedAccount.model_validate(issued, from_attributes=True), 201)


@bp.post("/users/import")
@large_body(lambda _settings: IMPORT_MAX_BYTES)
def import_users() -> Response:
    caller = authenticate()
    reports = context.deps().issuance.import_accounts(
        context.db(),
        caller.authority,
        request.get_data(),
        now=context.now(),
        actor=caller.actor,
        audit=context.audit_context(),
    )
    rows = [
        schemas.ImportRow(
            row=r.row,
            issued=True,
            username=r.issued.username,
            temporary_password=r.issued.temporary_password,
        )
        if r.issued
        else schemas.ImportRow(row=r.row, issued=False, error=r.error, error_description=r.message)
        for r in reports
    ]
    return answer(schemas.ImportReport(rows=rows, issued=sum(1 for r in reports if r.issued)))


@bp.get("/users/<username>/roles")
def user_roles(username: str) -> Response:
    caller = authenticate()
    db = context.db()
    user = known_user(username)
    readable = {u.code for u in units_for(db, caller.authority)}
    roles = held_roles(db, user.id, thai_date(context.now()))
    held = [schemas.GfmsRole.model_validate(h.claim()) for h in roles if h.unit in readable]
    if not caller.authority.may_read_everything() and not held and user.unit_code not in readable:
        raise errors.UnknownPersonError()  # outside the caller's remit: not even the sub
    return answer(schemas.UserRoles(username=user.username, sub=user.sub, gfms_roles=held))


# --- designation requests -------------------------------------------------------------------


def _request(item: DesignationRequest) -> schemas.DesignationRequest:
    return schemas.DesignationRequest.model_validate(item, from_attributes=True)


def _readable(caller: Caller, request_id: str) -> DesignationRequest:
    return readable_request(context.db(), caller.authority, request_id)[0]


@bp.get("/designations")
def list_designations() -> Response:
    caller = authenticate()
    status = request.args.get("status")
    items = readable_requests(context.db(), caller.authority)
    return answer(
        schemas.Designations(
            designations=[_request(i) for i in items if status in (None, i.status)]
        )
    )


@bp.post("/designations")
@large_body(lambda settings: settings.order_max_bytes + 64 * 1024)
def submit_designation() -> Response:
    caller = authenticate()
    submitter = _person(caller)
    form = request.form
    if "order_file" not in request.files:  # refused before the fields are read
        raise errors.OrderFileError()
    valid_until = form.get("valid_until")
    designation = Designation(
        unit_code=form.get("unit_code", ""),
        username=form.get("username", ""),
        role=form.get("role", ""),
        valid_from=_date(form.get("valid_from"), "valid_from"),
        valid_until=_date(valid_until, "valid_until") if valid_until else None,
        order_number=form.get("order_number", ""),
        order_date=_date(form.get("order_date"), "order_date"),
        substitute_for=form.get("substitute_for") or None,
        note=form.get("note", ""),
        kind=form.get("kind") or "designate",
        ends_role=form.get("ends_role") or None,
    )
    created = submit_request(
        context.db(),
        caller.authority,
        designation,
        uploaded_order("order_file"),
        submitter=submitter,
        now=context.now(),
        audit=context.audit_context(),
    )
    return answer(_request(created), 201)


@bp.get("/designations/<request_id>")
def get_designation(request_id: str) -> Response:
    return answer(_request(_readable(authenticate(), request_id)))


@bp.get("/designations/<request_id>/order")
def get_order(request_id: str) -> Response:
    item = _readable(authenticate(), request_id)
    return Response(order_file(context.db(), item.id) or b"", headers=order_headers(item))


def _assignment(item: RoleAssignment) -> schemas.Assignment:
    return schemas.Assignment.model_validate(item, from_attributes=True)


_Decided = TypeVar("_Decided")


def _decided(decide: Callable[..., _Decided], request_id: str) -> _Decided:
    """The decision of a person (never a system's client) with its reason, taken."""
    caller = authenticate()
    decider = _person(caller)
    body = parse(schemas.Decision)
    return decide(
        context.db(),
        caller.authority,
        request_id,
        decider=decider,
        reason=body.reason or "",
        now=context.now(),
        audit=context.audit_context(),
    )


@bp.post("/designations/<request_id>/approve")
def approve(request_id: str) -> Response:
    done = _decided(approve_request, request_id)
    return answer(
        schemas.Approval(
            status=RequestStatus.APPROVED,
            assignment=_assignment(done.assignment) if done.assignment else None,
            ended=[_assignment(a) for a in done.ended],
        )
    )


@bp.post("/designations/<request_id>/reject")
def reject(request_id: str) -> Response:
    return answer(_request(_decided(reject_request, request_id)))


# --- administrative roles -------------------------------------------------------------------


@bp.post("/admin-grants")
def grant() -> Response:
    caller = authenticate()
    body = parse(schemas.NewAdminGrant)
    # SECURITY: refused before the name is looked up, so that a 404 tells no one but a CGD
    # administrator which usernames exist.
    caller.authority.require(caller.authority.is_cgd)
    user = known_user(body.username)
    made = grant_admin_role(
        context.db(),
        caller.authority,
        user,
        body.role,
        now=context.now(),
        actor=caller.actor,
        audit=context.audit_context(),
        province=body.province or None,
        unit_code=body.unit_code or None,
    )
    granted = schemas.AdminGrant(
        id=made.id,
        username=user.username,
        role=made.role,
        province=made.province,
        unit_code=made.unit_code,
    )
    return answer(granted, 201)
