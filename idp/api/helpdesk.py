"""The helpdesk part of the admin API: suspending a lost phone (a fixed contract: see
docs/lost-phone.md), suspending and lifting accounts, lost-device cases and their letters,
Temporary Access Passes. A ticketing system's client with the ``helpdesk`` scope may call what
the helpdesk may do."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask import request

from idp.accounts.models import User
from idp.accounts.service import get_user_by_username
from idp.api import schemas
from idp.api.auth import Caller
from idp.api.auth import authenticate
from idp.api.common import acting
from idp.api.common import answer
from idp.api.common import bp
from idp.api.common import known_user
from idp.api.common import parse
from idp.revocation.loss import validate_lost_at
from idp.revocation.models import LostDeviceCase
from idp.revocation.suspension import Suspensions
from idp.revocation.suspension import cases_for
from idp.revocation.suspension import is_overdue
from idp.revocation.suspension import overdue_when_reported
from idp.roles import errors
from idp.roles.models import Unit
from idp.web import context
from idp.web.hygiene import large_body
from idp.web.hygiene import uploaded_order
from thai_format import in_thailand


def case_json(case: LostDeviceCase, *, username: str | None = None) -> schemas.Case:
    return schemas.Case(**_case_fields(case, username))


def _case_fields(case: LostDeviceCase, username: str | None) -> dict[str, Any]:
    return {
        "id": case.id,
        "username": username,
        "reason": case.reason,
        "kind": case.kind,
        "channel": case.channel,
        "verified": case.verified or [],
        "reported_at": case.reported_at,
        # The moment in Thai time when it is known, else the day.
        "lost_at": in_thailand(case.lost_at).isoformat()
        if case.lost_at
        else case.lost_on.isoformat(),
        "letter_due": case.letter_due,
        "closed_at": case.closed_at,
        "overdue": is_overdue(case, context.now()),
        "overdue_when_reported": overdue_when_reported(case),
        "letter_received_at": case.letter_received_at,
        "letter_sha256": case.letter_sha256,
    }


def _managed_user(caller: Caller, username: str) -> User:
    """A person whose unit the caller manages; anyone else is answered as no one (404), as
    ``GET /users/{username}/roles`` does, so the status tells nothing outside the remit."""
    authority = caller.authority
    authority.require(authority.is_cgd or bool(authority.provinces))
    user = get_user_by_username(context.db(), username)
    unit = context.db().get(Unit, user.unit_code) if user and user.unit_code else None
    if user is None or not (authority.is_cgd or (unit is not None and authority.may_manage(unit))):
        raise errors.UnknownPersonError()
    return user


def _suspensions() -> Suspensions:
    return context.deps().suspensions


def _committed_and_announced() -> None:
    """Commit now, then wake every instance's notice sender: the relying parties hear of it
    at once, not at the next poll."""
    context.db().commit()
    context.announce()


@bp.post("/users/<username>/suspend-phone")
def suspend_users_phone(username: str) -> Response:
    caller = authenticate()
    caller.authority.require(caller.authority.may_suspend())
    body = parse(schemas.PhoneSuspension)
    loss = validate_lost_at(body.lost_at, now=context.now())
    user = known_user(username)
    done = _suspensions().suspend_phone(
        context.db(),
        user,
        reason=body.reason,
        loss=loss,
        channel="api",
        actor=caller.actor,
        now=context.now(),
        audit=context.audit_context(),
        verified=[check.value for check in body.verified],
    )
    suspended = schemas.SuspendedPhone(
        **_case_fields(done.case, user.username),
        already_suspended=done.already_suspended,
        sessions_ended=done.sessions_ended,
    )
    _committed_and_announced()
    return answer(suspended, 200 if done.already_suspended else 201)


@bp.post("/users/<username>/suspend")
def suspend_user(username: str) -> Response:
    caller = authenticate()
    body = parse(schemas.Reason)
    caller.authority.require(caller.authority.may_suspend())  # before the name: see known_user
    changed = _suspensions().suspend_account(
        context.db(), known_user(username), acting(caller), reason=body.reason
    )
    _committed_and_announced()
    return answer(schemas.AccountSuspended(status="suspended", already_suspended=not changed))


@bp.post("/users/<username>/lift-suspension")
def lift_suspension(username: str) -> Response:
    caller = authenticate()
    body = parse(schemas.Reason)
    _suspensions().lift_account_suspension(
        context.db(), _managed_user(caller, username), acting(caller), reason=body.reason
    )
    return answer(schemas.SuspensionLifted(status="active"))


@bp.post("/users/<username>/access-pass")
def access_pass(username: str) -> Response:
    caller = authenticate()
    caller.authority.require(caller.authority.may_suspend())  # before the name: see known_user
    code = _suspensions().issue_access_pass(context.db(), known_user(username), acting(caller))
    expires_in = context.deps().settings.access_pass_ttl
    return answer(schemas.AccessPass(access_pass=code, expires_in=expires_in), 201)


@bp.get("/cases")
def list_cases() -> Response:
    caller = _case_reader()
    open_only = request.args.get("all") is None
    db = context.db()
    cases = cases_for(db, caller.authority, open_only=open_only)
    names = {
        u.id: u.username for u in db.query(User).filter(User.id.in_({c.user_id for c in cases}))
    }
    items = [case_json(c, username=names.get(c.user_id)) for c in cases]
    if request.args.get("overdue") is not None:
        items = [i for i in items if i.overdue]
    return answer(schemas.Cases(cases=items))


@bp.post("/cases/<case_id>/letter")
@large_body(lambda settings: settings.order_max_bytes + 64 * 1024)
def case_letter(case_id: str) -> Response:
    caller = _case_reader()
    case = _suspensions().receive_letter(
        context.db(), case_id, uploaded_order("letter_file"), acting(caller)
    )
    return answer(case_json(case))


@bp.post("/cases/<case_id>/declare-lost")
def case_declared_lost(case_id: str) -> Response:
    """The head of unit says an investigated phone was lost: the letter becomes due."""
    caller = _case_reader()
    body = parse(schemas.LossDeclaration)
    loss = validate_lost_at(body.lost_at, now=context.now())
    case = _suspensions().declare_lost(context.db(), case_id[:32], loss, acting(caller))
    return answer(case_json(case))


@bp.post("/cases/<case_id>/close")
def case_closed(case_id: str) -> Response:
    """The helpdesk closes an investigation with its finding."""
    caller = authenticate()
    body = parse(schemas.Finding)
    case = _suspensions().close_investigation(
        context.db(), case_id[:32], body.finding, acting(caller)
    )
    return answer(case_json(case))


def _case_reader() -> Caller:
    caller = authenticate()
    authority = caller.authority
    authority.require(authority.may_follow_cases())
    return caller
