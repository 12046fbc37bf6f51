"""HTTP endpoints of the mock Paotang: discovery, JWKS, the app page, token, knobs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from werkzeug.wrappers import Response as BaseResponse

from mock_paotang import proofing
from mock_paotang.provider import IssuedCode
from mock_paotang.provider import PendingAuthorization
from mock_paotang.provider import State
from mock_paotang.provider import id_token_claims
from mock_paotang.provider import now_utc

bp = Blueprint("paotang", __name__)

_MAX_REFUSALS = 3
_UNTIMED = ("/healthz", "/_knobs")


def state() -> State:
    return current_app.extensions["paotang"]  # type: ignore[no-any-return]


@bp.before_app_request
def _misbehave() -> BaseResponse | None:
    """The knobs: latency first, then an outage, as a real dependency fails."""
    if request.path in _UNTIMED:
        return None
    knobs = state().knobs
    if knobs.latency_ms:
        time.sleep(knobs.latency_ms / 1000)
    if knobs.outage:
        if request.path == "/authorize":
            return Response(render_template("unavailable.html"), status=503)
        response = jsonify({"error": "temporarily_unavailable"})
        response.status_code = 503
        response.headers["Retry-After"] = "30"
        return response
    return None


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.post("/_knobs")
def knobs() -> Response:
    current = state()
    if not current.settings.test_control:
        return Response(status=404)
    body = request.get_json(force=True)
    for name in ("latency_ms", "outage", "force_failure"):
        if name in body:
            setattr(current.knobs, name, body[name])
    return jsonify(vars(current.knobs))


@bp.get("/.well-known/openid-configuration")
def discovery() -> Response:
    issuer = state().settings.issuer
    return jsonify(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "jwks_uri": f"{issuer}/jwks.json",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid"],
            "claims_parameter_supported": True,
            "verified_claims_supported": True,
            "trust_frameworks_supported": [state().settings.trust_framework],
            "evidence_supported": ["document"],
            "documents_supported": ["idcard"],
            "documents_check_methods_supported": ["data", "bvr", "pvr"],
            "claims_in_verified_claims_supported": [
                "given_name", "family_name", "given_name#en", "family_name#en",
                "birthdate", "title#th",
            ],
            "authorization_response_iss_parameter_supported": True,
        }
    )  # fmt: skip


@bp.get("/jwks.json")
def jwks() -> Response:
    return jsonify(state().key.jwks)


# --- the app page ---------------------------------------------------------------------------


def _error_page(message: str, status: int = 400) -> Response:
    return Response(render_template("error.html", message=message), status=status)


def _redirect_error(pending: PendingAuthorization, error: str, description: str) -> BaseResponse:
    params = {"error": error, "error_description": description, "iss": state().settings.issuer}
    if pending.state:
        params["state"] = pending.state
    return redirect(f"{pending.redirect_uri}?{urlencode(params)}", code=303)


@bp.get("/authorize")
def authorize() -> BaseResponse:
    args = request.args
    current = state()
    client = current.settings.clients.get(args.get("client_id", ""))
    redirect_uri = args.get("redirect_uri", "")
    if client is None or redirect_uri not in client.redirect_uris:
        return _error_page("ระบบที่ส่งท่านมาไม่ได้ลงทะเบียนกับเป๋าตัง / Unknown application.")
    pending = PendingAuthorization(
        client_id=args["client_id"],
        redirect_uri=redirect_uri,
        state=args.get("state"),
        nonce=args.get("nonce"),
        code_challenge=args.get("code_challenge", ""),
        claims={},
        created=time.time(),
    )
    if args.get("response_type") != "code":
        return _redirect_error(pending, "unsupported_response_type", "Only code is supported.")
    if "openid" not in args.get("scope", "").split():
        return _redirect_error(pending, "invalid_scope", "The openid scope is required.")
    if args.get("code_challenge_method") != "S256" or len(pending.code_challenge) != 43:
        return _redirect_error(pending, "invalid_request", "PKCE with S256 is required.")
    try:
        claims = json.loads(args.get("claims", "{}"))
        if not isinstance(claims, dict) or any(
            not isinstance(claims.get(m, {}), dict) for m in ("id_token", "userinfo")
        ):
            raise ValueError
    except ValueError:
        return _redirect_error(pending, "invalid_request", "The claims parameter is malformed.")
    pending.claims = claims
    tx = current.remember(pending)
    return Response(render_template("app.html", tx=tx, refusal=None, client_id=pending.client_id))


@bp.post("/authorize/verify")
def verify() -> BaseResponse:
    current = state()
    tx = request.form.get("tx", "")
    pending = current.pending.get(tx)
    if pending is None:
        return _error_page("รายการนี้หมดอายุแล้ว / This request has expired.")
    if request.form.get("action") == "cancel":
        current.pending.pop(tx, None)
        return _redirect_error(pending, "access_denied", "The citizen cancelled.")
    if request.form.get("consent") != "yes":
        refusal = proofing.RefusedError(
            "consent_required",
            "กรุณายินยอมให้เปิดเผยข้อมูลที่ยืนยันแล้วแก่กรมบัญชีกลางก่อน",
            "Please consent to sharing your verified identity first.",
        )
        return _app_page(tx, pending, refusal)
    try:
        citizen = proofing.verify(
            request.form.get("citizen_id", "")[:32],
            request.form.get("laser_code", "")[:32],
            request.form.get("face", ""),
            today=now_utc().date(),
            forced=current.knobs.force_failure,
        )
    except proofing.RefusedError as refusal:
        if refusal.code == "dopa_unavailable":
            # Not the citizen's fault: the relying party should offer to try again later.
            current.pending.pop(tx, None)
            return _redirect_error(
                pending, "temporarily_unavailable", "The civil registration is unavailable."
            )
        pending.refusals += 1
        if pending.refusals >= _MAX_REFUSALS:
            current.pending.pop(tx, None)
            return _redirect_error(
                pending, "access_denied", f"Identity verification failed: {refusal.code}."
            )
        return _app_page(tx, pending, refusal)
    current.pending.pop(tx, None)
    code = current.issue_code(
        IssuedCode(
            client_id=pending.client_id,
            redirect_uri=pending.redirect_uri,
            code_challenge=pending.code_challenge,
            nonce=pending.nonce,
            claims=pending.claims,
            citizen=citizen,
            verified_at=now_utc(),
            expires=time.time() + current.settings.code_ttl,
        )
    )
    params = {"code": code, "iss": current.settings.issuer}
    if pending.state:
        params["state"] = pending.state
    return redirect(f"{pending.redirect_uri}?{urlencode(params)}", code=303)


def _app_page(tx: str, pending: PendingAuthorization, refusal: proofing.RefusedError) -> Response:
    page = render_template("app.html", tx=tx, refusal=refusal, client_id=pending.client_id)
    return Response(page, status=200)


# --- token endpoint ---------------------------------------------------------------------------


def _token_error(error: str, status: int = 400) -> Response:
    response = jsonify({"error": error})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="paotang"'
    return response


def _client_credentials() -> tuple[str, str] | None:
    auth = request.authorization
    if auth is not None and auth.type == "basic" and auth.username and auth.password:
        return auth.username, auth.password
    if request.form.get("client_id") and request.form.get("client_secret"):
        return request.form["client_id"], request.form["client_secret"]
    return None


@bp.post("/token")
def token() -> Response:
    current = state()
    credentials = _client_credentials()
    client = current.settings.clients.get(credentials[0]) if credentials else None
    if (
        credentials is None
        or client is None
        or not hmac.compare_digest(client.secret.encode(), credentials[1].encode())
    ):
        return _token_error("invalid_client", 401)
    if request.form.get("grant_type") != "authorization_code":
        return _token_error("unsupported_grant_type")
    code = current.take_code(request.form.get("code", ""))
    if code is None or code.client_id != credentials[0]:
        return _token_error("invalid_grant")
    if request.form.get("redirect_uri") != code.redirect_uri:
        return _token_error("invalid_grant")
    verifier = request.form.get("code_verifier", "")
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    if not hmac.compare_digest(challenge, code.code_challenge):
        return _token_error("invalid_grant")
    access_token = secrets.token_urlsafe(32)
    claims: dict[str, Any] = id_token_claims(
        current, code, now=time.time(), access_token=access_token
    )
    response = jsonify(
        {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": current.key.sign(claims),
        }
    )
    response.headers["Cache-Control"] = "no-store"
    return response
