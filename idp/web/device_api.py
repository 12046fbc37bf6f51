"""The bound phone's own API: answering a challenge, fetching one it scanned. Every call is
authenticated by a DPoP proof (RFC 9449) made with the device key, never by a bearer secret."""

from __future__ import annotations

from flask import Blueprint
from flask import Response
from flask import jsonify
from flask import request

from idp.accounts.models import User
from idp.audit.service import record
from idp.mfa.challenges import Outcome
from idp.mfa.device_keys import DeviceRequestError
from idp.mfa.device_keys import device_for
from idp.mfa.dpop import DpopProof
from idp.mfa.dpop import DpopProofError
from idp.mfa.dpop import verify_dpop_proof
from idp.mfa.errors import AnswerRejectedError
from idp.oidc.ciba import record_phone_answer
from idp.revocation.loss import loss_now
from idp.revocation.models import SuspensionReason
from idp.store.ephemeral import EphemeralStoreError
from idp.web import context
from idp.web.login import authenticator

bp = Blueprint("device_api", __name__)


def _proof() -> DpopProof:
    """Raises AnswerRejectedError."""
    deps = context.deps()
    return verify_dpop_proof(
        request.headers.get("DPoP"),
        htm=request.method,
        # RFC 9449 §4.3: the request's URI without query and fragment, as this issuer names it.
        htu=f"{deps.settings.issuer}{request.path}",
        now=context.now(),
        store=deps.store,
        keys=deps.keys,
    )


@bp.post("/mfa/answers")
def answer() -> Response:
    """The phone's signed answer to a push challenge, carried by the relay or sent directly."""
    if _flooding():
        return _too_many()
    deps = context.deps()
    body = request.get_json(silent=True)
    signed = body.get("answer") if isinstance(body, dict) else None
    try:
        if not isinstance(signed, str) or len(signed) > 8192:
            raise AnswerRejectedError()
        challenge, outcome = deps.confirmation.accept_answer(
            context.db(),
            answer=signed,
            proof=_proof(),
            now=context.now(),
            audit=context.audit_context(),
        )
    except AnswerRejectedError as error:
        return _rejected(error)
    if challenge.is_backchannel and record_phone_answer(
        context.db(), challenge, outcome, now=context.now(), audit=context.audit_context()
    ):
        context.notices_owed()  # a ping-mode client is told its request has an answer
    if outcome == Outcome.REPORTED:
        deps.confirmation.report_not_me(
            context.db(),
            challenge,
            suspend=False,  # below, as every suspension: case, offline grants, passkeys, SETs
            now=context.now(),
            audit=context.audit_context(),
        )
        owner = context.db().get(User, challenge.user_id)
        if deps.settings.mfa_suspend_on_report and owner is not None:
            deps.suspensions.suspend_phone(
                context.db(),
                owner,
                reason=SuspensionReason.COMPROMISED,
                loss=loss_now(context.now()),
                channel="not_me",
                actor=owner.sub,
                now=context.now(),
                audit=context.audit_context(),
            )
        context.notices_owed()
    if outcome == Outcome.WRONG_NUMBER:
        user = context.db().get(User, challenge.user_id)
        if user is not None:
            # A wrong number counts as a failed attempt of the account (commits).
            authenticator().count_failure(
                context.db(),
                user,
                now=context.now(),
                context=context.audit_context(),
                reason="wrong_number",
            )
    return _no_store(jsonify({"challenge_id": challenge.id, "outcome": outcome.value}))


@bp.get("/mfa/challenges/<challenge_id>")
def scanned_challenge(challenge_id: str) -> Response:
    """The reverse path: what a phone that scanned the login page's code is asked to confirm."""
    if _flooding():
        return _too_many()
    deps = context.deps()
    try:
        challenge = deps.confirmation.challenge_for_phone(
            context.db(),
            challenge_id=challenge_id[:64],
            proof=_proof(),
            now=context.now(),
        )
    except AnswerRejectedError as error:
        return _rejected(error, status=404)
    return _no_store(jsonify(challenge.relay_view()))


# Refusals per client IP per minute that are audited one by one; past twice that, the IP is
# refused before any work (junk must not flood the audit trail or the database).
_AUDITED_REFUSALS = 30


def _flooding() -> bool:
    deps = context.deps()
    try:
        value = deps.store.get(deps.keys.mfa_rejections(request.remote_addr or "unknown"))
    except EphemeralStoreError:
        return False
    return value is not None and int(value) > 2 * _AUDITED_REFUSALS


def _too_many() -> Response:
    response = jsonify({"error": "slow_down", "error_description": "Too many refused calls."})
    response.status_code = 429
    response.headers["Retry-After"] = "60"
    return _no_store(response)


@bp.post("/mfa/device/push-address")
def push_address() -> Response:
    """The app moved (reinstalled, new relay registration): where the relay reaches it now."""
    if _flooding():
        return _too_many()
    deps = context.deps()
    body = request.get_json(silent=True)
    address = body.get("push_address") if isinstance(body, dict) else None
    try:
        device = device_for(context.db(), _proof())
        if not isinstance(address, str):
            raise DeviceRequestError()
        deps.device_keys.change_push_address(
            context.db(),
            device,
            push_address=address,
            now=context.now(),
            audit=context.audit_context(),
        )
    except (AnswerRejectedError, DeviceRequestError) as error:
        return _rejected(error)
    return _no_store(jsonify({"device_id": device.id, "push_address": device.push_address}))


@bp.post("/mfa/device/key")
def rotate_key() -> Response:
    """The app moves to a new key: the current key proves the call (DPoP), the new key signs
    the rotation. Answers from then on must be signed by the new key."""
    if _flooding():
        return _too_many()
    deps = context.deps()
    body = request.get_json(silent=True)
    rotation = body.get("rotation") if isinstance(body, dict) else None
    try:
        device = device_for(context.db(), _proof())
        if not isinstance(rotation, str) or len(rotation) > 4096:
            raise DeviceRequestError()
        thumbprint = deps.device_keys.rotate_device_key(
            context.db(),
            device,
            rotation=rotation,
            now=context.now(),
            audit=context.audit_context(),
        )
    except (AnswerRejectedError, DeviceRequestError) as error:
        return _rejected(error)
    return _no_store(jsonify({"device_id": device.id, "key_thumbprint": thumbprint}))


def _rejected(error: AnswerRejectedError | DeviceRequestError, *, status: int = 400) -> Response:
    """Refuse, and keep the refusal in the audit trail (the answer itself is rolled back)."""
    deps = context.deps()
    try:
        count = deps.store.incr(deps.keys.mfa_rejections(request.remote_addr or "unknown"), ttl=60)
    except EphemeralStoreError:
        count = 1
    if count <= _AUDITED_REFUSALS:
        with deps.sessions.begin() as db:
            record(
                db,
                "mfa.answer_rejected",
                now=context.now(),
                outcome="failure",
                context=context.audit_context(),
                path=request.path,
            )
    elif count == _AUDITED_REFUSALS + 1:
        with deps.sessions.begin() as db:
            record(
                db,
                "mfa.answers_flooded",
                now=context.now(),
                outcome="failure",
                context=context.audit_context(),
                path=request.path,
            )
    response = jsonify({"error": error.code, "error_description": error.message})
    response.status_code = status
    if isinstance(error, DpopProofError):
        # RFC 9449 §7.1: a bad proof is answered as an authentication failure.
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'DPoP algs="ES256", error="invalid_dpop_proof"'
    return _no_store(response)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response
