"""Registration pages: where the user stands, proofing at Paotang and its answer."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from urllib.parse import urlencode

import qrcode
from flask import Blueprint
from flask import Response
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from flask import session as interaction_session
from flask import url_for
from markupsafe import Markup
from qrcode.image.svg import SvgPathImage
from werkzeug.wrappers import Response as BaseResponse

from idp.accounts.models import User
from idp.audit.service import record
from idp.enrol.binding import format_code
from idp.enrol.errors import ActivationCodeError
from idp.enrol.errors import AlreadyBoundError
from idp.enrol.errors import BindingProofError
from idp.enrol.errors import IdentityMismatchError
from idp.enrol.errors import KycResponseInvalidError
from idp.enrol.errors import KycUnavailableError
from idp.enrol.errors import ProofingExpiredError
from idp.enrol.errors import ProofingStateError
from idp.enrol.errors import RegistrationClosedError
from idp.enrol.errors import TooManyAttemptsError
from idp.enrol.flow import InvalidTransitionError
from idp.enrol.service import check_window
from idp.enrol.service import get_enrolment
from idp.enrol.service import has_active_device
from idp.enrol.service import proofing_is_fresh
from idp.enrol.service import record_proofing_refused
from idp.enrol.service import state_of
from idp.errors import IdpError
from idp.revocation.suspension import needs_access_pass
from idp.store.ephemeral import EphemeralStoreError
from idp.web import context
from idp.web.sessions import csrf_token
from idp.web.sessions import current_login
from idp.web.sessions import verify_csrf

bp = Blueprint("enrol", __name__)


def _signed_in_user() -> User | None:
    login = current_login()
    return login[1] if login else None


def _window_is_open() -> bool:
    settings = context.deps().settings
    try:
        check_window(
            now=context.now(),
            opens_at=settings.registration_opens_at,
            closes_at=settings.registration_closes_at,
        )
    except RegistrationClosedError:
        return False
    return True


def _pass_required(user: User) -> bool:
    return context.deps().settings.reenrol_needs_access_pass and needs_access_pass(
        context.db(), user
    )


_PASS_HOLDER = "access_pass_holder"


def _holds_the_pass(user: User) -> bool:
    """After a loss, only the browser that gave the helpdesk's pass goes on registering."""
    return not _pass_required(user) or interaction_session.get(_PASS_HOLDER) == user.id


def _page(outcome: str | None = None, *, status: int = 200) -> Response:
    """The registration page: the user's state, and the outcome of what just happened."""
    user = _signed_in_user()
    assert user is not None  # noqa: S101 - callers check
    deps = context.deps()
    db = context.db()
    now = context.now()
    enrolment = get_enrolment(db, user, now=now)
    page = render_template(
        "enrol.html",
        user=user,
        state=state_of(enrolment).value,
        outcome=outcome,
        window_open=_window_is_open(),
        fresh=proofing_is_fresh(
            user, now=now, valid_for=timedelta(seconds=deps.settings.proofing_valid_for)
        ),
        phone_active=has_active_device(db, user),
        needs_pass=_pass_required(user),
        csrf_token=csrf_token(),
    )
    return Response(page, status=status)


@bp.get("/enrol")
def overview() -> BaseResponse:
    if _signed_in_user() is None:
        return redirect(url_for("login.signin", next="/enrol"), code=303)
    return _page()


@bp.post("/enrol/proofing")
def begin_proofing() -> BaseResponse:
    verify_csrf()
    user = _signed_in_user()
    if user is None:
        return redirect(url_for("login.signin", next="/enrol"), code=303)
    deps = context.deps()
    if not _window_is_open():
        return _page("registration_closed", status=403)
    code = request.form.get("access_pass", "")[:64]
    if _pass_required(user):
        if not context.deps().suspensions.redeem_access_pass(
            context.db(), user, code, now=context.now(), audit=context.audit_context()
        ):
            context.db().commit()  # the refusal stays in the audit trail
            return _page("access_pass_required", status=403)
        # SECURITY: the rest of this registration belongs to this browser: whoever else knows
        # the password cannot take over the proofing or ask for the activation code.
        interaction_session[_PASS_HOLDER] = user.id
    try:
        deps.kyc.check_available()
        state, nonce, verifier = deps.proofing.start_proofing(
            context.db(), user, now=context.now(), context=context.audit_context()
        )
    except KycUnavailableError:
        return _page("kyc_unavailable", status=503)
    except InvalidTransitionError:
        return _page("not_now", status=409)
    return redirect(deps.kyc.authorization_url(state=state, nonce=nonce, verifier=verifier))


@bp.get("/enrol/proofing/callback")
def proofing_callback() -> BaseResponse:
    """Paotang's answer (OIDC Core §3.1.2.5), bound to this user's attempt by state."""
    user = _signed_in_user()
    if user is None:
        page = render_template("error.html", code="login_expired", description=None)
        return Response(page, status=400)
    if not _window_is_open():
        return _page("registration_closed", status=403)
    if not _holds_the_pass(user):
        return _page("access_pass_required", status=403)
    deps = context.deps()
    db = context.db()
    now = context.now()
    audit = context.audit_context()
    try:
        enrolment, nonce, verifier = deps.proofing.pending_proofing(
            db, user, state=request.args.get("state", "")
        )
    except ProofingStateError:
        return _page("proofing_state", status=400)
    issuer = request.args.get("iss")
    if issuer != deps.settings.paotang_issuer:
        # RFC 9207: Paotang names itself in every answer; another name, or none, is a mix-up.
        record_proofing_refused(db, user, enrolment, reason="wrong_issuer", now=now, context=audit)
        return _page("kyc_response_invalid", status=400)
    if error := request.args.get("error"):
        reason = request.args.get("error_description", error)
        record_proofing_refused(db, user, enrolment, reason=reason, now=now, context=audit)
        return _page(_refusal_outcome(error, reason))
    try:
        identity = deps.kyc.redeem(
            code=request.args.get("code", ""), verifier=verifier, nonce=nonce
        )
    except KycUnavailableError:
        record_proofing_refused(db, user, enrolment, reason="unavailable", now=now, context=audit)
        return _page("kyc_unavailable", status=503)
    except KycResponseInvalidError:
        record_proofing_refused(
            db, user, enrolment, reason="invalid_response", now=now, context=audit
        )
        return _page("kyc_response_invalid", status=400)
    try:
        deps.proofing.record_proofing_result(db, user, enrolment, identity, now=now, context=audit)
    except IdentityMismatchError:
        return _page("identity_mismatch", status=403)
    return redirect(url_for("enrol.overview", done="proofed"), code=303)


def _refusal_outcome(error: str, reason: str) -> str:
    if error == "access_denied" and "cancelled" in reason:
        return "kyc_cancelled"
    if error == "temporarily_unavailable":
        return "kyc_unavailable"
    return "kyc_refused"


# --- phone binding ------------------------------------------------------------------------


@bp.post("/enrol/activation")
def activation() -> BaseResponse:
    """Show a fresh activation code (text and QR) for the user's phone."""
    verify_csrf()
    user = _signed_in_user()
    if user is None:
        return redirect(url_for("login.signin", next="/enrol"), code=303)
    deps = context.deps()
    if not _window_is_open():
        return _page("registration_closed", status=403)
    if not _holds_the_pass(user):
        return _page("access_pass_required", status=403)
    try:
        code, expires_at = deps.binding.issue_activation_code(
            context.db(), user, now=context.now(), context=context.audit_context()
        )
    except ProofingExpiredError:
        return _page("proofing_expired", status=409)
    except (InvalidTransitionError, AlreadyBoundError):
        return _page("not_now", status=409)
    link = f"nexussmartid://bind?{urlencode({'issuer': deps.settings.issuer, 'code': code})}"
    page = render_template(
        "enrol_activation.html",
        code=format_code(code),
        qr=Markup(qr_svg(link)),  # noqa: S704 - SVG made by qrcode from our own link
        expires_at=expires_at,
        minutes=deps.settings.activation_code_ttl // 60,
    )
    return Response(page)


def _api_error(error: IdpError, status: int) -> Response:
    response = jsonify({"error": error.code, "error_description": error.message})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _guessing_blocked() -> bool:
    deps = context.deps()
    ip = request.remote_addr or "unknown"
    try:
        failures = deps.store.get(deps.keys.activation_ip_failures(ip))
    except EphemeralStoreError:
        return False
    return failures is not None and int(failures) >= deps.settings.activation_ip_failure_limit


def _count_failure(error: IdpError) -> None:
    """Durable on its own: the answer is an error, whose transaction is rolled back."""
    deps = context.deps()
    ip = request.remote_addr or "unknown"
    # Without Redis the codes' length and short life still bound guessing.
    with contextlib.suppress(EphemeralStoreError):
        deps.store.incr(deps.keys.activation_ip_failures(ip), ttl=900)
    with deps.sessions.begin() as db:
        record(
            db,
            "enrol.binding_failed",
            now=context.now(),
            outcome="failure",
            context=context.audit_context(),
            reason=error.code,
        )


@bp.post("/enrol/devices/challenge")
def device_challenge() -> Response:
    """The phone asks for the nonce to sign, naming the activation code it was given."""
    if _guessing_blocked():
        return _api_error(TooManyAttemptsError(), 429)
    if not _window_is_open():
        return _api_error(RegistrationClosedError(), 403)
    body = _json_object()
    deps = context.deps()
    try:
        nonce = deps.binding.challenge(
            context.db(), code=str(body.get("activation_code", ""))[:32], now=context.now()
        )
    except ActivationCodeError as error:
        _count_failure(error)
        return _api_error(error, 400)
    response = jsonify({"nonce": nonce, "expires_in": 120})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/enrol/devices")
def device_registration() -> Response:
    """The phone's signed registration: bind it and hand it its TOTP seed."""
    if _guessing_blocked():
        return _api_error(TooManyAttemptsError(), 429)
    if not _window_is_open():
        return _api_error(RegistrationClosedError(), 403)
    body = _json_object()
    deps = context.deps()
    try:
        bound = deps.binding.bind_device(
            context.db(),
            proof=str(body.get("proof", ""))[:8192],
            now=context.now(),
            context=context.audit_context(),
        )
    except ActivationCodeError as error:
        _count_failure(error)
        return _api_error(error, 400)
    except BindingProofError as error:
        _count_failure(error)
        return _api_error(error, 400)
    except (AlreadyBoundError, ProofingExpiredError) as error:
        _count_failure(error)
        return _api_error(error, 409)
    response = jsonify(
        {
            "device_id": bound.device_id,
            # RFC 6238 parameters of the seed, given once, in this answer only.
            "totp": {"secret": bound.totp_secret, "digits": 6, "period": 30, "algorithm": "SHA1"},
        }
    )
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


def _json_object() -> dict[str, object]:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def qr_svg(data: str) -> str:
    image = qrcode.make(data, image_factory=SvgPathImage, box_size=8, border=2)
    return str(image.to_string(encoding="unicode"))
