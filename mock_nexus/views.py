"""The relay's API for the IdP, and the phones' pages and JSON API: bind, read the
inbox, approve with the number typed from the login page, deny ("this was not me"), scan a
login page's code, read the current TOTP code."""

from __future__ import annotations

import hmac
import time
from dataclasses import replace
from typing import Any

import pyotp
from flask import Blueprint
from flask import Response
from flask import abort
from flask import current_app
from flask import jsonify
from flask import render_template
from flask import request

from mock_nexus import Nexus
from mock_nexus.answering import AnswerError
from mock_nexus.answering import change_push_address
from mock_nexus.answering import deliver
from mock_nexus.answering import fetch_scanned
from mock_nexus.answering import read_confirm_link
from mock_nexus.answering import rotate_key
from mock_nexus.answering import sign_answer
from mock_nexus.binding import BindingError
from mock_nexus.binding import bind
from mock_nexus.binding import read_activation
from mock_nexus.phones import PHONE_ID
from mock_nexus.phones import Phone
from mock_nexus.relay import Pushed

bp = Blueprint("nexus", __name__)


def nexus() -> Nexus:
    return current_app.extensions["nexus"]  # type: ignore[no-any-return]


def _phone(phone_id: str) -> Phone:
    if not PHONE_ID.fullmatch(phone_id):
        abort(404)
    return nexus().phones.get(phone_id)


def _error(code: str, status: int, **extra: Any) -> Response:
    response = jsonify({"error": code, **extra})
    response.status_code = status
    return response


def _relay_unavailable() -> Response | None:
    """The knobs: latency first, then an outage, as a real relay fails. The phone's own
    parts (its TOTP code, scanning a code) keep working: they do not go through the relay."""
    knobs = nexus().knobs
    if knobs.latency_ms:
        time.sleep(knobs.latency_ms / 1000)
    if knobs.outage:
        response = _error("temporarily_unavailable", 503)
        response.headers["Retry-After"] = "30"
        return response
    return None


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.post("/_knobs")
def knobs() -> Response:
    state = nexus()
    if not state.settings.test_control:
        return Response(status=404)
    body = request.get_json(force=True)
    for name in ("latency_ms", "outage", "drop_pushes", "drop_answers"):
        if name in body:
            setattr(state.knobs, name, body[name])
    return jsonify(vars(state.knobs))


# --- The relay, as the IdP calls it -----------------------------------------------------


@bp.post("/relay/challenges")
def relay_challenge() -> Response:
    """Take a challenge for a phone (202) and push it to the phone's inbox."""
    state = nexus()
    given = request.headers.get("Authorization", "").removeprefix("Bearer ")
    if not hmac.compare_digest(given.encode(), state.settings.api_key.encode()):
        response = _error("invalid_token", 401)
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    unavailable = _relay_unavailable()
    if unavailable is not None:
        return unavailable
    body = request.get_json(silent=True)
    try:
        if not isinstance(body, dict):
            raise ValueError("not an object")
        pushed = Pushed.from_request(body)
        phone_id = str(body["phone_id"])
    except (KeyError, TypeError, ValueError):
        return _error("invalid_request", 400)
    if not PHONE_ID.fullmatch(phone_id) or not state.phones.get(phone_id).is_bound:
        return _error("unknown_phone", 404)
    if not state.knobs.drop_pushes:
        state.inboxes.put(phone_id, pushed)
    response = jsonify({"status": "accepted"})
    response.status_code = 202
    return response


# --- The phones ---------------------------------------------------------------------------


@bp.get("/phones/<phone_id>")
def phone_page(phone_id: str) -> Response:
    return _render(_phone(phone_id))


@bp.get("/phones/<phone_id>/inbox")
def inbox(phone_id: str) -> Response:
    phone = _phone(phone_id)
    unavailable = _relay_unavailable()
    if unavailable is not None:
        return unavailable
    pending = nexus().inboxes.pending(phone.phone_id)
    return jsonify({"phone_id": phone.phone_id, "challenges": [p.view() for p in pending]})


@bp.post("/phones/<phone_id>/challenges/<challenge_id>/approve")
def approve(phone_id: str, challenge_id: str) -> Response:
    """Approve with the number the user typed from the login page; a backchannel request
    (no number matching: it shows a binding message instead) is approved with ``{}``."""
    number = _typed_number()
    return _answer(_phone(phone_id), challenge_id, decision="approve", number=number)


@bp.post("/phones/<phone_id>/challenges/<challenge_id>/deny")
def deny(phone_id: str, challenge_id: str) -> Response:
    """Decline; with ``report`` ("this was not me") the IdP blocks the login and alerts."""
    body = request.get_json(silent=True) if request.is_json else None
    given = body.get("report") if isinstance(body, dict) else request.form.get("report")
    return _answer(_phone(phone_id), challenge_id, decision="deny", report=bool(given))


@bp.post("/phones/<phone_id>/scan")
def scan(phone_id: str) -> Response:
    """The reverse path: scan the code on the login page. The app fetches what it is asked
    (from the IdP directly, DPoP with its key, not through the relay) and shows it with the
    other requests; the user then checks it and approves with the number the login page
    shows (the code carries none, so a forwarded code is of no use to whoever forwards it)."""
    state = nexus()
    phone = _phone(phone_id)
    body = request.get_json(silent=True) if request.is_json else None
    text = body.get("code") if isinstance(body, dict) else request.form.get("code")
    try:
        issuer, challenge_id = read_confirm_link(str(text or "")[:1024])
        if not phone.is_bound or issuer != phone.idp:
            raise AnswerError("not_bound_to_this_idp")
        seen = fetch_scanned(phone, issuer=issuer, challenge_id=challenge_id,
                             timeout=state.settings.timeout)  # fmt: skip
        pushed = Pushed.from_request(
            {**seen, "answer_to": f"{issuer}/mfa/answers", "challenge_id": challenge_id}
        )
    except AnswerError as error:
        return _answered(phone, {"error": error.code}, error.status)
    except (KeyError, TypeError, ValueError):
        return _answered(phone, {"error": "unreadable_challenge"}, 502)
    scanned = replace(pushed, scanned=True)
    state.inboxes.put(phone.phone_id, scanned)
    if request.is_json:
        return jsonify(scanned.view())
    return _render(phone)


@bp.post("/phones/<phone_id>/rotate-key")
def rotate(phone_id: str) -> Response:
    """The app moves to a fresh key (as after a restore from backup)."""
    state = nexus()
    phone = _phone(phone_id)
    if not phone.is_bound:
        return _error("not_bound", 404)
    try:
        rotated = rotate_key(phone, timeout=state.settings.timeout)
    except AnswerError as error:
        return _error(error.code, error.status)
    state.phones.save(rotated)
    return jsonify({"phone_id": phone.phone_id, "rotated": True})


@bp.post("/phones/<phone_id>/push-address")
def push_address(phone_id: str) -> Response:
    """The app tells the IdP where the relay reaches it now."""
    state = nexus()
    phone = _phone(phone_id)
    body = request.get_json(silent=True)
    address = body.get("push_address") if isinstance(body, dict) else None
    if not phone.is_bound or not isinstance(address, str):
        return _error("invalid_request", 400)
    try:
        answer = change_push_address(phone, address[:500], timeout=state.settings.timeout)
    except AnswerError as error:
        return _error(error.code, error.status)
    return jsonify(answer)


@bp.post("/phones/<phone_id>/bind")
def bind_phone(phone_id: str) -> Response:
    """Scan the QR code (or type the activation code) and register with the IdP."""
    state = nexus()
    phone = _phone(phone_id)
    wants_json = request.is_json
    text = (request.get_json(silent=True) or {}).get("activation") if wants_json else None
    text = str(text if text is not None else request.form.get("activation", ""))[:512]
    activation = read_activation(text, default_idp=state.settings.idp_url)
    try:
        bound = bind(
            phone, activation, relay_url=state.settings.relay_url, timeout=state.settings.timeout
        )
    except BindingError as error:
        if wants_json:
            response = jsonify({"error": error.code, "error_description": error.description})
            response.status_code = 502 if error.code == "idp_unreachable" else 400
            return response
        return _render(phone, bind_error=error, status=400)
    state.phones.save(bound)
    if wants_json:
        return jsonify({"phone_id": bound.phone_id, "device_id": bound.device_id})
    return _render(bound)


@bp.get("/phones/<phone_id>/totp")
def totp(phone_id: str) -> Response:
    """The code the app shows now (RFC 6238: 6 digits, 30-second steps). On the phone itself:
    it works when the relay is down."""
    code = _totp(_phone(phone_id))
    if code is None:
        return _error("not_bound", 404)
    return jsonify(code)


def _answer(
    phone: Phone, challenge_id: str, *, decision: str, number: int | None = None,
    report: bool = False,
) -> Response:  # fmt: skip
    state = nexus()
    waiting = state.inboxes.peek(phone.phone_id, challenge_id[:64])
    numbered = waiting is None or waiting.number_matching
    if decision == "approve" and numbered and number is None:
        return _answered(phone, {"error": "number_required"}, 400)
    if decision == "approve" and not numbered:
        number = None  # the app asks for none; the IdP refuses an approval that carries one
    if waiting is None or waiting.via_relay:
        # A scanned request is answered to the IdP directly; a pushed one through the relay.
        unavailable = _relay_unavailable()
        if unavailable is not None:
            return _answered(phone, {"error": "temporarily_unavailable"}, 503)
    pushed = state.inboxes.take(phone.phone_id, challenge_id[:64])
    if pushed is None or not phone.is_bound:
        return _answered(phone, {"error": "unknown_challenge"}, 404)
    try:
        answer = sign_answer(
            phone,
            challenge_id=pushed.challenge_id,
            nonce=pushed.nonce,
            authorization_details=pushed.authorization_details,
            decision=decision,
            number=number,
            report=report,
        )
        if state.knobs.drop_answers and pushed.via_relay:
            return _answered(phone, {"delivered": False}, 202)
        result = deliver(phone, answer, answer_to=pushed.answer_to, timeout=state.settings.timeout)
    except AnswerError as error:
        return _answered(phone, {"error": error.code}, error.status)
    return _answered(phone, {"delivered": True, **result}, 200)


def _typed_number() -> int | None:
    body = request.get_json(silent=True) if request.is_json else None
    value = body.get("number") if isinstance(body, dict) else request.form.get("number")
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) <= 4 else None


def _answered(phone: Phone, result: dict[str, Any], status: int) -> Response:
    if request.is_json:
        response = jsonify(result)
        response.status_code = status
        return response
    return _render(phone, result=result, status=status)


def _render(
    phone: Phone,
    *,
    bind_error: BindingError | None = None,
    result: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    state = nexus()
    pending = [
        p for p in state.inboxes.pending(phone.phone_id) if not (state.knobs.outage and p.via_relay)
    ]
    page = render_template(
        "phone.html",
        phone=phone,
        error=bind_error,
        result=result,
        totp=_totp(phone),
        inbox=pending,
        relay_down=state.knobs.outage,
    )
    return Response(page, status=status)


def _totp(phone: Phone) -> dict[str, object] | None:
    if phone.totp_secret is None:
        return None
    generator = pyotp.TOTP(phone.totp_secret)
    remaining = generator.interval - int(time.time()) % generator.interval
    return {"code": generator.now(), "period": generator.interval, "valid_for": remaining}
