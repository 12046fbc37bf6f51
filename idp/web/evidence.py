"""The evidence of a confirmed transaction, for the relying app it was confirmed for: the
details, the phone's signed answer and the public key that verifies it, so anyone can check
the signature offline. Authenticated like the token endpoint (client_secret_basic)."""

from __future__ import annotations

from urllib.parse import unquote_plus

from flask import Blueprint
from flask import Response
from flask import jsonify
from flask import request
from sqlalchemy import select

from idp.accounts.models import User
from idp.audit.service import record
from idp.mfa.models import TransactionEvidence
from idp.web import context

bp = Blueprint("evidence", __name__)


@bp.get("/evidence/<evidence_id>")
def show(evidence_id: str) -> Response:
    deps = context.deps()
    auth = request.authorization
    client = None
    if auth is not None and auth.type == "basic" and auth.username and auth.password:
        # RFC 6749 §2.3.1: the credentials are form-encoded before Basic encoding.
        client = deps.clients.get(unquote_plus(auth.username))
        if client is not None and not client.check_client_secret(unquote_plus(auth.password)):
            client = None
    if client is None:
        response = jsonify({"error": "invalid_client"})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Basic realm="evidence"'
        return response
    db = context.db()
    evidence = db.get(TransactionEvidence, evidence_id[:32])
    if evidence is None or evidence.client_id != client.client_id:
        # Another client's evidence is as unknown as none at all.
        response = jsonify({"error": "not_found"})
        response.status_code = 404
        return response
    sub = db.scalar(select(User.sub).where(User.id == evidence.user_id))
    record(
        db,
        "mfa.evidence_shown",
        now=context.now(),
        actor=client.client_id,
        context=context.audit_context(),
        evidence=evidence.id,
    )
    response = jsonify(
        {
            "txn": evidence.id,
            "sub": sub,
            "client_id": evidence.client_id,
            "authorization_details": evidence.authorization_details,
            "confirmed_at": evidence.confirmed_at.isoformat(),
            # SHA-256 over the details as JSON with sorted keys, no spaces, UTF-8.
            "txn_hash": evidence.txn_hash,
            "device": {"id": evidence.device_id, "jwk": evidence.device_public_jwk},
            # A JWS (ES256, typ nexus-answer+jwt) over challenge id, nonce, decision, number
            # and txn_hash, made by the phone's key.
            "signed_answer": evidence.signed_answer,
        }
    )
    response.headers["Cache-Control"] = "no-store"
    return response
