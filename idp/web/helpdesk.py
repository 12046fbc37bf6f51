"""The helpdesk console and the user's account page.

Helpdesk: find a user, see their phone, passkeys, sessions and recent security events, follow
the caller-verification checklist, suspend the phone or the account, issue a Temporary Access
Pass, and follow lost-device cases (also the head of unit's view of their unit's cases, where
the letter is uploaded). Account page: the user's own phone, passkeys, sessions (end one or
all), security events, and "report lost phone".
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from typing import TypeVar
from urllib.parse import quote

from flask import Blueprint
from flask import Response
from flask import redirect
from flask import request
from flask import url_for
from flask_babel import get_locale
from flask_babel import gettext
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from idp.accounts.errors import AttemptThrottledError
from idp.accounts.models import User
from idp.accounts.models import UserSession
from idp.accounts.passwords import verify_password
from idp.accounts.service import get_user_by_username
from idp.audit.models import AuditEvent
from idp.audit.models import SecurityAlert
from idp.audit.service import record
from idp.errors import IdpError
from idp.mfa.models import Device
from idp.mfa.passkeys import active_passkeys
from idp.revocation.letter import CgdContact
from idp.revocation.letter import build_letter_pdf
from idp.revocation.letter import letter_facts
from idp.revocation.loss import InvalidLossTimeError
from idp.revocation.loss import Loss
from idp.revocation.loss import validate_loss_form
from idp.revocation.models import LostDeviceCase
from idp.revocation.service import end_session
from idp.revocation.suspension import CALLER_CHECKS
from idp.revocation.suspension import NoLetterDueError
from idp.revocation.suspension import Suspensions
from idp.revocation.suspension import cases_for
from idp.revocation.suspension import is_overdue
from idp.revocation.suspension import may_see_case
from idp.revocation.suspension import overdue_when_reported
from idp.revocation.suspension import reason_of
from idp.revocation.suspension import usernames
from idp.roles.authority import Acting
from idp.roles.authority import Authority
from idp.settings import Settings
from idp.web import console
from idp.web import context
from idp.web.case_texts import CHANNEL_LABELS
from idp.web.case_texts import CHECK_LABELS
from idp.web.case_texts import KIND_LABELS
from idp.web.case_texts import REASON_LABELS
from idp.web.console import RefusedError
from idp.web.console import answer_refusals
from idp.web.console import page
from idp.web.hygiene import large_body
from idp.web.hygiene import uploaded_order
from idp.web.role_texts import error_text
from idp.web.sessions import clear_login_cookie
from idp.web.sessions import verify_csrf
from thai_format import format_date
from thai_format import format_datetime

bp = Blueprint("helpdesk", __name__)

# The letter's font: Sarabun (SIL Open Font License 1.1, OFL.txt beside it).
_FONTS = Path(__file__).parent / "static" / "fonts"

# What the helpdesk asks a caller: every box before giving access back (an access pass);
# none before suspending, the safe way, which records whatever was ticked.
CHECKLIST = CALLER_CHECKS
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


@bp.app_context_processor
def _case_words() -> dict[str, Any]:
    locale = str(get_locale())
    settings = context.deps().settings
    return {
        "cgd": cgd_contact(settings),
        "letter_days": settings.lost_phone_letter_days,
        "registration_period": _period(settings, locale),
        "overdue_when_reported": overdue_when_reported,
        "reason_label": lambda reason: REASON_LABELS.get(reason, reason),
        "case_kind_label": lambda kind: KIND_LABELS.get(kind, kind),
        "channel_label": lambda channel: CHANNEL_LABELS.get(channel, channel),
        "check_labels": CHECK_LABELS,
        "case_moment": lambda moment: format_datetime(moment, locale),
    }


def _helpdesk() -> tuple[User, Authority]:
    return console.staff(lambda a: a.may_suspend() or a.may_read_everything())


def _acting(staff: User, authority: Authority) -> Acting:
    return Acting(authority, staff.sub, context.now(), context.audit_context())


def _security_events(user: User) -> list[AuditEvent]:
    """The user's recent security events, newest first."""
    about = or_(
        AuditEvent.actor == user.sub,
        AuditEvent.actor == user.username,
        AuditEvent.details["user"].as_string() == user.sub,  # done to them (a suspension)
    )
    kinds = or_(*(AuditEvent.event.like(k) for k in _SECURITY_EVENTS))
    return list(
        context.db().scalars(
            select(AuditEvent)
            .where(about, kinds)
            .order_by(AuditEvent.id.desc())
            .limit(_EVENTS_SHOWN)
        )
    )


def _live_sessions(user: User) -> list[UserSession]:
    return list(
        context.db().scalars(
            select(UserSession)
            .where(
                UserSession.user_id == user.id,
                UserSession.ended_at.is_(None),
                UserSession.expires_at > context.now(),
            )
            .order_by(UserSession.created_at.desc())
        )
    )


def _devices(user: User) -> list[Device]:
    return list(
        context.db().scalars(
            select(Device).where(Device.user_id == user.id).order_by(Device.bound_at.desc())
        )
    )


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
    return page(
        "helpdesk_search.html",
        query=query,
        not_found=bool(query),
        overdue=len(overdue),
        authority=authority,
        alerts=alerts,
        names=usernames(db, {a.user_id for a in alerts if a.user_id}),
    )


def _not_found() -> RefusedError:
    return RefusedError(page("error.html", 404, code="not_found", description=None))


def _person(username: str) -> User:
    """Raises RefusedError (404) for a username no one has."""
    user = get_user_by_username(context.db(), username[:64])
    if user is None:
        raise _not_found()
    return user


@bp.get("/helpdesk/users/<username>")
def person(username: str) -> BaseResponse:
    _, authority = _helpdesk()
    return _personpage(_person(username), authority)


def _overview(user: User) -> dict[str, Any]:
    """What the helpdesk and the user's own account page both show of the user."""
    return {
        "devices": _devices(user),
        "passkeys": active_passkeys(context.db(), user.id),
        "sessions": _live_sessions(user),
        "events": _security_events(user),
    }


def _personpage(user: User, authority: Authority, status: int = 200, **extra: Any) -> Response:
    db = context.db()
    cases = [c for c in cases_for(db, authority, open_only=False) if c.user_id == user.id]
    return page(
        "helpdesk_user.html",
        status,
        person=user,
        authority=authority,
        **_overview(user),
        cases=cases,
        checklist=CHECKLIST,
        **extra,
    )


def _ticked() -> list[str]:
    return [item for item in CHECKLIST if request.form.get(f"check_{item}") == "yes"]


@bp.post("/helpdesk/users/<username>/action")
def act(username: str) -> BaseResponse:
    staff, authority = _helpdesk()
    verify_csrf()
    db = context.db()
    suspensions = context.deps().suspensions
    user = _person(username)
    ticked = _ticked()
    action = request.form.get("action")
    # SECURITY: giving access back needs every check of the caller (whoever holds the lost
    # phone may know the password); suspending is the safe way and waits for nothing, at any
    # hour (the call-back on the unit's number is impossible out of office hours).
    if action == "access_pass" and len(ticked) < len(CHECKLIST):
        return _personpage(user, authority, 400, error="checklist")
    note = request.form.get("note", "")[:500]
    try:
        if action == "suspend_phone":
            authority.require(authority.may_suspend())
            done = suspensions.suspend_phone(
                db,
                user,
                reason=reason_of(request.form.get("reason", "")),
                loss=_loss(),
                channel="helpdesk",
                actor=staff.sub,
                now=context.now(),
                audit=context.audit_context(),
                verified=ticked,
            )
            message = "already_suspended" if done.already_suspended else "phone_suspended"
            extra: dict[str, Any] = {"done": message, "case": done.case}
        elif action == "suspend_account":
            changed = suspensions.suspend_account(
                db, user, _acting(staff, authority), reason=note or "helpdesk"
            )
            extra = {"done": "account_suspended" if changed else "account_already_suspended"}
        elif action == "access_pass":
            code = suspensions.issue_access_pass(db, user, _acting(staff, authority))
            extra = {"done": "access_pass", "access_pass": code}
        else:
            return _personpage(user, authority, 400, error="action")
    except IdpError as error:
        return _refused(error, partial(_personpage, user, authority))
    db.commit()
    context.announce()
    return _personpage(user, authority, **extra)


def _loss() -> Loss:
    """The day (and time, if known) of the loss as typed on the page; empty means now.

    Raises:
        InvalidLossTimeError
    """
    return validate_loss_form(
        request.form.get("lost_on", ""), request.form.get("lost_time", ""), now=context.now()
    )


@bp.get("/admin/cases")
def cases() -> BaseResponse:
    _, authority = console.staff(Authority.may_follow_cases)
    return _casespage(authority, open_only=request.args.get("all") is None)


def _casespage(
    authority: Authority, status: int = 200, *, open_only: bool = True, **extra: Any
) -> Response:
    db = context.db()
    items = cases_for(db, authority, open_only=open_only)
    return page(
        "cases.html",
        status,
        cases=items,
        names=usernames(db, {c.user_id for c in items}),
        overdue={c.id for c in items if is_overdue(c, context.now())},
        authority=authority,
        **extra,
    )


@bp.post("/admin/cases/<case_id>/letter")
@large_body(lambda settings: settings.order_max_bytes + 64 * 1024)
def case_letter(case_id: str) -> BaseResponse:
    staff, authority = console.staff(lambda a: a.may_suspend() or bool(a.units))
    verify_csrf()
    db = context.db()
    try:
        context.deps().suspensions.receive_letter(
            db, case_id[:32], uploaded_order("letter_file"), _acting(staff, authority)
        )
    except IdpError as error:
        db.rollback()
        return _casespage(authority, 400, error=error_text(error))
    return redirect(url_for("helpdesk.cases", received=1), code=303)


@bp.get("/admin/cases/<case_id>")
def case_page(case_id: str) -> BaseResponse:
    _, authority = console.staff(Authority.may_follow_cases)
    return _casepage(authority, case_id[:32])


def _visible_case(authority: Authority, case_id: str) -> tuple[LostDeviceCase, User]:
    """Raises RefusedError (404) for a case that does not exist or is not for ``authority``."""
    db = context.db()
    case = db.get(LostDeviceCase, case_id)
    person = db.get(User, case.user_id) if case else None
    if case is None or person is None or not may_see_case(authority, person):
        raise _not_found()
    return case, person


def _casepage(authority: Authority, case_id: str, status: int = 200, **extra: Any) -> Response:
    case, person = _visible_case(authority, case_id)
    return page(
        "case.html",
        status,
        case=case,
        person=person,
        authority=authority,
        overdue=is_overdue(case, context.now()),
        may_declare=person.unit_code in authority.units,
        **extra,
    )


@bp.get("/admin/cases/<case_id>/letter.pdf")
def case_letter_pdf(case_id: str) -> BaseResponse:
    """The letter to CGD, filled in and ready for the head of unit to sign."""
    staff, authority = console.staff(Authority.may_follow_cases)
    db = context.db()
    case, person = _visible_case(authority, case_id[:32])
    if case.letter_due is None:
        return _casepage(authority, case.id, 409, error_message=error_text(NoLetterDueError()))
    signer = staff if person.unit_code in authority.units else None
    content = build_letter_pdf(
        letter_facts(db, case, person, signer=signer, now=context.now()),
        cgd_contact(context.deps().settings),
        font_dir=_FONTS,
    )
    record(
        db,
        "revocation.case_letter_drafted",
        now=context.now(),
        actor=staff.sub,
        context=context.audit_context(),
        case=case.id,
        user=person.sub,
    )
    name = f"หนังสือแจ้งโทรศัพท์สูญหาย-{person.username}.pdf"
    return Response(
        content,
        headers={
            "Content-Type": "application/pdf",
            # RFC 6266 §4.3: the Thai name for browsers that read filename*, ASCII for the rest.
            "Content-Disposition": f'attachment; filename="letter-{person.username}.pdf"; '
            f"filename*=UTF-8''{quote(name, safe='')}",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


def _period(settings: Settings, locale: str) -> str | None:
    """The registration period as announced (Thai dates), or None when it is not limited."""
    opens, closes = settings.registration_opens_at, settings.registration_closes_at
    if opens is not None and closes is not None:
        return f"{format_date(opens, locale)} – {format_date(closes, locale)}"
    if opens is not None:
        return str(gettext("from %(day)s", day=format_date(opens, locale)))
    if closes is not None:
        return str(gettext("until %(day)s", day=format_date(closes, locale)))
    return None


def cgd_contact(settings: Settings) -> CgdContact:
    return CgdContact(
        phone=settings.cgd_contact_phone,
        line=settings.cgd_contact_line,
        email=settings.cgd_contact_email,
        address=settings.cgd_address,
    )


@bp.post("/admin/cases/<case_id>/declare-lost")
def case_declare_lost(case_id: str) -> BaseResponse:
    return _case_change(case_id, "lost", Suspensions.declare_lost, _loss)


@bp.post("/admin/cases/<case_id>/close")
def case_close(case_id: str) -> BaseResponse:
    return _case_change(
        case_id, "closed", Suspensions.close_investigation, lambda: request.form.get("finding", "")
    )


_Given = TypeVar("_Given")


def _case_change(
    case_id: str,
    done: str,
    change: Callable[[Suspensions, Session, str, _Given, Acting], object],
    given: Callable[[], _Given],
) -> BaseResponse:
    """A change of a case asked for on its page, with what the page gave (read once the
    caller is known); a refusal is answered on that page."""
    staff, authority = console.staff(Authority.may_follow_cases)
    verify_csrf()
    case_id = case_id[:32]
    try:
        change(
            context.deps().suspensions, context.db(), case_id, given(), _acting(staff, authority)
        )
    except IdpError as error:
        return _refused(error, partial(_casepage, authority, case_id))
    return redirect(url_for("helpdesk.case_page", case_id=case_id, done=done), code=303)


def _refused(error: IdpError, answer: Callable[..., Response]) -> Response:
    """Nothing of a refused change stays; the page says why: the moment of the loss it could
    not read, or the rule that refused it."""
    context.db().rollback()
    if isinstance(error, InvalidLossTimeError):
        return answer(400, error="lost_at")
    return answer(409, error_message=error_text(error))


# --- the user's own account -----------------------------------------------------------------


def _own() -> tuple[UserSession, User]:
    return console.signed_in("/account")


@bp.get("/account")
def account() -> BaseResponse:
    user_session, user = _own()
    return _accountpage(user_session, user)


def _accountpage(
    user_session: UserSession, user: User, status: int = 200, **extra: Any
) -> Response:
    return page(
        "account.html",
        status,
        user=user,
        current=user_session,
        **_overview(user),
        locale=str(get_locale()),
        **extra,
    )


@bp.post("/account/sessions/end")
def end_sessions() -> BaseResponse:
    user_session, user = _own()
    verify_csrf()
    deps = context.deps()
    which = request.form.get("sid", "")
    targets = [s.id for s in _live_sessions(user) if which in ("all", s.id)]
    for sid in targets:
        end_session(
            context.db(),
            deps.revocations,
            sid,
            reason="ended_by_user",
            now=context.now(),
            access_token_ttl=deps.settings.access_token_ttl,
            actor=user.sub,
            context=context.audit_context(),
        )
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
        authenticator().verify_may_attempt(
            db, user, now=context.now(), context=context.audit_context()
        )
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
        loss = _loss()
    except InvalidLossTimeError:
        return _accountpage(user_session, user, 400, report_error="lost_at")
    try:
        done = deps.suspensions.suspend_phone(
            db,
            user,
            reason=reason_of(request.form.get("reason", "lost")),
            loss=loss,
            channel="self",
            actor=user.sub,
            now=context.now(),
            audit=context.audit_context(),
        )
    except IdpError as error:
        db.rollback()
        return _accountpage(user_session, user, 409, report_message=error_text(error))
    db.commit()
    context.announce()
    return _accountpage(user_session, user, reported=done.case)


def authenticator_failure(user: User) -> None:
    """A wrong password or citizen ID here counts like a failed login (and may lock)."""
    from idp.web.login import authenticator

    authenticator().count_failure(
        context.db(),
        user,
        now=context.now(),
        context=context.audit_context(),
        reason="lost_phone_report",
    )
