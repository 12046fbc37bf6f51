"""The portal's pages and endpoints: sign-in through the IdP (code flow + PKCE), server-side
sessions ended by back-channel logout and CAEP events, role pages, recording requests,
approvals confirmed on the phone, the archive bundle and a small bearer-token API."""

from __future__ import annotations

import hmac
import json
import secrets
import time
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from functools import wraps
from typing import Any
from typing import TypeVar
from typing import cast

from flask import Blueprint
from flask import Flask
from flask import Response
from flask import abort
from flask import current_app
from flask import g
from flask import jsonify
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from gfms_portal import Portal
from gfms_portal import archive
from gfms_portal import documents
from gfms_portal import names
from gfms_portal.bundle import TrustAnchor
from gfms_portal.bundle import export_bundle
from gfms_portal.bundle import load_key_history
from gfms_portal.documents import Draft
from gfms_portal.documents import Person
from gfms_portal.documents import Upload
from gfms_portal.errors import IdpUnavailableError
from gfms_portal.errors import InvalidTokenError
from gfms_portal.errors import PortalError
from gfms_portal.filenames import content_disposition
from gfms_portal.i18n import LANGUAGES
from gfms_portal.i18n import TEXT
from gfms_portal.i18n import format_amount
from gfms_portal.i18n import format_date
from gfms_portal.i18n import translate
from gfms_portal.idp_client import CAEP
from gfms_portal.idp_client import CibaEnded
from gfms_portal.idp_client import CibaPending
from gfms_portal.models import Attachment
from gfms_portal.models import AuthRequest
from gfms_portal.models import Document
from gfms_portal.models import PhoneApproval
from gfms_portal.models import PortalSession
from gfms_portal.models import RevokedSid
from gfms_portal.models import Status

bp = Blueprint("portal", __name__)
COOKIE = "gfms_portal_session"  # not the IdP's cookie names: browsers share cookies per host
LANG_COOKIE = "gfms_portal_lang"
LOGIN_SCOPE = "openid profile role:recorder role:approve-1 role:approve-2"
_STATUS = {
    "idp_unavailable": 503, "invalid_token": 401, "evidence_invalid": 400,
    "confirmation_mismatch": 409, "separation_of_duties": 403, "not_allowed": 403,
    "invalid_document": 400, "editing_closed": 409,
}  # fmt: skip
_Handler = TypeVar("_Handler", bound=Callable[..., Any])


def portal() -> Portal:
    return cast(Portal, current_app.extensions["portal"])


def db() -> Session:
    if "db" not in g:
        g.db = portal().sessions()
    return cast(Session, g.db)


def now() -> datetime:
    return datetime.now(UTC)


def lang() -> str:
    chosen = request.args.get("lang") or request.cookies.get(LANG_COOKIE) or "th"
    return chosen if chosen in LANGUAGES else "th"


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.teardown_appcontext(_close_db)
    app.jinja_env.globals.update(
        t=lambda key: translate(key, lang()), lang=lang,
        person_name=lambda sub, stored=None: names.person_name(db(), sub, lang(), stored=stored),
        unit_name=lambda code: names.unit_name(db(), code, lang()),
    )  # fmt: skip
    app.jinja_env.filters.update(
        amount=lambda value: format_amount(value, lang()),
        date=lambda value: format_date(value, lang()),
    )
    app.register_error_handler(PortalError, _portal_error)


def _close_db(error: BaseException | None) -> None:
    session: Session | None = g.pop("db", None)
    if session is not None:
        if error is not None:
            session.rollback()
        session.close()


def page(template: str, status: int = 200, **values: Any) -> Response:
    if values.get("notice") not in TEXT:
        # Only the portal's own words: a link cannot make the page say something else.
        values["notice"] = None
    response = make_response(render_template(template, **values), status)
    if request.args.get("lang") in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang(), samesite="Lax", httponly=True)
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(code: str, status: int) -> Response:
    return page("error.html", status, code=code)


def _portal_error(error: PortalError) -> Response:
    if "db" in g:
        g.db.rollback()
    if request.path.startswith("/api/"):
        response = jsonify({"error": error.code})
        response.status_code = _STATUS.get(error.code, 400)
        return response
    return error_page(error.code, _STATUS.get(error.code, 400))


# --- sessions -----------------------------------------------------------------------------


@bp.before_app_request
def _load_session() -> None:
    g.portal_session = None
    sid = request.cookies.get(COOKIE)
    if not sid or request.path.startswith(("/auth/backchannel-logout", "/auth/security-events")):
        return
    row = db().get(PortalSession, sid)
    if row is None:
        return
    if row.ended_at is not None:
        g.ended_notice = ENDED_NOTICES.get(row.end_reason or "", "err:session")
        return
    settings, moment = portal().settings, now()
    created, seen = _aware(row.created_at), _aware(row.last_seen_at)
    if (moment - created > timedelta(seconds=settings.session_max_age)
            or moment - seen > timedelta(seconds=settings.session_idle)):  # fmt: skip
        _end_sessions(db(), PortalSession.id == row.id, reason="timeout")
        db().commit()
        g.ended_notice = ENDED_NOTICES["timeout"]
        return
    row.last_seen_at = moment
    db().commit()
    g.portal_session = row


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def person() -> Person:
    row: PortalSession = g.portal_session
    return Person(sub=row.sub, name=row.name, roles=tuple(row.roles), username=row.username,
                  unit=row.unit)  # fmt: skip


def signed_in(view: _Handler) -> _Handler:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.portal_session is None:
            return page("index.html", 401, notice=g.get("ended_notice") or "err:session")
        if request.method == "POST":
            given = request.form.get("csrf", "")
            if not hmac.compare_digest(given, g.portal_session.csrf):
                return error_page("csrf", 400)
        return view(*args, **kwargs)

    return cast(_Handler, wrapper)


def _end_sessions(session: Session, *where: Any, reason: str) -> int:
    ended = session.execute(
        update(PortalSession)
        .where(PortalSession.ended_at.is_(None), *where)
        .values(ended_at=now(), end_reason=reason)
    )
    return int(ended.rowcount)  # type: ignore[attr-defined]


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/")
def index() -> Response:
    if g.portal_session is None:
        return page("index.html", notice=g.get("ended_notice") or request.args.get("notice"))
    return page("home.html", me=person(), session=g.portal_session,
                auditor=bool(_auditor_units()))  # fmt: skip


# --- sign-in and sign-out -------------------------------------------------------------------


@bp.get("/auth/login")
def login() -> BaseResponse:
    start = portal().idp.start_authorization(scope=LOGIN_SCOPE)
    db().add(AuthRequest(state=start.state, nonce=start.nonce, code_verifier=start.code_verifier,
                         purpose="login", created_at=now()))  # fmt: skip
    db().commit()
    return _bound_to_this_browser(redirect(start.url), start.state)


# The state of the authorization request this browser started: a callback carrying another
# state (someone else's login, sent to this browser) is refused (login CSRF, RFC 9700 §4.7).
STATE_COOKIE = "gfms_portal_state"


def _bound_to_this_browser(response: BaseResponse, state: str) -> BaseResponse:
    response.set_cookie(STATE_COOKIE, state, max_age=portal().settings.auth_request_ttl,
                        httponly=True, samesite="Lax", secure=portal().settings.production,
                        path="/auth")  # fmt: skip
    return response


@bp.get("/auth/callback")
def callback() -> BaseResponse:
    """The authorization response (RFC 6749 §4.1.2, RFC 9207 ``iss``): the state is used
    once, so a second callback (double submit, a reload, a replay) changes nothing."""
    idp = portal().idp
    state = request.args.get("state", "")
    # RFC 9207 §2.4: the response must come from our issuer (mix-up attacks).
    if request.args.get("iss") != idp.issuer:
        return error_page("invalid_token", 400)
    if not hmac.compare_digest(request.cookies.get(STATE_COOKIE, ""), state):
        return error_page("used", 400)
    pending = _consume(state)
    if pending is None:
        return error_page("used", 400)
    if "error" in request.args:
        if pending.purpose == "approve" and pending.document_id is not None:
            return redirect(url_for("portal.show", document_id=pending.document_id,
                                    notice="err:denied"))  # fmt: skip
        return error_page("denied", 400)
    tokens = idp.exchange_code(request.args.get("code", ""), code_verifier=pending.code_verifier)
    id_claims = idp.validate_id_token(
        str(tokens.get("id_token", "")), nonce=pending.nonce, now=time.time()
    )
    # Userinfo's names are for the pages; a signature is checked and kept against the signed
    # ID token alone, as the offline verifier sees it.
    with_names = _with_names(tokens, id_claims)
    if pending.purpose == "login":
        return _complete_login(tokens, with_names)
    return _complete_approval(pending, tokens, id_claims)


def _consume(state: str) -> AuthRequest | None:
    limit = now() - timedelta(seconds=portal().settings.auth_request_ttl)
    used = db().execute(
        update(AuthRequest)
        .where(AuthRequest.state == state, AuthRequest.used_at.is_(None),
               AuthRequest.created_at > limit)
        .values(used_at=now())
    )  # fmt: skip
    db().commit()
    if used.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return db().get(AuthRequest, state)


def _with_names(tokens: dict[str, Any], id_claims: dict[str, Any]) -> dict[str, Any]:
    """The ID token's claims plus userinfo's (names, units by name), kept for the pages."""
    info = portal().idp.userinfo(str(tokens.get("access_token", "")), sub=id_claims["sub"])
    names.remember(db(), info, now=now())
    # The ID token's own claims (nonce, sid, acr, roles as issued) stay as they were.
    return info | id_claims


def _name(claims: dict[str, Any]) -> str:
    thai, english = names.names_of(claims)
    return thai or english or str(claims.get("preferred_username") or names.UNKNOWN)


def _unit(claims: dict[str, Any]) -> str | None:
    unit = claims.get("gfms_unit")
    return unit if isinstance(unit, str) else None


def _complete_login(tokens: dict[str, Any], claims: dict[str, Any]) -> BaseResponse:
    sid = claims.get("sid")
    if sid and db().get(RevokedSid, sid) is not None:
        raise InvalidTokenError("the IdP session already ended")
    moment = now()
    row = PortalSession(
        id=secrets.token_urlsafe(32), sub=claims["sub"], name=_name(claims), sid=sid,
        username=str(claims.get("preferred_username") or ""), unit=_unit(claims),
        roles=list(claims.get("gfms_roles") or []), id_token=tokens["id_token"],
        csrf=secrets.token_urlsafe(24), created_at=moment, last_seen_at=moment,
    )  # fmt: skip
    db().add(row)
    db().commit()
    response = redirect(url_for("portal.index"))
    response.set_cookie(COOKIE, row.id, httponly=True, samesite="Lax",
                        secure=portal().settings.production, path="/")  # fmt: skip
    return response


@bp.post("/auth/logout")
@signed_in
def logout() -> BaseResponse:
    row: PortalSession = g.portal_session
    _end_sessions(db(), PortalSession.id == row.id, reason="logout")
    db().commit()
    try:
        target = portal().idp.logout_url(row.id_token, portal().settings.base_url + "/")
    except IdpUnavailableError:
        target = url_for("portal.index", notice="logged_out")
    response = redirect(target)
    response.delete_cookie(COOKIE, path="/")
    return response


@bp.post("/auth/backchannel-logout")
def backchannel_logout() -> Response:
    """OIDC Back-Channel Logout 1.0 §2.5-2.8: end the portal sessions of that IdP session
    (or of that user), and refuse the sid from now on."""
    try:
        claims = portal().idp.validate_logout_token(
            request.form.get("logout_token", ""), now=time.time()
        )
    except (InvalidTokenError, IdpUnavailableError):
        response = jsonify({"error": "invalid_request"})
        response.status_code = 400
        return response
    sid, sub = claims.get("sid"), claims.get("sub")
    if sid:
        if db().get(RevokedSid, sid) is None:
            db().add(RevokedSid(sid=sid, revoked_at=now()))
        _end_sessions(db(), PortalSession.sid == sid, reason="backchannel_logout")
    else:
        _end_sessions(db(), PortalSession.sub == sub, reason="backchannel_logout")
    db().commit()
    response = jsonify({})
    response.headers["Cache-Control"] = "no-store"  # §2.8
    return response


CREDENTIAL_REVOKED = "credential_revoked"
# Why a session ended, as its own browser is told on the sign-in page: that the Soft Token was
# suspended or the IdP ended the sign-in, never by whom, why or what else changed.
ENDED_NOTICES = {
    CREDENTIAL_REVOKED: "err:session:suspended",
    "caep": "err:session:ended",
    "backchannel_logout": "err:session:ended",
    "timeout": "err:session:timeout",
    "logout": "logged_out",
}


@bp.post("/auth/security-events")
def security_events() -> Response:
    """A CAEP event pushed by the IdP (RFC 8935): a revoked session or credential ends every
    portal session of the user. 202 accepts; 400 with an RFC 8935 error refuses."""
    try:
        claims = portal().idp.validate_security_event(request.get_data(as_text=True),
                                                      now=time.time())  # fmt: skip
    except (InvalidTokenError, IdpUnavailableError):
        response = jsonify({"err": "invalid_request", "description": "invalid SET"})
        response.status_code = 400
        return response
    (event_type,) = claims["events"]
    sub = claims["sub_id"].get("sub")
    if event_type in (CAEP + "session-revoked", CAEP + "credential-change") and sub:
        event = claims["events"][event_type]
        revoked = event_type == CAEP + "credential-change" and event.get("change_type") in (
            "revoke", "delete")  # fmt: skip
        _end_sessions(db(), PortalSession.sub == sub,
                      reason=CREDENTIAL_REVOKED if revoked else "caep")  # fmt: skip
        if revoked:
            # The same change's session-revoked (or logout token) may have ended them first:
            # the sign-in page should still tell why.
            db().execute(
                update(PortalSession)
                .where(PortalSession.sub == sub,
                       PortalSession.end_reason.in_(("caep", "backchannel_logout")),
                       PortalSession.ended_at > now() - timedelta(minutes=10))
                .values(end_reason=CREDENTIAL_REVOKED)
            )  # fmt: skip
        sids = claims["events"][event_type].get("sids") or []
        for sid in sids:
            if isinstance(sid, str) and db().get(RevokedSid, sid) is None:
                db().add(RevokedSid(sid=sid, revoked_at=now()))
        db().commit()
    return Response(status=202)


# --- role pages and documents ---------------------------------------------------------------

ROLE_STATUS = {
    "recorder": None,
    "approve-1": Status.CHECKED,
    "approve-2": Status.WITHDRAWAL_APPROVED,
}


@bp.get("/roles/<role>")
@signed_in
def role_page(role: str) -> Response:
    if role not in ROLE_STATUS:
        abort(404)
    me = person()
    units = {r["unit"] for r in me.roles if r.get("role") == role}
    if not units:
        return error_page("not_allowed", 403)
    found = documents.documents_for(db(), units)
    waiting = ROLE_STATUS[role]
    if waiting is not None:
        found = [d for d in found if d.status == waiting]
    return page("documents.html", role=role, documents=found, me=me)


@bp.get("/documents")
@signed_in
def report() -> Response:
    me = person()
    return page("documents.html", role=None, documents=documents.documents_for(db(), me.units()),
                me=me)  # fmt: skip


def _uploads() -> list[Upload]:
    return [Upload(f.filename or "attachment", f.read()) for f in request.files.getlist("files")]


def _draft(unit: str) -> Draft:
    form = request.form
    return Draft(type=form.get("type", ""), amount=form.get("amount", ""),
                 payee=form.get("payee", ""), description=form.get("description", ""),
                 unit=unit)  # fmt: skip


@bp.get("/claims")
@signed_in
def my_claims() -> Response:
    me = person()
    return page("documents.html", role=None, claims=True, me=me,
                documents=documents.claims_of(db(), me.username))  # fmt: skip


@bp.route("/documents/new", methods=["GET", "POST"])
@signed_in
def new_document() -> BaseResponse:
    me = person()
    keying = sorted({r["unit"] for r in me.roles if r.get("role") == "recorder"})
    units = sorted({*keying, *([me.unit] if me.unit else [])})
    if not units:
        return error_page("not_allowed", 403)
    if request.method == "GET":
        return page("form.html", document=None, units=units, types=documents.TYPES,
                    form_id=secrets.token_urlsafe(24), keying=bool(keying),
                    me=me)  # fmt: skip
    form_id = request.form.get("form_id", "")[:64] or None
    earlier = documents.recorded_from(db(), form_id, me) if form_id else None
    if earlier is None:
        try:
            earlier = documents.record_document(
                db(), me, _draft(request.form.get("unit", units[0])), _uploads(), now=now(),
                max_bytes=portal().settings.attachment_max_bytes, form_id=form_id,
                claimant=request.form.get("claimant", ""),
            )  # fmt: skip
            db().commit()
        except IntegrityError:
            # The same form, sent twice at once: the other submission recorded it.
            db().rollback()
            earlier = documents.recorded_from(db(), form_id or "", me)
            if earlier is None:
                raise
    return redirect(url_for("portal.show", document_id=earlier.id, notice="recorded_notice"))


def _visible(document_id: int) -> Document:
    document = db().get(Document, document_id)
    if document is None or not person().may_see(document):
        abort(404)
    return document


@bp.route("/documents/<int:document_id>/edit", methods=["GET", "POST"])
@signed_in
def edit(document_id: int) -> BaseResponse:
    document = _visible(document_id)
    # SECURITY: the form is refused, not only its saving, once editing is closed: nobody is
    # invited to change what an approver already signed.
    documents.check_may_edit(document, person())
    if request.method == "GET":
        return page("form.html", document=document, units=[document.unit],
                    types=documents.TYPES, keying=False, me=person())  # fmt: skip
    documents.edit_document(
        db(), document, person(), _draft(document.unit), _uploads(), now=now(),
        max_bytes=portal().settings.attachment_max_bytes,
    )  # fmt: skip
    db().commit()
    return redirect(url_for("portal.show", document_id=document.id, notice="recorded_notice"))


@bp.get("/documents/<int:document_id>")
@signed_in
def show(document_id: int) -> Response:
    document = _visible(document_id)
    me = person()
    may: list[str] = []
    for action in documents.RULES:
        try:
            documents.check_may_sign(document, me, action)
        except PortalError:
            continue
        may.append(action)
    return page("document.html", document=document, me=me, may=may,
                may_edit=documents.may_edit(document, me),
                notice=request.args.get("notice"), csrf=g.portal_session.csrf)  # fmt: skip


@bp.get("/documents/<int:document_id>/attachments/<int:attachment_id>")
@signed_in
def attachment(document_id: int, attachment_id: int) -> Response:
    document = _visible(document_id)
    found = db().get(Attachment, attachment_id)
    if found is None or found.document_id != document.id:
        abort(404)
    response = make_response(found.content)
    response.headers["Content-Type"] = found.content_type
    # The ASCII fallback keeps the extension: a browser without RFC 8187 still opens it.
    extension = found.content_type.rpartition("/")[2].replace("jpeg", "jpg")
    response.headers["Content-Disposition"] = content_disposition(
        found.filename, fallback=f"attachment-{found.id}.{extension}"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.post("/documents/<int:document_id>/approve")
@signed_in
def approve(document_id: int) -> BaseResponse:
    """Start one signature (the claim, the check or an approval): the IdP shows the details
    on the login page and the phone, the signer types the number and approves; the answer
    comes back to /auth/callback."""
    document = _visible(document_id)
    action = request.form.get("action", "")
    documents.check_may_sign(document, person(), action)
    content = documents.document_content(document)
    details = documents.build_authorization_details(content, action)
    role = documents.RULES[action].role
    # The claimant signs as themselves: no role; the others with a token of that role.
    scope = "openid profile" if role == documents.CLAIMANT else f"openid profile role:{role}"
    start = portal().idp.start_authorization(scope=scope, authorization_details=details)
    db().add(AuthRequest(
        state=start.state, nonce=start.nonce, code_verifier=start.code_verifier,
        purpose="approve", session_id=g.portal_session.id, document_id=document.id,
        action=action, document_sha256=documents.document_sha256(content),
        authorization_details=details, created_at=now(),
    ))  # fmt: skip
    db().commit()
    return _bound_to_this_browser(redirect(start.url), start.state)


def _complete_approval(
    pending: AuthRequest | PhoneApproval, tokens: dict[str, Any], id_claims: dict[str, Any],
    *, named: dict[str, Any] | None = None,
) -> BaseResponse:  # fmt: skip
    """Keep the signature of a confirmed approval, the same whichever way it was confirmed
    (the browser's step-up or the phone through CIBA). ``named``: where the signer's name
    comes from when the ID token has none (CIBA takes no ``claims`` request: userinfo's,
    fetched with the new token)."""
    row: PortalSession | None = g.portal_session
    # SECURITY: only the approver who asked, in the portal session that asked (login CSRF,
    # a code injected into another user's browser).
    if row is None or row.id != pending.session_id or row.sub != id_claims["sub"]:
        raise InvalidTokenError("another session")
    idp = portal().idp
    access_token = str(tokens.get("access_token", ""))
    claims = idp.validate_access_token(access_token, now=time.time())
    if claims.get("sub") != row.sub:
        raise InvalidTokenError("another user")
    # Sensitive: ask the IdP whether the token still stands (a phone suspended meanwhile).
    introspected = idp.introspect(access_token)
    if not introspected.get("active") or introspected.get("txn") != claims.get("txn"):
        raise InvalidTokenError("inactive")
    # RFC 9449: the token must be bound to the key our proof showed (a token bound to another
    # key, or to none, was not issued for this request).
    if claims.get("cnf", {}).get("jkt") != idp.dpop_key.thumbprint():
        raise InvalidTokenError("not bound to our key")
    evidence = idp.get_evidence(str(claims.get("txn", "")))
    if evidence.get("client_id") != idp.client_id:
        raise InvalidTokenError("evidence of another client")
    document = db().get(Document, pending.document_id)
    if document is None:
        abort(404)
    documents.record_signature(
        db(), document, action=str(pending.action),
        requested_sha256=str(pending.document_sha256),
        requested_details=list(pending.authorization_details or []),
        access_claims=claims, access_token=access_token, id_token=str(tokens["id_token"]),
        id_claims=id_claims, evidence=evidence,
        signer_name=_name(named or id_claims), now=now(),
    )  # fmt: skip
    db().commit()
    return redirect(url_for("portal.show", document_id=document.id, notice="signed_notice"))


# --- approvals sent to the phone (CIBA, poll mode) ---------------------------------------

_PHONE_OUTCOMES = {"access_denied": "denied", "expired_token": "expired"}
# How often the waiting page asks the portal; the portal asks the IdP only as often as the
# IdP's interval allows (CIBA Core §7.3).
WAITING_PAGE_REFRESH = 2


@bp.post("/documents/<int:document_id>/phone")
@signed_in
def send_to_phone(document_id: int) -> BaseResponse:
    """Start one signature on the approver's phone without the sign-in page (CIBA Core §7.1):
    the IdP pushes the details and a binding message (the document number, also on the
    waiting page) to the phone of the approver signed in here."""
    document = _visible(document_id)
    me, action = person(), request.form.get("action", "")
    documents.check_may_sign(document, me, action)
    if not me.username:
        return error_page("not_allowed", 403)
    content = documents.document_content(document)
    details = documents.build_authorization_details(content, action)
    role = documents.RULES[action].role
    scope = "openid profile" if role == documents.CLAIMANT else f"openid profile role:{role}"
    # CIBA Core §7.1: short, shown on both screens: the document's number (digits and "-").
    binding = str(document.number)
    try:
        started = portal().idp.backchannel_authorize(
            scope=scope, login_hint=me.username, binding_message=binding,
            authorization_details=details,
        )  # fmt: skip
    except CibaEnded:
        return redirect(url_for("portal.show", document_id=document.id,
                                notice="err:phone:refused"))  # fmt: skip
    moment = now()
    row = PhoneApproval(
        ref=secrets.token_urlsafe(24), auth_req_id=started.auth_req_id,
        session_id=g.portal_session.id, document_id=document.id, action=action,
        document_sha256=documents.document_sha256(content), authorization_details=details,
        binding_message=binding, interval=started.interval,
        next_poll_at=moment + timedelta(seconds=started.interval),
        expires_at=moment + timedelta(seconds=started.expires_in), created_at=moment,
    )  # fmt: skip
    db().add(row)
    db().commit()
    return redirect(url_for("portal.phone_waiting", document_id=document.id, ref=row.ref))


@bp.get("/documents/<int:document_id>/phone/<ref>")
@signed_in
def phone_waiting(document_id: int, ref: str) -> BaseResponse:
    """The waiting page: asks the IdP's token endpoint when the interval allows, and moves on
    to the document once the phone answered."""
    row = db().get(PhoneApproval, ref[:64])
    # Only the portal session that sent it sees it (or learns that it exists).
    if row is None or row.session_id != g.portal_session.id or row.document_id != document_id:
        abort(404)
    if row.outcome is None and _aware(row.expires_at) <= now():
        _finish(row, "expired")
    if row.outcome is None and _claim_poll(row):
        tokens = _poll(row)
        if tokens is not None:
            return _complete_phone_approval(row, tokens)
    if row.outcome is not None:
        notice = "signed_notice" if row.outcome == "signed" else f"err:phone:{row.outcome}"
        return redirect(url_for("portal.show", document_id=document_id, notice=notice))
    response = page("phone.html", document=_visible(document_id), approval=row)
    response.headers["Refresh"] = str(WAITING_PAGE_REFRESH)
    return response


def _claim_poll(row: PhoneApproval) -> bool:
    """This request polls the IdP if the interval has passed and no other request (a second
    tab, a reload) took this turn: one poll per interval, never slow_down by ourselves."""
    moment = now()
    claimed = db().execute(
        update(PhoneApproval)
        .where(PhoneApproval.ref == row.ref, PhoneApproval.outcome.is_(None),
               PhoneApproval.next_poll_at <= moment)
        .values(next_poll_at=moment + timedelta(seconds=row.interval))
        .execution_options(synchronize_session=False)  # refreshed below
    )  # fmt: skip
    db().commit()
    db().refresh(row)
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


def _poll(row: PhoneApproval) -> dict[str, Any] | None:
    try:
        return portal().idp.poll_ciba(row.auth_req_id)
    except CibaPending as pending:
        if pending.slow_down:
            # CIBA Core §11: the interval grows by 5 seconds, for good.
            row.interval += 5
            row.next_poll_at = now() + timedelta(seconds=row.interval)
            db().commit()
        return None
    except CibaEnded as ended:
        _finish(row, _PHONE_OUTCOMES.get(ended.error, "failed"))
        return None


def _finish(row: PhoneApproval, outcome: str) -> None:
    db().execute(
        update(PhoneApproval)
        .where(PhoneApproval.ref == row.ref, PhoneApproval.outcome.is_(None))
        .values(outcome=outcome)
        .execution_options(synchronize_session=False)  # refreshed below
    )
    db().commit()
    db().refresh(row)


def _complete_phone_approval(row: PhoneApproval, tokens: dict[str, Any]) -> BaseResponse:
    try:
        id_claims = portal().idp.validate_id_token(
            str(tokens.get("id_token", "")), nonce=None, now=time.time()
        )
        # The names for the pages, as after a browser confirmation (DPoP at userinfo too).
        response = _complete_approval(row, tokens, id_claims,
                                      named=_with_names(tokens, id_claims))  # fmt: skip
    except PortalError:
        db().rollback()
        _finish(row, "failed")
        raise
    _finish(row, "signed")
    return response


@bp.post("/documents/<int:document_id>/return")
@signed_in
def send_back(document_id: int) -> BaseResponse:
    """The finance officer sends a signed claim back to its claimant, saying why."""
    document = _visible(document_id)
    documents.send_back(db(), document, person(), request.form.get("reason", ""), now=now())
    db().commit()
    return redirect(url_for("portal.show", document_id=document.id, notice="returned_notice"))


@bp.get("/documents/<int:document_id>/bundle.json")
@signed_in
def bundle(document_id: int) -> Response:
    document = _visible(document_id)
    idp = portal().idp
    data = export_bundle(document, issuer=idp.issuer, client_id=idp.client_id,
                         jwks=idp.key_history_document())  # fmt: skip
    return _download(data, f"gfms-{document.number}.bundle.json")


def _download(data: dict[str, Any], filename: str) -> Response:
    response = make_response(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True))
    response.headers["Content-Type"] = "application/json; charset=utf-8"
    response.headers["Content-Disposition"] = content_disposition(filename, fallback=filename)
    return response


# --- the archive, read by auditors -------------------------------------------------------


def _auditor_units() -> set[str]:
    return portal().settings.auditor_units(person().username)


def _trust() -> TrustAnchor:
    """The portal's own trust anchor: its issuer and client, the IdP's key history."""
    idp = portal().idp
    try:
        keys = load_key_history(idp.key_history_document())
    except ValueError as exc:
        raise IdpUnavailableError("key history") from exc
    return TrustAnchor(issuer=idp.issuer, client_id=idp.client_id, keys=keys)


@bp.get("/audit")
@signed_in
def audit() -> Response:
    """กค 0402.2/ว 3 ข้อ 4: read-only oversight of the units in the auditor's scope, each
    signature checked as the State Audit Office would check it."""
    units = _auditor_units()
    if not units:
        return error_page("not_allowed", 403)
    found = archive.documents_in(db(), units)
    years = portal().settings.retention_years
    today = now().astimezone(archive.BANGKOK).date()
    return page("audit.html", documents=found, units=sorted(units),
                reports=archive.verify_documents(found, _trust()), retention_years=years,
                kept_until={d.id: archive.retained_until(d, years=years).isoformat()
                            for d in found},
                start=today.replace(day=1).isoformat(), end=today.isoformat())  # fmt: skip


@bp.get("/audit/export")
@signed_in
def audit_export() -> Response:
    """Every bundle of the period in the auditor's units, as one file for ``gfms-portal
    verify``."""
    units = _auditor_units()
    if not units:
        return error_page("not_allowed", 403)
    try:
        period = archive.Period.parse(request.args.get("start", ""), request.args.get("end", ""))
    except ValueError:
        return error_page("invalid_document", 400)
    idp = portal().idp
    data = archive.export_period(
        archive.documents_in(db(), units, period), period=period, units=units,
        issuer=idp.issuer, client_id=idp.client_id, key_history=idp.key_history_document(),
    )  # fmt: skip
    return _download(data, f"gfms-export-{period.start}-{period.end}.json")


# --- a bearer-token API ---------------------------------------------------------------------


@bp.get("/api/documents")
def api_documents() -> Response:
    """The documents of the units in the access token's ``gfms_roles`` (RFC 6750 bearer,
    RFC 9068 JWT validated locally against the JWKS)."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    try:
        if scheme.lower() != "bearer" or not token:
            raise InvalidTokenError("no bearer token")
        claims = portal().idp.validate_access_token(token.strip(), now=time.time())
        # SECURITY: RFC 9449 §7.2: a token bound to a key (cnf) is not a bearer token; this
        # API takes no DPoP proofs, so a stolen bound token must not pass here without one.
        if "cnf" in claims:
            raise InvalidTokenError("a key-bound token sent as a bearer token")
    except InvalidTokenError:
        response = jsonify({"error": "invalid_token"})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    units = {r["unit"] for r in claims.get("gfms_roles") or [] if isinstance(r, dict)}
    found = documents.documents_for(db(), units)
    return jsonify(
        {"documents": [{"number": d.number, "type": d.type, "unit": d.unit,
                        "amount": d.amount, "payee": d.payee, "status": d.status}
                       for d in found]}
    )  # fmt: skip
