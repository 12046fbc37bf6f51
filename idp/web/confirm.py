"""The confirmation step of a login: the page shows a number, the phone is asked, the page
waits for the answer (a long poll with JavaScript, a self-refresh without)."""

from __future__ import annotations

import threading
import time
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from typing import Any
from urllib.parse import urlencode
from urllib.parse import urlsplit

from flask import Blueprint
from flask import Response
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from flask import session as interaction_session
from flask import url_for
from flask_babel import gettext as _
from markupsafe import Markup
from prometheus_client import Counter
from werkzeug.wrappers import Response as BaseResponse

from idp.accounts.errors import AttemptThrottledError
from idp.accounts.flow import AMR_PUSH
from idp.accounts.flow import AMR_TOTP
from idp.accounts.flow import LoginTransaction
from idp.accounts.flow import Step
from idp.accounts.flow import complete_confirmation
from idp.accounts.models import User
from idp.audit.service import record
from idp.mfa.challenges import Challenge
from idp.mfa.challenges import Outcome
from idp.mfa.errors import ChallengePendingError
from idp.mfa.errors import PushLimitError
from idp.mfa.errors import PushPausedError
from idp.mfa.errors import PushUnavailableError
from idp.mfa.models import Device
from idp.mfa.models import DeviceStatus
from idp.mfa.passkeys import RelyingParty
from idp.mfa.passkeys import active_passkeys
from idp.mfa.service import evidence_for
from idp.oidc.authorization_details import parse_authorization_details
from idp.store.ephemeral import EphemeralStoreError
from idp.web import context
from idp.web import wait_ticket
from idp.web.enrol import qr_svg
from idp.web.login import advance
from idp.web.login import at_step
from idp.web.login import authenticator
from idp.web.login import drop
from idp.web.login import expired
from idp.web.login import facts_of
from idp.web.login import save
from idp.web.login import transaction
from idp.web.security import csp_connecting_to
from idp.web.sessions import csrf_token
from idp.web.sessions import verify_csrf

bp = Blueprint("confirm", __name__)

PUSH_OUTCOMES = Counter("idp_push_total", "Push confirmations by how they ended", ["outcome"])

# What the phone shows as the time of the request: Thai time, as the user reads it.
_BANGKOK = timezone(timedelta(hours=7), "ICT")
_POLL_INTERVAL = 0.25


def _challenge_of(tx: LoginTransaction) -> Challenge | None:
    """The push this login sent, and only if it is this login's (user, phone, attempt)."""
    challenge = context.deps().challenges.get(tx.challenge_id) if tx.challenge_id else None
    if challenge is None or (challenge.login_tx, challenge.user_id, challenge.device_id) != (
        tx.id,
        tx.user_id,
        tx.device_id,
    ):
        return None
    return challenge


def _at_confirmation() -> tuple[LoginTransaction, User] | None:
    found = at_step(Step.CONFIRM)
    if found is None or found[1].user is None or found[0].device_id is None:
        return None
    return found[0], found[1].user


def confirming() -> tuple[LoginTransaction, User] | None:
    """The login transaction of this request, when it is at the confirmation step and was not
    reported on the phone ("this was not me" ends the attempt, whatever the browser does)."""
    found = _at_confirmation()
    if found is None:
        return None
    challenge = _challenge_of(found[0])
    if challenge is not None:
        outcome = context.deps().challenges.outcome(challenge, now=context.now())
        if outcome == Outcome.REPORTED:
            drop(found[0])
            return None
    return found


@bp.get("/login/confirm", endpoint="page")
def confirm_page() -> BaseResponse:
    found = _at_confirmation()
    if found is None:
        return expired()
    tx, user = found
    deps = context.deps()
    challenge = _challenge_of(tx)
    if tx.challenge_id is None:
        challenge, state = _send_push(tx, user)
    elif challenge is None:
        state = Outcome.EXPIRED.value  # gone from the store: long expired
    else:
        state = deps.challenges.outcome(challenge, now=context.now()).value
    if state == Outcome.APPROVED and not _device_active(tx):
        state = "no_device"  # suspended after it answered: it confirms nothing
    if state == Outcome.APPROVED:
        PUSH_OUTCOMES.labels("approved").inc()
        evidence_id = None
        if transaction_of(tx) is not None:
            evidence = evidence_for(context.db(), tx.challenge_id or "")
            if evidence is None:
                return expired()  # cannot happen: the evidence is kept before "approved"
            evidence_id = evidence.id
        complete_confirmation(tx, facts_of(tx), amr=AMR_PUSH, evidence_id=evidence_id)
        return advance(tx)
    if state == Outcome.REPORTED:
        # "This was not me": this login is over, whatever else the browser tries.
        PUSH_OUTCOMES.labels("reported").inc()
        drop(tx)
        return _page(tx, state, challenge=None, status=403)
    save(tx)
    return _page(tx, state, challenge=challenge if state == Outcome.PENDING else None)


@bp.post("/login/confirm", endpoint="send_again")
def send_again() -> BaseResponse:
    """Ask the phone again, after a denial, a wrong number, an expiry or an outage."""
    verify_csrf()
    found = confirming()
    if found is None:
        return expired()
    tx, _user = found
    deps = context.deps()
    previous = _challenge_of(tx)
    if previous is None or deps.challenges.outcome(previous, now=context.now()) != Outcome.PENDING:
        tx.challenge_id = None  # the next page view sends a new one
        save(tx)
    return redirect(url_for("confirm.page", tx=tx.id), code=303)


@bp.get("/login/confirm/wait", endpoint="wait")
def wait_for_answer() -> Response:
    """Answer as soon as the phone has answered, or after a while with "pending": the page's
    script asks again at once, so the user sees the answer without delay."""
    # No database here: the wait must not hold a connection while it sleeps.
    tx = transaction()
    deps = context.deps()
    challenge = deps.challenges.get(tx.challenge_id) if tx and tx.challenge_id else None
    if challenge is None:
        return _no_store(jsonify({"state": Outcome.EXPIRED.value}))
    state = deps.challenges.outcome(challenge, now=deps.clock.now())
    # A worker never gives all its threads to waiting pages: past the cap the page is told
    # to ask again shortly instead of being held.
    waiting = _waiting_slots(deps.settings.mfa_max_waiting)
    if state != Outcome.PENDING:
        return _no_store(jsonify({"state": state.value}))
    if not waiting.acquire(blocking=False):
        return _no_store(jsonify({"state": state.value, "retry_after_ms": 1000}))
    try:
        deadline = time.monotonic() + deps.settings.mfa_long_poll
        while state == Outcome.PENDING and time.monotonic() < deadline:
            time.sleep(_POLL_INTERVAL)
            # The clock, not context.now(): that is fixed for the whole request.
            state = deps.challenges.outcome(challenge, now=deps.clock.now())
    finally:
        waiting.release()
    return _no_store(jsonify({"state": state.value}))


_WAITING: dict[int, threading.BoundedSemaphore] = {}
_WAITING_LOCK = threading.Lock()


def _waiting_slots(size: int) -> threading.BoundedSemaphore:
    with _WAITING_LOCK:
        if size not in _WAITING:
            _WAITING[size] = threading.BoundedSemaphore(size)
        return _WAITING[size]


@bp.route("/login/totp", methods=["GET", "POST"], endpoint="totp")
def totp_code() -> BaseResponse:
    """The fallback: the six-digit code the phone's app shows, when the push cannot reach it."""
    found = confirming()
    if found is None:
        return expired()
    tx, user = found
    problem = None
    if transaction_of(tx) is not None:
        # A code from the app proves the phone, but not that its owner saw this transaction.
        problem = "transaction_needs_push"
    elif request.method == "POST":
        verify_csrf()
        code = "".join(request.form.get("code", "").split())[:16]
        problem = _check_code(tx, user, code)
        if problem is None:
            PUSH_OUTCOMES.labels("totp").inc()
            withdraw_push(tx)
            complete_confirmation(tx, facts_of(tx), amr=AMR_TOTP)
            return advance(tx)
    page = render_template(
        "totp.html",
        tx=tx.id,
        passkey=_passkey_offered(tx),
        transaction=transaction_of(tx),
        problem=problem,
        error=_messages().get(problem or "", ""),
        client_name=_client_name(tx),
        csrf_token=csrf_token(),
    )
    return Response(page, status=200)


def _check_code(tx: LoginTransaction, user: User, code: str) -> str | None:
    """None when ``code`` is the phone's current code, else what went wrong."""
    deps = context.deps()
    db = context.db()
    now = context.now()
    try:
        # SECURITY: lock, then check, then count: parallel guesses are evaluated one after
        # another, never more than the throttle allows.
        authenticator().verify_may_attempt(db, user, now=now, context=context.audit_context())
    except AttemptThrottledError:
        return "throttled"
    device = db.get(Device, tx.device_id)
    if device is None or device.status != DeviceStatus.ACTIVE:
        return "no_device"
    try:
        accepted = deps.totp.verify_totp(device, code, now=now)
    except EphemeralStoreError:
        accepted = False  # cannot tell a used code from a new one: refuse
    if not accepted:
        # A wrong or reused code counts as a failed attempt of the account (commits).
        authenticator().count_failure(
            db, user, now=now, context=context.audit_context(), reason="wrong_totp"
        )
        return "wrong_code"
    record(
        db,
        "mfa.totp_accepted",
        now=now,
        actor=user.sub,
        context=context.audit_context(),
        device=device.id,
    )
    db.commit()  # the code is used, whatever the rest of this login does
    return None


def withdraw_push(tx: LoginTransaction) -> None:
    deps = context.deps()
    challenge = deps.challenges.get(tx.challenge_id) if tx.challenge_id else None
    if challenge is not None:
        deps.challenges.withdraw(challenge, now=context.now())
    tx.challenge_id = None


def _send_push(tx: LoginTransaction, user: User) -> tuple[Challenge | None, str]:
    deps = context.deps()
    db = context.db()
    now = context.now()
    device = db.get(Device, tx.device_id)
    if device is None or device.status != DeviceStatus.ACTIVE:
        return None, "no_device"
    if authenticator().is_throttled(db, user, now):
        return None, "throttled"
    # This browser trying again supersedes its own earlier login's push (another browser's
    # pending push still blocks: one pending challenge per user).
    holder = deps.challenges.pending_for(user.id, now=now)
    if holder is not None and (
        holder.login_tx in interaction_session.get("login_tx", {})
        # The owner's live session outranks a login that has only the password so far.
        or (tx.in_session and not holder.in_session)
    ):
        deps.challenges.withdraw(holder, now=now)
    try:
        challenge = deps.confirmation.start_push(
            db,
            user=user,
            device=device,
            login_tx=tx.id,
            client_id=tx.client_id,
            client_name=_client_name(tx),
            context=_request_context(now),
            authorization_details=transaction_of(tx),
            in_session=tx.in_session,
            now=now,
            audit=context.audit_context(),
        )
    except (ChallengePendingError, PushLimitError, PushPausedError) as error:
        return None, error.code
    except PushUnavailableError as error:
        PUSH_OUTCOMES.labels("unavailable").inc()
        return None, error.code
    tx.challenge_id = challenge.id
    return challenge, Outcome.PENDING.value


def _device_active(tx: LoginTransaction) -> bool:
    device = context.db().get(Device, tx.device_id) if tx.device_id else None
    return device is not None and device.status == DeviceStatus.ACTIVE


def _passkey_offered(tx: LoginTransaction) -> bool:
    """A passkey may confirm a login (not a transaction) where the issuer can be an RP ID."""
    if tx.user_id is None or transaction_of(tx) is not None:
        return False
    settings = context.deps().settings
    if not settings.passkeys_enabled or RelyingParty.for_issuer(settings.issuer) is None:
        return False
    return bool(active_passkeys(context.db(), tx.user_id))


def transaction_of(tx: LoginTransaction) -> list[dict[str, Any]] | None:
    """What the user is asked to approve (checked at the authorization endpoint)."""
    return parse_authorization_details(tx.params.get("authorization_details"))


def _client_name(tx: LoginTransaction) -> str:
    client = context.deps().clients.get(tx.client_id) if tx.client_id else None
    return client.client_name if client is not None else "GFMIS Soft Token"


def _request_context(now: datetime) -> dict[str, str]:
    """What the phone shows with the challenge, so the user can tell their own login from
    someone else's: where and when it comes from, and a reference for the helpdesk."""
    return {
        "ip": request.remote_addr or "",
        "browser": request.headers.get("User-Agent", "")[:200],
        "time": now.astimezone(_BANGKOK).isoformat(timespec="seconds"),
        "request_id": context.request_id(),
    }


def _page(
    tx: LoginTransaction, state: str, *, challenge: Challenge | None, status: int = 200
) -> BaseResponse:
    deps = context.deps()
    qr = link = None
    if challenge is not None:
        # The reverse path: the phone scans this (or, signing in on the phone itself, opens
        # it) and fetches the challenge from the IdP with its key.
        # SECURITY: never the number: a password holder could forward the code to the owner
        # ("scan to sign this"); the person types the number shown here, as with a push.
        link = "nexussmartid://confirm?" + urlencode(
            {"issuer": deps.settings.issuer, "challenge": challenge.id}
        )
        qr = Markup(qr_svg(link))  # noqa: S704 - SVG made by qrcode from our own link
    remaining = max(int(challenge.expires_at - context.now().timestamp()), 0) if challenge else 0
    waiter_url = None
    if challenge is not None and deps.settings.wait_url:
        ticket = wait_ticket.issue(
            deps.settings.secret_key.get_secret_value(),
            wait_ticket.Ticket(challenge.id, tx.id, challenge.user_id, challenge.expires_at),
        )
        waiter_url = f"{deps.settings.wait_url}/wait?{urlencode({'ticket': ticket})}"
    page = render_template(
        "confirm.html",
        tx=tx.id,
        passkey=_passkey_offered(tx) and state != Outcome.REPORTED,
        state=state,
        number=challenge.number if challenge else None,
        request_id=challenge.context.get("request_id") if challenge else None,
        sent_at=datetime.fromtimestamp(challenge.created_at, UTC).astimezone(_BANGKOK)
        if challenge
        else None,
        remaining=remaining,
        client_name=_client_name(tx),
        transaction=transaction_of(tx),
        qr=qr,
        link=link,
        waiter_url=waiter_url,
        # The waiter's hold and a margin for the network: a longer silence means it is stuck.
        waiter_timeout_ms=int((deps.settings.wait_hold + 10) * 1000),
        csrf_token=csrf_token(),
        messages=_messages(),
    )
    response = Response(page, status=status)
    if deps.settings.wait_url:
        parts = urlsplit(deps.settings.wait_url)
        response.headers["Content-Security-Policy"] = csp_connecting_to(
            f"{parts.scheme}://{parts.netloc}"
        )
    return response


def _messages() -> dict[str, str]:
    return {
        Outcome.DENIED.value: _("The sign-in was declined on your phone."),
        Outcome.WRONG_NUMBER.value: _(
            "The number typed on the phone did not match. Send a new request and type the "
            "number shown here."
        ),
        Outcome.EXPIRED.value: _("The request expired before it was answered."),
        Outcome.REPORTED.value: _(
            "This sign-in was refused on the phone and reported to the helpdesk. If it was "
            "you, call the GFMIS helpdesk."
        ),
        "push_unavailable": _(
            "Your phone cannot be reached right now. Use the six-digit code from the Nexus "
            "Smart ID app instead."
        ),
        "challenge_pending": _(
            "Another sign-in is already waiting for confirmation on your phone. Answer it, or "
            "wait until it expires, then send a new request."
        ),
        "throttled": _("Too many failed attempts. Wait a moment and try again."),
        "transaction_needs_push": _(
            "A transaction can only be approved in the Nexus Smart ID app, where you see what "
            "you approve. The six-digit code cannot approve it."
        ),
        "push_limited": _(
            "Too many requests were sent to your phone. Wait a little before sending another, "
            "or use the six-digit code from the app."
        ),
        "push_paused": _(
            "Requests to your phone are paused because several were declined. Use the "
            "six-digit code from the app; if you did not try to sign in, call the GFMIS "
            "helpdesk."
        ),
        "wrong_code": _(
            "The code is not correct or was already used. Wait for the next code and try again."
        ),
        "no_device": _("No phone is bound to this account any more. Call the GFMIS helpdesk."),
    }


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response
