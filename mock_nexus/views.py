"""The phones' pages and JSON API (DESIGN §7): bind, and read the current TOTP code."""

from __future__ import annotations

import time

import pyotp
from flask import Blueprint
from flask import Response
from flask import abort
from flask import current_app
from flask import jsonify
from flask import render_template
from flask import request

from mock_nexus.binding import BindingError
from mock_nexus.binding import bind
from mock_nexus.binding import read_activation
from mock_nexus.phones import PHONE_ID
from mock_nexus.phones import Phone
from mock_nexus.phones import PhoneBook
from mock_nexus.settings import NexusSettings

bp = Blueprint("nexus", __name__)


def _context() -> tuple[NexusSettings, PhoneBook]:
    return current_app.extensions["nexus"]  # type: ignore[no-any-return]


def _phone(phone_id: str) -> Phone:
    if not PHONE_ID.match(phone_id):
        abort(404)
    return _context()[1].get(phone_id)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/phones/<phone_id>")
def phone_page(phone_id: str) -> Response:
    phone = _phone(phone_id)
    return Response(render_template("phone.html", phone=phone, error=None, totp=_totp(phone)))


@bp.post("/phones/<phone_id>/bind")
def bind_phone(phone_id: str) -> Response:
    """Scan the QR code (or type the activation code) and register with the IdP."""
    settings, book = _context()
    phone = _phone(phone_id)
    wants_json = request.is_json
    text = (request.get_json(silent=True) or {}).get("activation") if wants_json else None
    text = str(text if text is not None else request.form.get("activation", ""))[:512]
    activation = read_activation(text, default_idp=settings.idp_url)
    try:
        bound = bind(phone, activation, relay_url=settings.relay_url, timeout=settings.timeout)
    except BindingError as error:
        if wants_json:
            response = jsonify({"error": error.code, "error_description": error.description})
            response.status_code = 502 if error.code == "idp_unreachable" else 400
            return response
        page = render_template("phone.html", phone=phone, error=error, totp=_totp(phone))
        return Response(page, status=400)
    book.save(bound)
    if wants_json:
        return jsonify({"phone_id": bound.phone_id, "device_id": bound.device_id})
    return Response(render_template("phone.html", phone=bound, error=None, totp=_totp(bound)))


@bp.get("/phones/<phone_id>/totp")
def totp(phone_id: str) -> Response:
    """The code the app shows now (RFC 6238: 6 digits, 30-second steps)."""
    phone = _phone(phone_id)
    code = _totp(phone)
    if code is None:
        response = jsonify({"error": "not_bound"})
        response.status_code = 404
        return response
    return jsonify(code)


def _totp(phone: Phone) -> dict[str, object] | None:
    if phone.totp_secret is None:
        return None
    generator = pyotp.TOTP(phone.totp_secret)
    remaining = generator.interval - int(time.time()) % generator.interval
    return {"code": generator.now(), "period": generator.interval, "valid_for": remaining}
