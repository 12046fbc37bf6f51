"""The helpdesk console and the user's account page.

Helpdesk: find a user, see their phone, passkeys, sessions and recent security events, follow
the caller-verification checklist, suspend the phone or the account, issue a Temporary Access
Pass, and follow lost-device cases (also the head of unit's view of their unit's cases, where
the letter is uploaded). Account page: the user's own phone, passkeys, sessions (end one or
all), security events, and "report lost phone".
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint
from flask import Response
from flask import redirect
from flask import request
from flask import url_for
from flask_babel import get_locale
from sqlalchemy import or_
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from idp.accounts.errors import AttemptThrottledError
from idp.accounts.models import User
from idp.accounts.models import UserSession
from idp.accounts.passwords import verify_password
from idp.accounts.service import get_user_by_username
from idp.audit.models import AuditEvent
from idp.audit.models import SecurityAlert
from idp.errors import IdpError
from idp.mfa.models import Device
from idp.mfa.passkeys import active_passkeys
from idp.revocation.service import end_session
from idp.revocation.suspension import cases_for
from idp.revocation.suspension import is_overdue
from idp.revocation.suspension import issue_access_pass
from idp.revocation.suspension import reason_of
from idp.revocation.suspension import receive_letter
from idp.revocation.suspension import suspend_account
from idp.revocation.suspension import suspend_phone
from idp.revocation.suspension import usernames
from idp.roles.authority import Authority
from idp.roles.orders import accept_order
from idp.web import console
from idp.web import context
from idp.web.console import RefusedError
from idp.web.console import answer_refusals
from idp.web.console import page
from idp.web.hygiene import large_body
from idp.web.role_texts import error_text
from idp.web.sessions import clear_login_cookie
from idp.web.sessions import current_login
from idp.web.sessions import verify_csrf

bp = Blueprint("helpdesk", __name__)

# What the helpdesk asks a caller before acting on their account (shown; each box must be
# ticked, and the ticks are kept in the audit trail with the action).
CHECKLIST = ("citizen_id", "unit", "callback", "head_of_unit")
_EVENTS_SHOWN = 30
_SECURITY_EVENTS = (
    "login.%",
    "mfa.%",
    "session.%",
    "account.%",
    "revocation.%",
    "token.grant_revoked",
)


answer_refusals(bp)


def _helpdesk() -> tuple[User, Authority]:
    return console.staff(lambda a: a.may_suspend() or a.may_read_everything())


def _security_events(user: User) -> list[AuditEvent]:
    """The user's recent security events, newest first."""
    about = or_(
        AuditEvent.actor == user.sub,
        AuditEvent.actor == user.username,
        AuditEvent.details["user"].as_string() == user.sub,  # done to them (a suspension)
    )
    kinds = or_(*(AuditEvent.event.like(k) for k in _SECURITY_EVENTS))
    return list(context.db().scalars(
        select(AuditEvent).where(about, kinds).order_by(AuditEvent.id.desc()).limit(_EVENTS_SHOWN)
    ))  # fmt: skip


def _live_sessions(user: User) -> list[UserSession]:
    return list(context.db().scalars(
        select(UserSession)
        .where(UserSession.user_id == user.id, UserSession.ended_at.is_(None),
               UserSession.expires_at > context.now())
        .order_by(UserSession.created_at.desc())
    ))  # fmt: skip


def _devices(user: User) -> list[Device]:
    return list(context.db().scalars(
        select(Device).where(Device.user_id == user.id).order_by(Device.bound_at.desc())
    ))  # fmt: skip


# --- helpdesk -------------------------------------------------------------------------------


@bp.get("/helpdesk")
def search() -> BaseResponse:
    _, authority = _helpdesk()
    query = request.args.get("q", "").strip()
    found = None
    if query:
        found = get_user_by_username(context.db(), query[:64])
        if found is not None:
            return redirect(url_for("helpdesk.person", username=found.username), code=303)
    db = context.db()
    overdue = [c for c in cases_for(db, authority) if is_overdue(c, context.now())]
    alerts = list(db.scalars(select(SecurityAlert).order_by(SecurityAlert.id.desc()).limit(20)))
    return page("helpdesk_search.html", query=query, not_found=bool(query), overdue=len(overdue),
                 authority=authority, alerts=alerts,
                 names=usernames(db, {a.user_id for a in alerts if a.user_id}))  # fmt: skip


@bp.get("/helpdesk/users/<username>")
def person(username: str) -> BaseResponse:
    _, authority = _helpdesk()
    user = get_user_by_username(context.db(), username[:64])
    if user is None:
        return page("error.html", 404, code="not_found", description=None)
    return _personpage(user, authority)


def _personpage(user: User, authority: Authority, status: int = 200, **extra: Any) -> Response:
    db = context.db()
    cases = [c for c in cases_for(db, authority, open_only=False) if c.user_id == user.id]
    return page("helpdesk_user.html", status, person=user, authority=authority,
                 devices=_devices(user), passkeys=active_passkeys(db, user.id),
                 sessions=_live_sessions(user), events=_security_events(user), cases=cases,
                 checklist=CHECKLIST, **extra)  # fmt: skip


def _checklist_done() -> list[str] | None:
    ticked = [item for item in CHECKLIST if request.form.get(f"check_{item}") == "yes"]
    return ticked if len(ticked) == len(CHECKLIST) else None


@bp.post("/helpdesk/users/<username>/action")
def act(username: str) -> BaseResponse:
    staff, authority = _helpdesk()
    verify_csrf()
    db = context.db()
    deps = context.deps()
    user = get_user_by_username(db, username[:64])
    if user is None:
        return page("error.html", 404, code="not_found", description=None)
    checklist = _checklist_done()
    if checklist is None:
        return _personpage(user, authority, 400, error="checklist")
    action = request.form.get("action")
    note = request.form.get("note", "")[:500]
    try:
        if action == "suspend_phone":
            authority.require(authority.may_suspend())
            done = suspend_phone(
                db, user, reason=reason_of(request.form.get("reason", "")), channel="helpdesk",
                actor=staff.sub, revoker=deps.revoker, calendar=deps.calendar,
                letter_days=deps.settings.lost_phone_letter_days, now=context.now(),
                audit=context.audit_context(),
            )  # fmt: skip
            message = "already_suspended" if done.already_suspended else "phone_suspended"
            extra: dict[str, Any] = {"done": message, "case": done.case}
        elif action == "suspend_account":
            changed = suspend_account(db, user, by=authority, reason=note or "helpdesk",
                                      actor=staff.sub, revoker=deps.revoker, now=context.now(),
                                      audit=context.audit_context())  # fmt: skip
            extra = {"done": "account_suspended" if changed else "account_already_suspended"}
        elif action == "access_pass":
            code = issue_access_pass(
                db, user, by=authority, actor=staff.sub,
                ttl=timedelta(seconds=deps.settings.access_pass_ttl), now=context.now(),
                audit=context.audit_context(),
            )  # fmt: skip
            extra = {"done": "access_pass", "access_pass": code}
        else:
            return _personpage(user, authority, 400, error="action")
    except IdpError as error:
        db.rollback()
        return _personpage(user, authority, 409, error_message=error_text(error))
    db.commit()
    context.announce()
    return _personpage(user, authority, **extra)


@bp.get("/admin/cases")
def cases() -> BaseResponse:
    _, authority = console.staff(Authority.may_follow_cases)
    db = context.db()
    items = cases_for(db, authority, open_only=request.args.get("all") is None)
    return page("cases.html", cases=items, names=usernames(db, {c.user_id for c in items}),
                 overdue={c.id for c in items if is_overdue(c, context.now())},
                 authority=authority)  # fmt: skip


@bp.post("/admin/cases/<case_id>/letter")
@large_body(lambda settings: settings.order_max_bytes + 64 * 1024)
def case_letter(case_id: str) -> BaseResponse:
    staff, authority = console.staff(lambda a: a.may_suspend() or bool(a.units))
    verify_csrf()
    settings = context.deps().settings
    upload = request.files.get("letter_file")
    db = context.db()
    try:
        letter = accept_order(upload.filename or "" if upload else "",
                              upload.read(settings.order_max_bytes + 1) if upload else b"",
                              max_bytes=settings.order_max_bytes)  # fmt: skip
        receive_letter(db, case_id[:32], letter, by=authority, actor=staff.sub,
                       now=context.now(), audit=context.audit_context())  # fmt: skip
    except IdpError as error:
        db.rollback()
        items = cases_for(db, authority)
        return page("cases.html", 400, cases=items, error=error_text(error),
                     names=usernames(db, {c.user_id for c in items}),
                     overdue={c.id for c in items if is_overdue(c, context.now())},
                     authority=authority)  # fmt: skip
    return redirect(url_for("helpdesk.cases", received=1), code=303)


# --- the user's own account -----------------------------------------------------------------


def _own() -> tuple[UserSession, User]:
    login = current_login()
    if login is None:
        raise RefusedError(redirect(url_for("login.signin", next="/account"), code=303))
    return login


@bp.get("/account")
def account() -> BaseResponse:
    user_session, user = _own()
    return _accountpage(user_session, user)


def _accountpage(user_session: UserSession, user: User, status: int = 200,
                  **extra: Any) -> Response:  # fmt: skip
    db = context.db()
    return page("account.html", status, user=user, current=user_session,
                 devices=_devices(user), passkeys=active_passkeys(db, user.id),
                 sessions=_live_sessions(user), events=_security_events(user),
                 locale=str(get_locale()), **extra)  # fmt: skip


@bp.post("/account/sessions/end")
def end_sessions() -> BaseResponse:
    user_session, user = _own()
    verify_csrf()
    deps = context.deps()
    which = request.form.get("sid", "")
    targets = [s.id for s in _live_sessions(user) if which in ("all", s.id)]
    for sid in targets:
        end_session(context.db(), deps.revocations, sid, reason="ended_by_user",
                    now=context.now(), access_token_ttl=deps.settings.access_token_ttl,
                    actor=user.sub, context=context.audit_context())  # fmt: skip
    context.db().commit()
    context.announce()
    if user_session.id in targets:
        response = redirect(url_for("web.home"), code=303)
        clear_login_cookie(response)
        return response
    return redirect(url_for("helpdesk.account"), code=303)


@bp.post("/account/report-lost-phone")
def report_lost_phone() -> BaseResponse:
    """Self-service: the phone is gone, so the login behind this page may be the password
    alone; the password again and the citizen ID (the recovery check) are asked for."""
    user_session, user = _own()
    verify_csrf()
    deps = context.deps()
    db = context.db()
    from idp.web.login import authenticator

    try:
        # Locked out by failed attempts: nothing is checked (no oracle for the password). The
        # counter stays locked until this request ends: parallel guesses wait their turn.
        authenticator().verify_may_attempt(db, user, now=context.now(),
                                           context=context.audit_context())  # fmt: skip
    except AttemptThrottledError:
        return _accountpage(user_session, user, 429, report_error=True)
    citizen_id = "".join(c for c in request.form.get("citizen_id", "") if c.isdigit())[:13]
    password_ok = verify_password(user.password_hash, request.form.get("password", ""))
    id_ok = (
        bool(user.citizen_id_hash)
        and deps.cipher.keyed_hash(citizen_id, purpose="citizen_id") == user.citizen_id_hash
    )
    if not (password_ok and id_ok):
        authenticator_failure(user)
        return _accountpage(user_session, user, 400, report_error=True)
    try:
        done = suspend_phone(
            db, user, reason=reason_of(request.form.get("reason", "lost")), channel="self",
            actor=user.sub, revoker=deps.revoker, calendar=deps.calendar,
            letter_days=deps.settings.lost_phone_letter_days, now=context.now(),
            audit=context.audit_context(),
        )  # fmt: skip
    except IdpError as error:
        db.rollback()
        return _accountpage(user_session, user, 409, report_message=error_text(error))
    db.commit()
    context.announce()
    return _accountpage(user_session, user, reported=done.case)


def authenticator_failure(user: User) -> None:
    """A wrong password or citizen ID here counts like a failed login (and may lock)."""
    from idp.web.login import authenticator

    authenticator().count_failure(context.db(), user, now=context.now(),
                                  context=context.audit_context(),
                                  reason="lost_phone_report")  # fmt: skip
