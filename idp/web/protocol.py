"""The protocol's HTTP endpoints: discovery, JWKS, authorize and its resumption, token,
userinfo, introspection, revocation and RP-initiated logout. Thin: the protocol engine
(``idp.oidc``: Authlib with our grants) and the login's state machine do the work; these
views live with the other pages because they read the browser's session and render pages."""

from __future__ import annotations

import logging
from typing import Any

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import InvalidRequestError
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oidc.core.errors import InteractionRequiredError
from authlib.oidc.core.errors import LoginRequiredError
from flask import Blueprint
from flask import Response
from flask import current_app
from flask import redirect
from flask import render_template
from flask import request
from flask import session as interaction_session
from flask import url_for
from sqlalchemy import update
from werkzeug.wrappers import Response as BaseResponse

from idp.accounts.flow import Assurance
from idp.accounts.flow import LoginTransaction
from idp.accounts.flow import StepNotAllowedError
from idp.accounts.flow import assurance_of
from idp.accounts.flow import meets
from idp.accounts.flow import start_step_up
from idp.accounts.flow import verify_resume
from idp.audit.service import record
from idp.mfa.models import TransactionEvidence
from idp.mfa.service import active_device
from idp.oidc.endpoints import EndSession
from idp.oidc.grants import AuthenticatedUser
from idp.oidc.interaction import StoredAuthorizationRequest
from idp.oidc.interaction import required_assurance
from idp.oidc.interaction import requires_fresh_login
from idp.oidc.interaction import validate_extensions
from idp.oidc.interaction import validate_request_shape
from idp.oidc.jsondoc import serialise
from idp.oidc.keys import JWKS_MAX_AGE
from idp.oidc.keys import build_key_history
from idp.oidc.par import resolve_front_channel_params
from idp.oidc.server import IdpAuthorizationServer
from idp.oidc.tokens import InvalidAccessTokenError
from idp.revocation.service import end_session
from idp.web import context
from idp.web.login import advance
from idp.web.sessions import clear_login_cookie
from idp.web.sessions import csrf_token
from idp.web.sessions import current_login
from idp.web.sessions import verify_csrf
from idp.web.userinfo import userinfo_response

log = logging.getLogger(__name__)

bp = Blueprint("oidc", __name__)


def server() -> IdpAuthorizationServer:
    return current_app.extensions["idp.oauth"]  # type: ignore[no-any-return]


# --- discovery and keys (pre-serialised, cacheable) -------------------------------------


@bp.get("/.well-known/openid-configuration")
def discovery() -> BaseResponse:
    body, etag = current_app.extensions["idp.discovery"]
    return _static_json(body, etag)


@bp.get("/jwks.json")
def jwks() -> BaseResponse:
    snapshot = context.deps().keyring.snapshot
    return _static_json(snapshot.jwks_json, snapshot.jwks_etag)


@bp.get("/jwks/history.json")
def jwks_history() -> BaseResponse:
    """Every public key that ever signed, with its period (``signing_key_history_uri`` in
    discovery): what an archive checks a years-old signature against."""
    body, etag = serialise(build_key_history(context.db()))
    return _static_json(body, etag)


def _static_json(body: bytes, etag: str) -> BaseResponse:
    if etag in request.headers.get("If-None-Match", ""):
        response = Response(status=304)
    else:
        response = Response(body, mimetype="application/json")
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = f"public, max-age={JWKS_MAX_AGE}"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


# --- authorization endpoint ---------------------------------------------------------------


@bp.route("/authorize", methods=["GET", "POST"])
def authorize() -> BaseResponse:
    """OIDC Core §3.1.2: validate, then reuse the session or start the login interaction."""
    try:
        params = validate_request_shape(request.values)
    except OAuth2Error as error:
        return authorization_error(error)
    try:
        # A pushed request (RFC 9126) or a request object (RFC 9101) replaces the query.
        resolved = _front_channel_params(params)
    except OAuth2Error as error:
        # A replayed request_uri or a forged request object may be an attack: kept on record.
        record(
            context.db(),
            "authorization.request_refused",
            now=context.now(),
            outcome="failure",
            client_id=params.get("client_id", "")[:64] or None,
            context=context.audit_context(),
            error=error.error,
        )
        context.db().commit()  # kept, though the answer is an error
        return authorization_error(error)
    stored = None
    if resolved is not None:
        params = resolved
        stored = StoredAuthorizationRequest(context.deps().settings.issuer, params)
    login = current_login()
    owner = AuthenticatedUser(user=login[1], login_session=login[0]) if login else None
    try:
        grant = server().get_consent_grant(request=stored, end_user=owner)
        _check_extensions(params, grant.redirect_uri)
        hinted_sub = _hinted_subject(params, grant.redirect_uri)
    except OAuth2Error as error:
        return authorization_error(error, stored)
    now = context.now()
    settings = context.deps().settings
    issuer = settings.issuer
    required = required_assurance(params, issuer)
    if settings.soft_token_required and not meets(required, Assurance.SOFT_TOKEN):
        # Applications are for phone-confirmed sessions: a password-only one (opened on the
        # IdP's own pages, or before the phone was bound) is stepped up, never reused.
        required = Assurance.SOFT_TOKEN
    step_up = False
    if owner is not None and not requires_fresh_login(
        params,
        auth_time=owner.login_session.auth_time,
        now=now,
        hinted_sub=hinted_sub,
        sub=owner.user.sub,
    ):
        current = assurance_of(issuer, owner.login_session.acr)
        if required is None or (required != Assurance.SOFT_TOKEN_TXN and meets(current, required)):
            return _respond_with_code(grant, owner, stored)
        # Step-up: the session stands, the phone confirms again (and shows the transaction).
        step_up = True
    if "none" in params.get("prompt", "").split():
        # OIDC Core §3.1.2.6: no interaction allowed, and it would be needed.
        needed = InteractionRequiredError if step_up else LoginRequiredError
        return authorization_error(
            needed(redirect_uri=grant.redirect_uri, state=params.get("state")), stored
        )
    tx = LoginTransaction.start(
        params, client_id=grant.client.client_id, now=now, required=required
    )
    if step_up and owner is not None:
        device = active_device(context.db(), owner.user.id)
        if device is None:
            record(
                context.db(),
                "login.soft_token_missing",
                now=now,
                outcome="failure",
                actor=owner.user.sub,
                context=context.audit_context(),
            )
            context.db().commit()  # kept, though the answer is an error
            return _page_error("soft_token_required", 403)
        start_step_up(tx, user=owner.user, device_id=device.id)
    # Straight to the first due step: a hop through /login would cost every login one more
    # request (session read and write included) for the same answer.
    return advance(tx)


def _front_channel_params(params: dict[str, str]) -> dict[str, str] | None:
    """The request a pushed ``request_uri`` or a ``request`` object carries; None when the
    query itself is the request.

    Raises:
        OAuth2Error: without a redirect URI (shown to the user).
    """
    deps = context.deps()
    client = deps.clients.get(params.get("client_id"))
    if client is None:
        if "request" in params or "request_uri" in params:
            raise InvalidRequestError("Missing or unknown 'client_id'.")
        return None  # Authlib answers an unknown client as usual
    resolved = resolve_front_channel_params(
        params,
        client,
        store=deps.store,
        keys=deps.keys,
        client_keys=server().client_keys,
        issuer=deps.settings.issuer,
        now=context.now(),
    )
    return None if resolved is params else resolved


@bp.get("/authorize/resume")
def resume() -> BaseResponse:
    """Continue an authorization request once its login interaction is complete."""
    pending = dict(interaction_session.get("login_tx", {}))
    data = pending.pop(request.args.get("tx", ""), None)
    login = current_login()
    if data is None or login is None:
        return _page_error("login_expired", 400)
    # One attempt: resumed or refused, the pending login is over.
    interaction_session["login_tx"] = pending
    tx = LoginTransaction.from_dict(data)
    user_session, user = login
    try:
        # The login must be this very one, ended in this session at the assurance asked for,
        # or prompt=login, max_age and the phone confirmation would be moot.
        verify_resume(
            tx,
            user_id=user.id,
            session_id=user_session.id,
            session_level=assurance_of(context.deps().settings.issuer, user_session.acr),
            auth_time=user_session.auth_time,
        )
    except StepNotAllowedError:
        return _page_error("login_expired", 400)
    transaction = None
    if tx.required == Assurance.SOFT_TOKEN_TXN:
        transaction = _confirmed_transaction(tx)
        if transaction is None:
            return _page_error("login_expired", 400)
    owner = AuthenticatedUser(user=user, login_session=user_session, transaction=transaction)
    stored = StoredAuthorizationRequest(context.deps().settings.issuer, tx.params)
    try:
        grant = server().get_consent_grant(request=stored, end_user=owner)
        _check_extensions(tx.params, grant.redirect_uri)
        hinted_sub = _hinted_subject(tx.params, grant.redirect_uri)
    except OAuth2Error as error:
        return authorization_error(error, stored)
    if hinted_sub is not None and hinted_sub != user.sub:
        # OIDC Core §3.1.2.1: the client asked for one user and another one signed in.
        return authorization_error(
            LoginRequiredError(redirect_uri=grant.redirect_uri, state=tx.params.get("state")),
            stored,
        )
    return _respond_with_code(grant, owner, stored)


def _confirmed_transaction(tx: LoginTransaction) -> TransactionEvidence | None:
    """The evidence of the transaction this very login confirmed, claimed for this one
    authorization (a compare-and-set: two racing resumes cannot both use it)."""
    db = context.db()
    evidence = db.get(TransactionEvidence, tx.evidence_id) if tx.evidence_id else None
    if (
        evidence is None
        or evidence.login_tx != tx.id
        or evidence.user_id != tx.user_id
        or evidence.client_id != tx.client_id
    ):
        return None
    claimed = db.execute(
        update(TransactionEvidence)
        .where(TransactionEvidence.id == evidence.id, TransactionEvidence.consumed_at.is_(None))
        .values(consumed_at=context.now())
        .execution_options(synchronize_session=False)
    )
    return evidence if claimed.rowcount == 1 else None  # type: ignore[attr-defined]


def _hinted_subject(params: dict[str, str], redirect_uri: str) -> str | None:
    """The subject of an id_token_hint we issued (expired ones included), if any.

    Raises:
        InvalidRequestError: the hint is not an ID token of ours.
    """
    hint = params.get("id_token_hint")
    if not hint:
        return None
    try:
        claims = context.deps().signer.verify_own_id_token(hint)
    except InvalidAccessTokenError as exc:
        raise InvalidRequestError(
            "Invalid 'id_token_hint'.", redirect_uri=redirect_uri, state=params.get("state")
        ) from exc
    return str(claims["sub"])


def _check_extensions(params: dict[str, str], redirect_uri: str) -> None:
    try:
        validate_extensions(params)
    except OAuth2Error as error:
        error.redirect_uri = redirect_uri
        error.state = params.get("state")
        raise


def _respond_with_code(grant: Any, owner: AuthenticatedUser, stored: Any = None) -> BaseResponse:
    response: Response = server().create_authorization_response(
        request=stored, grant=grant, grant_user=owner
    )
    return response


def authorization_error(error: OAuth2Error, stored: Any = None) -> BaseResponse:
    """Redirect an error to the client only when its redirect URI was validated; otherwise
    show it (RFC 6749 §4.1.2.1, never an open redirector)."""
    if error.redirect_uri:
        response: Response = server().handle_error_response(stored, error)
        # RFC 9207 §2: iss accompanies error responses too.
        response.location = add_params_to_uri(
            response.location, {"iss": context.deps().settings.issuer}
        )
        return response
    return _page_error(error.error, 400, description=error.get_error_description())


def _page_error(code: str, status: int, *, description: str | None = None) -> BaseResponse:
    response = Response(
        render_template("error.html", code=code, description=description), status=status
    )
    return response


# --- token, introspection, revocation, userinfo -------------------------------------------


@bp.post("/token")
def token() -> BaseResponse:
    if error := _body_error():
        return _json_error(error)
    if not request.form.get("grant_type"):
        return _json_error(InvalidRequestError("Missing 'grant_type'."))
    response: Response = server().create_token_response()
    return response


@bp.post("/par")
def pushed_authorization_request() -> BaseResponse:
    """RFC 9126 §2: a client pushes its authorization request and gets a request_uri."""
    if error := _body_error():
        return _json_error(error)
    response: Response = server().create_endpoint_response("par")
    return response


@bp.post("/bc-authorize")
def backchannel_authentication() -> BaseResponse:
    """CIBA Core 1.0 §7: an application asks the user's phone; the engine does the work."""
    if error := _body_error():
        return _json_error(error)
    response: Response = server().create_endpoint_response("backchannel_authentication")
    return response


@bp.post("/introspect")
def introspect() -> BaseResponse:
    if error := _body_error():
        return _json_error(error)
    response: Response = server().create_endpoint_response("introspection")
    return response


@bp.post("/revoke")
def revoke() -> BaseResponse:
    if error := _body_error():
        return _json_error(error)
    response: Response = server().create_endpoint_response("revocation")
    return response


def _body_error() -> OAuth2Error | None:
    """RFC 6749 §3.2 and §2.3: a form body, each parameter once, one way of authenticating."""
    if request.mimetype != "application/x-www-form-urlencoded":
        return InvalidRequestError("Use 'application/x-www-form-urlencoded' (RFC 6749 3.2).")
    for key in request.form:
        if len(request.form.getlist(key)) > 1:
            # The name is not echoed: error_description allows only a narrow character set.
            return InvalidRequestError("A parameter appears more than once.")
    methods = (
        "client_secret" in request.form,
        request.authorization is not None,
        "client_assertion" in request.form or "client_assertion_type" in request.form,
    )
    if sum(methods) > 1:
        return InvalidRequestError("Use one client authentication method per request.")
    return None


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> BaseResponse:
    return userinfo_response()


def _json_error(error: OAuth2Error) -> BaseResponse:
    response: Response = server().handle_error_response(None, error)
    return response


# --- RP-initiated logout -------------------------------------------------------------------


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> BaseResponse:
    """OpenID RP-Initiated Logout 1.0 §2."""
    endpoint: EndSession = server().end_session_endpoint
    try:
        validated = endpoint.validate_logout(endpoint.create_endpoint_request(request))
    except OAuth2Error as error:
        return _page_error(error.error, 400, description=error.get_error_description())
    login = current_login()
    hint_sid = (validated.id_token_claims or {}).get("sid")
    mismatched = login is not None and hint_sid is not None and hint_sid != login[0].id
    if login is None or (not validated.needs_confirmation and not mismatched):
        return _finish_logout(validated.redirect_uri, login)
    interaction_session["logout"] = {"redirect_uri": validated.redirect_uri}
    return Response(
        render_template(
            "logout_confirm.html",
            client_name=validated.client.client_name if validated.client else None,
            csrf_token=csrf_token(),
        )
    )


@bp.post("/logout/confirm")
def logout_confirm() -> BaseResponse:
    verify_csrf()
    pending = interaction_session.pop("logout", None) or {}
    if request.form.get("decision") != "logout":
        return redirect(url_for("web.home"), code=303)
    return _finish_logout(pending.get("redirect_uri"), current_login())


def _finish_logout(redirect_uri: str | None, login: Any) -> BaseResponse:
    deps = context.deps()
    if login is not None:
        end_session(
            context.db(),
            deps.revocations,
            login[0].id,
            reason="logout",
            now=context.now(),
            access_token_ttl=deps.settings.access_token_ttl,
            actor=login[1].sub,
            context=context.audit_context(),
        )
        context.notices_owed()
    interaction_session.clear()
    if redirect_uri:
        response = redirect(redirect_uri, code=303)
    else:
        response = Response(render_template("logged_out.html"))
    clear_login_cookie(response)
    return response
