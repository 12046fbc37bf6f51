"""The administration console: designation requests with their written orders (heads of unit
ask; treasury offices and CGD decide), issuing accounts one by one or from a CSV file, and the
signed-in user's own roles. Every page needs a login the phone confirmed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from flask import Blueprint
from flask import Response
from flask import redirect
from flask import request
from flask import url_for
from flask_babel import get_locale
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from idp.accounts.issuance import IMPORT_MAX_BYTES
from idp.accounts.issuance import NewAccount
from idp.accounts.models import User
from idp.errors import IdpError
from idp.roles.assignments import held_roles
from idp.roles.authority import Authority
from idp.roles.designations import Designation
from idp.roles.designations import approve_request
from idp.roles.designations import order_file
from idp.roles.designations import reject_request
from idp.roles.designations import submit_request
from idp.roles.errors import UnknownRequestError
from idp.roles.models import DesignationRequest
from idp.roles.models import OrderKind
from idp.roles.models import RequestStatus
from idp.roles.models import Role
from idp.roles.models import Unit
from idp.roles.periods import thai_date
from idp.roles.queries import decidable_requests
from idp.roles.queries import readable_request
from idp.roles.queries import readable_requests
from idp.roles.queries import units_for
from idp.web import context
from idp.web.console import RefusedError
from idp.web.console import answer_refusals
from idp.web.console import page
from idp.web.console import signed_in
from idp.web.console import staff
from idp.web.hygiene import large_body
from idp.web.hygiene import uploaded_order
from idp.web.role_texts import ADMIN_ROLE_LABELS
from idp.web.role_texts import ALERT_DETAIL_LABELS
from idp.web.role_texts import ALERT_LABELS
from idp.web.role_texts import ORDER_KIND_LABELS
from idp.web.role_texts import OTHER_ALERT
from idp.web.role_texts import ROLE_LABELS
from idp.web.role_texts import STATUS_LABELS
from idp.web.role_texts import alert_detail_value
from idp.web.role_texts import error_text
from idp.web.role_texts import error_words
from idp.web.role_texts import order_headers
from idp.web.role_texts import show_date
from idp.web.sessions import verify_csrf
from thai_format import parse_date

bp = Blueprint("admin", __name__)

# Room for the form fields around the largest order file.
_FORM_OVERHEAD = 64 * 1024


answer_refusals(bp)


def _administrator() -> tuple[User, Authority]:
    return staff(lambda authority: authority.is_administrative)


def _units_where(authority: Authority, allowed: Callable[[Unit], bool]) -> list[Unit]:
    """The units of ``authority``'s remit that pass ``allowed``; none refuses the page.

    Raises:
        RefusedError
    """
    units = [u for u in units_for(context.db(), authority) if allowed(u)]
    if not units:
        raise RefusedError(page("admin_refused.html", 403, reason="role"))
    return units


@bp.app_context_processor
def _words() -> dict[str, Any]:
    locale = str(get_locale())
    return {
        "role_label": lambda role: ROLE_LABELS.get(role, role),
        "admin_role_label": lambda role: ADMIN_ROLE_LABELS.get(role, role),
        "status_label": lambda status: STATUS_LABELS.get(status, status),
        "order_kind_label": lambda kind: ORDER_KIND_LABELS.get(kind, kind),
        "alert_label": lambda kind: ALERT_LABELS.get(kind, OTHER_ALERT),
        "alert_detail_labels": ALERT_DETAIL_LABELS,
        "alert_detail_value": alert_detail_value,
        "show_date": lambda day: show_date(day, locale),
        "error_words": error_words,
    }


@bp.get("/admin")
def home() -> BaseResponse:
    user, authority = _administrator()
    db = context.db()
    return page(
        "admin_home.html",
        user=user,
        authority=authority,
        pending=len(decidable_requests(db, authority)),
        units=units_for(db, authority),
    )


# --- designations ---------------------------------------------------------------------------


@bp.route("/admin/designations/new", methods=["GET", "POST"])
@large_body(lambda settings: settings.order_max_bytes + _FORM_OVERHEAD)
def new_designation() -> BaseResponse:
    user, authority = _administrator()
    units = _units_where(authority, authority.may_designate)
    if request.method == "GET":
        return page("designation_form.html", units=units, form=request.args, roles=list(Role))
    verify_csrf()
    db = context.db()
    try:
        designation = _designation_of(request.form)
        created = submit_request(
            db,
            authority,
            designation,
            uploaded_order("order_file"),
            submitter=user,
            now=context.now(),
            audit=context.audit_context(),
        )
    except IdpError as error:
        db.rollback()
        return page(
            "designation_form.html",
            400,
            units=units,
            form=request.form,
            roles=list(Role),
            error=error_text(error),
        )
    return redirect(url_for("admin.designation", request_id=created.id, submitted=1), code=303)


@bp.get("/admin/designations")
def designations() -> BaseResponse:
    _, authority = _administrator()
    db = context.db()
    decidable = decidable_requests(db, authority)
    requests = readable_requests(db, authority)
    return page(
        "designation_list.html",
        decidable=decidable,
        requests=requests,
        names=_names(db, *decidable, *requests),
    )


@bp.get("/admin/designations/<request_id>")
def designation(request_id: str) -> BaseResponse:
    user, authority = _administrator()
    db = context.db()
    found = _readable(db, authority, request_id)
    unit = db.get(Unit, found.unit_code)
    may_decide = (
        found.status == RequestStatus.PENDING
        and unit is not None
        and authority.may_manage(unit)
        and user.id not in (found.submitted_by, found.user_id, found.substitute_for)
    )
    return page(
        "designation_detail.html",
        item=found,
        unit=unit,
        names=_names(db, found),
        may_decide=may_decide,
        submitted=request.args.get("submitted"),
    )


@bp.get("/admin/designations/<request_id>/order")
def designation_order(request_id: str) -> BaseResponse:
    _, authority = _administrator()
    db = context.db()
    found = _readable(db, authority, request_id)
    content = order_file(db, found.id) or b""
    return Response(content, headers=order_headers(found))


@bp.post("/admin/designations/<request_id>/decision")
def decide(request_id: str) -> BaseResponse:
    user, authority = _administrator()
    verify_csrf()
    db = context.db()
    reason = request.form.get("reason", "")
    decision = approve_request if request.form.get("decision") == "approve" else reject_request
    try:
        decision(
            db,
            authority,
            request_id,
            decider=user,
            reason=reason,
            now=context.now(),
            audit=context.audit_context(),
        )
    except IdpError as error:
        db.rollback()
        found = _readable(db, authority, request_id)
        return page(
            "designation_detail.html",
            409,
            item=found,
            names=_names(db, found),
            unit=db.get(Unit, found.unit_code),
            may_decide=False,
            error=error_text(error),
        )
    return redirect(url_for("admin.designation", request_id=request_id), code=303)


# --- accounts -------------------------------------------------------------------------------


@bp.route("/admin/accounts/new", methods=["GET", "POST"])
def new_account() -> BaseResponse:
    user, authority = _administrator()
    units = _units_where(authority, authority.may_manage)
    if request.method == "GET":
        return page("account_issue.html", units=units, form={})
    verify_csrf()
    db = context.db()
    form = request.form
    try:
        issued = context.deps().issuance.issue_account(
            db,
            authority,
            NewAccount(
                citizen_id=form.get("citizen_id", ""),
                given_name_th=form.get("given_name_th", ""),
                family_name_th=form.get("family_name_th", ""),
                unit_code=form.get("unit_code", ""),
                given_name_en=form.get("given_name_en", ""),
                family_name_en=form.get("family_name_en", ""),
                email=form.get("email") or None,
                legacy_token_key=form.get("legacy_token_key") == "yes",
            ),
            now=context.now(),
            actor=user.sub,
            audit=context.audit_context(),
        )
    except IdpError as error:
        db.rollback()
        return page("account_issue.html", 400, units=units, form=form, error=error_text(error))
    # Shown once: the page is not cached and the password is kept nowhere in the clear.
    return page("account_issued.html", issued=[issued], reports=None)


@bp.route("/admin/accounts/import", methods=["GET", "POST"])
@large_body(lambda _settings: IMPORT_MAX_BYTES)
def import_file() -> BaseResponse:
    user, authority = _administrator()
    if request.method == "GET":
        return page("account_import.html")
    verify_csrf()
    upload = request.files.get("csv_file")
    db = context.db()
    try:
        reports = context.deps().issuance.import_accounts(
            db,
            authority,
            upload.read() if upload else b"",
            now=context.now(),
            actor=user.sub,
            audit=context.audit_context(),
        )
    except IdpError as error:
        db.rollback()
        return page("account_import.html", 400, error=error_text(error))
    return page("account_issued.html", issued=None, reports=reports)


# --- the user's own roles -------------------------------------------------------------------


@bp.get("/account/roles")
def my_roles() -> BaseResponse:
    _, user = signed_in("/account/roles")
    db = context.db()
    today = thai_date(context.now())
    held = held_roles(db, user.id, today)
    found = db.scalars(select(Unit).where(Unit.code.in_({h.unit for h in held})))
    units = {unit.code: unit for unit in found}
    substitutes = {h.substitute_for for h in held if h.substitute_for}
    people = db.scalars(select(User).where(User.sub.in_(substitutes)))
    acting_for = {person.sub: person.display_name(str(get_locale())) for person in people}
    pending = db.scalars(
        select(DesignationRequest).where(
            DesignationRequest.user_id == user.id,
            DesignationRequest.status == RequestStatus.PENDING,
        )
    ).all()
    return page(
        "my_roles.html",
        user=user,
        held=held,
        units=units,
        acting_for=acting_for,
        pending=pending,
        today=today,
    )


# --- helpers --------------------------------------------------------------------------------


def _designation_of(form: Any) -> Designation:
    """Raises IdpError for dates that are not dates."""
    kind = form.get("kind") or OrderKind.DESIGNATE.value
    return Designation(
        kind=kind,
        ends_role=form.get("ends_role") or None if kind == OrderKind.CHANGE else None,
        unit_code=form.get("unit_code", ""),
        username=form.get("username", ""),
        role=form.get("role", ""),
        valid_from=_date(form.get("valid_from")),
        valid_until=_date(form.get("valid_until")) if form.get("valid_until") else None,
        substitute_for=form.get("substitute_for") or None,
        order_number=form.get("order_number", ""),
        order_date=_date(form.get("order_date")),
        note=form.get("note", ""),
    )


class InvalidDateError(IdpError):
    code = "invalid_date"
    message = "Give dates as day/month/year (Buddhist era, as orders are dated) or YYYY-MM-DD."


def _date(value: str | None) -> date:
    # Thai orders are dated in the Buddhist era, often in Thai digits: 2/12/2569, ๒/๑๒/๒๕๖๙.
    try:
        return parse_date(value or "")
    except ValueError as exc:
        raise InvalidDateError() from exc


def _readable(db: Any, authority: Authority, request_id: str) -> DesignationRequest:
    try:
        return readable_request(db, authority, request_id)[0]
    except UnknownRequestError as exc:
        raise RefusedError(page("error.html", 404, code="not_found", description=None)) from exc


def _names(db: Any, *requests: DesignationRequest) -> dict[str, str]:
    """Display names by user id, for the people the listed requests name."""
    ids = {
        person
        for r in requests
        for person in (r.user_id, r.substitute_for, r.submitted_by, r.decided_by)
        if person
    }
    locale = str(get_locale())
    return {
        user.id: f"{user.display_name(locale)} ({user.username})"
        for user in db.scalars(select(User).where(User.id.in_(ids)))
    }
