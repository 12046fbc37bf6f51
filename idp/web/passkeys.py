"""Passkeys in the browser: adding one on the account page (a session the phone confirmed), and
using one to confirm a login. The ceremonies run in the page's script; these views give the
options and check the answers."""

from __future__ import annotations

from urllib.parse import unquote

from flask import Blueprint
from flask import Response
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from werkzeug.wrappers import Response as BaseResponse

from idp.accounts.errors import AttemptThrottledError
from idp.accounts.flow import AMR_PASSKEY
from idp.accounts.flow import Assurance
from idp.accounts.flow import assurance_of
from idp.accounts.flow import complete_confirmation
from idp.accounts.flow import meets
from idp.accounts.models import User
from idp.accounts.models import UserSession
from idp.errors import IdpError
from idp.mfa.passkeys import PasskeyClonedError
from idp.mfa.passkeys import PasskeyRejectedError
from idp.mfa.passkeys import RelyingParty
from idp.mfa.passkeys import active_passkeys
from idp.mfa.passkeys import authentication_options
from idp.mfa.passkeys import register_passkey
from idp.mfa.passkeys import registration_options
from idp.mfa.passkeys import verify_passkey
from idp.web import context
from idp.web.confirm import confirming
from idp.web.confirm import transaction_of
from idp.web.confirm import withdraw_push
from idp.web.login import advance
from idp.web.login import authenticator
from idp.web.login import facts_of
from idp.web.sessions import csrf_token
from idp.web.sessions import current_login
from idp.web.sessions import verify_csrf

bp = Blueprint("passkeys", __name__)

_CHALLENGE_TTL = 180.0


def relying_party() -> RelyingParty | None:
    """None where passkeys are not offered, accepted or registered: turned off (the Ministry
    asks for the Nexus Smart ID app at every login), or an issuer that cannot be an RP ID."""
    settings = context.deps().settings
    if not settings.passkeys_enabled:
        return None
    return RelyingParty.for_issuer(settings.issuer)


def _keep_challenge(scope: str, challenge: bytes) -> None:
    deps = context.deps()
    deps.store.set(deps.keys.passkey_challenge(scope), challenge, ttl=_CHALLENGE_TTL)


def _take_challenge(scope: str) -> bytes | None:
    """Each challenge answers one ceremony: taken at once (GETDEL), so parallel assertions
    cannot share one."""
    deps = context.deps()
    return deps.store.consume(deps.keys.passkey_challenge(scope))


def _json_error(error: IdpError, status: int) -> Response:
    response = jsonify({"error": error.code, "error_description": error.message})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the account page -----------------------------------------------------------------------


def _phone_confirmed_login() -> tuple[UserSession, User] | None:
    """The live session, if the phone confirmed it: only such a session adds an authenticator."""
    login = current_login()
    if login is None:
        return None
    level = assurance_of(context.deps().settings.issuer, login[0].acr)
    return login if meets(level, Assurance.SOFT_TOKEN) else None


@bp.get("/account/passkeys")
def account_passkeys() -> BaseResponse:
    login = current_login()
    if login is None:
        return redirect(url_for("login.signin", next="/account/passkeys"), code=303)
    user_session, user = login
    level = assurance_of(context.deps().settings.issuer, user_session.acr)
    page = render_template(
        "passkeys.html",
        user=user,
        passkeys=active_passkeys(context.db(), user.id),
        may_add=meets(level, Assurance.SOFT_TOKEN),
        available=relying_party() is not None,
        enabled=context.deps().settings.passkeys_enabled,
        csrf_token=csrf_token(),
    )
    return Response(page)


@bp.post("/account/passkeys/options")
def registration_start() -> Response:
    verify_csrf()
    login = _phone_confirmed_login()
    rp = relying_party()
    if login is None or rp is None:
        return _json_error(PasskeyRejectedError(), 403)
    user_session, user = login
    options, challenge = registration_options(context.db(), user, rp)
    _keep_challenge(f"register:{user_session.id}", challenge)
    return Response(options, mimetype="application/json", headers={"Cache-Control": "no-store"})


@bp.post("/account/passkeys")
def registration_finish() -> Response:
    verify_csrf()
    login = _phone_confirmed_login()
    rp = relying_party()
    if login is None or rp is None:
        return _json_error(PasskeyRejectedError(), 403)
    user_session, user = login
    challenge = _take_challenge(f"register:{user_session.id}")
    body = request.get_json(silent=True)
    if challenge is None or not isinstance(body, dict):
        return _json_error(PasskeyRejectedError(), 400)
    try:
        passkey = register_passkey(
            context.db(),
            user,
            credential=request.get_data(as_text=True)[:65536],
            challenge=challenge,
            rp=rp,
            # Percent-encoded by the page: header values are ASCII, names may be Thai.
            name=unquote(request.headers.get("X-Passkey-Name", "")[:512])[:64],
            now=context.now(),
            audit=context.audit_context(),
        )
    except PasskeyRejectedError as error:
        return _json_error(error, 400)
    response = jsonify({"id": passkey.id, "name": passkey.name})
    response.status_code = 201
    return response


# --- confirming a login ---------------------------------------------------------------------


@bp.post("/login/passkey/options", endpoint="login_options")
def login_options() -> Response:
    verify_csrf()
    found = confirming()
    rp = relying_party()
    if found is None or rp is None:
        return _json_error(PasskeyRejectedError(), 400)
    tx, user = found
    passkeys = active_passkeys(context.db(), user.id)
    if not passkeys or transaction_of(tx) is not None:
        return _json_error(PasskeyRejectedError(), 400)
    options, challenge = authentication_options(passkeys, rp)
    _keep_challenge(f"login:{tx.id}", challenge)
    return Response(options, mimetype="application/json", headers={"Cache-Control": "no-store"})


@bp.post("/login/passkey", endpoint="login")
def login_with_passkey() -> Response:
    verify_csrf()
    found = confirming()
    rp = relying_party()
    if found is None or rp is None:
        return _json_error(PasskeyRejectedError(), 400)
    tx, user = found
    db = context.db()
    now = context.now()
    challenge = _take_challenge(f"login:{tx.id}")
    if challenge is None or transaction_of(tx) is not None:
        return _json_error(PasskeyRejectedError(), 400)
    try:
        # SECURITY: lock, then check, then count, as every counted step.
        authenticator().verify_may_attempt(db, user, now=now, context=context.audit_context())
    except AttemptThrottledError:
        return _json_error(PasskeyRejectedError(), 429)
    try:
        verify_passkey(
            db,
            user,
            credential=request.get_data(as_text=True)[:16384],
            challenge=challenge,
            rp=rp,
            now=now,
            audit=context.audit_context(),
        )
    except PasskeyClonedError as error:
        db.commit()  # the suspension and the alert stand, though the answer is an error
        return _json_error(error, 403)
    except PasskeyRejectedError as error:
        authenticator().count_failure(
            db, user, now=now, context=context.audit_context(), reason="passkey_rejected"
        )
        return _json_error(error, 400)
    withdraw_push(tx)
    complete_confirmation(tx, facts_of(tx), amr=AMR_PASSKEY)
    finished = advance(tx)
    # The script follows this address; the cookies were set on this answer.
    response = jsonify({"next": finished.headers["Location"]})
    for header in finished.headers.getlist("Set-Cookie"):
        response.headers.add("Set-Cookie", header)
    response.headers["Cache-Control"] = "no-store"
    return response
