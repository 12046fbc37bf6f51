"""The login interaction pages: one view per step of ``idp.accounts.flow``.

Each page asks the state machine first (``at_step``) and refuses, with no side effect, any step
that is not the current one of its login."""

from __future__ import annotations

import logging
import re

from flask import Blueprint
from flask import Response
from flask import redirect
from flask import render_template
from flask import request
from flask import session as interaction_session
from flask import url_for
from flask_babel import gettext as _
from prometheus_client import Counter
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from idp.accounts.errors import AttemptThrottledError
from idp.accounts.errors import InvalidCredentialsError
from idp.accounts.errors import PasswordPolicyError
from idp.accounts.flow import Assurance
from idp.accounts.flow import Facts
from idp.accounts.flow import LoginPolicy
from idp.accounts.flow import LoginTransaction
from idp.accounts.flow import Step
from idp.accounts.flow import StepNotAllowedError
from idp.accounts.flow import acr_uri
from idp.accounts.flow import assurance_for
from idp.accounts.flow import complete_login
from idp.accounts.flow import complete_password
from idp.accounts.flow import complete_password_change
from idp.accounts.flow import confirmed_by
from idp.accounts.flow import meets
from idp.accounts.flow import next_step
from idp.accounts.flow import verify_complete
from idp.accounts.flow import verify_step
from idp.accounts.models import User
from idp.accounts.passwords import ChangeReason
from idp.accounts.passwords import password_change_reason
from idp.accounts.service import PasswordAuthenticator
from idp.audit.service import record
from idp.mfa.fatigue import reset_denials
from idp.mfa.service import active_device_id
from idp.mfa.service import device_still_active
from idp.revocation.service import end_session
from idp.store.ephemeral import EphemeralStoreError
from idp.web import context
from idp.web.sessions import csrf_token
from idp.web.sessions import current_login
from idp.web.sessions import set_login_cookie
from idp.web.sessions import verify_csrf

log = logging.getLogger(__name__)

bp = Blueprint("login", __name__)

LOGIN_OUTCOMES = Counter("idp_login_total", "Password-step outcomes", ["outcome"])

STEP_VIEWS = {
    Step.PASSWORD: "login.password",
    Step.CONFIRM: "confirm.page",
    Step.CHANGE_PASSWORD: "login.change_password",
}
# Every page that takes part in a step, each refusing when its step is not the current one
# (docs/login.md lists them; a test checks both). ``/login/confirm/wait`` is not among them:
# it only reports the push's state, and changes nothing.
STEP_PAGES: dict[Step, tuple[str, ...]] = {
    Step.PASSWORD: ("/login/password",),
    Step.CONFIRM: ("/login/confirm", "/login/totp", "/login/passkey/options", "/login/passkey"),
    Step.CHANGE_PASSWORD: ("/login/change-password",),
}


def authenticator() -> PasswordAuthenticator:
    return context.deps().authenticator


def transaction() -> LoginTransaction | None:
    data = interaction_session.get("login_tx", {}).get(request.args.get("tx", ""))
    if not data:
        return None
    tx = LoginTransaction.from_dict(data)
    age = context.now().timestamp() - tx.started_at
    return tx if age <= context.deps().settings.login_transaction_ttl else None


# Pending logins kept per browser: enough for a few tabs, bounded against abuse.
_MAX_PENDING_LOGINS = 5


def save(tx: LoginTransaction) -> None:
    pending = dict(interaction_session.get("login_tx", {}))
    while tx.id not in pending and len(pending) >= _MAX_PENDING_LOGINS:
        pending.pop(next(iter(pending)))
    pending[tx.id] = tx.to_dict()
    interaction_session["login_tx"] = pending


def drop(tx: LoginTransaction) -> None:
    """End a login attempt: it cannot be resumed, whatever step it had reached."""
    pending = dict(interaction_session.get("login_tx", {}))
    pending.pop(tx.id, None)
    interaction_session["login_tx"] = pending


def login_user(tx: LoginTransaction) -> User | None:
    return context.db().get(User, tx.user_id) if tx.user_id else None


def facts_of(tx: LoginTransaction) -> Facts:
    policy = LoginPolicy(password_max_age=context.deps().settings.password_max_age)
    login = current_login()
    return Facts(
        user=login_user(tx),
        now=context.now(),
        policy=policy,
        signed_in=login[1].id if login is not None else None,
    )


def at_step(step: Step) -> tuple[LoginTransaction, Facts] | None:
    """This request's login, if ``step`` is the one it may take now; otherwise None, and the
    page refuses before any check, counter or push."""
    tx = transaction()
    if tx is None:
        return None
    facts = facts_of(tx)
    try:
        verify_step(tx, step, facts)
    except StepNotAllowedError:
        return None
    return tx, facts


def expired() -> BaseResponse:
    page = render_template("error.html", code="login_expired", description=None)
    return Response(page, status=400)


def advance(tx: LoginTransaction) -> BaseResponse:
    """Go to the next due step, or finish the login and resume the authorization."""
    step = next_step(tx, facts_of(tx))
    if step is not None:
        save(tx)
        # Every step's page is a form: its CSRF token is made in this answer's session write,
        # so showing the page writes nothing (a store round trip less per login).
        csrf_token()
        return redirect(url_for(STEP_VIEWS[step], tx=tx.id), code=303)
    return _finish(tx)


def _finish(tx: LoginTransaction) -> BaseResponse:
    try:
        # Finished once already (a replay of its last page), or a step-up whose session has
        # ended since: no session comes of it.
        verify_complete(tx, facts_of(tx))
    except StepNotAllowedError:
        return expired()
    deps = context.deps()
    now = context.now()
    db = context.db()
    known = login_user(tx)
    if known is None:
        return expired()
    # The failure counter first, the account row next: the order every counted step takes.
    authenticator().succeeded(db, known)
    # SECURITY: the account row locked (as a suspension locks it) and read afresh, so a login
    # finishing while the account is suspended gets no session, rather than one the
    # suspension missed.
    user = db.scalar(
        select(User)
        .where(User.id == known.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if user is None or not user.is_active:
        db.rollback()  # the counter stays as it was: this login did not succeed
        record(
            db,
            "login.account_suspended",
            now=now,
            outcome="failure",
            actor=known.sub,
            context=context.audit_context(),
        )
        db.commit()  # the answer is an error (rolled back): the trail must keep this
        drop(tx)
        return expired()
    acr = acr_uri(deps.settings.issuer, assurance_for(tx.amr))
    reset_denials(db, user.id)
    # The phone that confirmed this login: its suspension ends the session.
    device_id = confirmed_by(tx)
    if device_id is not None and not device_still_active(db, device_id):
        # Suspended while the login was finishing: no session for it (the suspension holds
        # the same row lock, so one of the two sees the other).
        return expired()
    if not _claim_finish(tx):
        return expired()
    previous = current_login()
    if previous is not None and previous[1].id == user.id:
        # The same person again (prompt=login, max_age, step-up): one session, fresh login.
        user_session = previous[0]
        cookie_value = deps.login_sessions.reauthenticate(
            db,
            user_session,
            user,
            acr=acr,
            amr=tx.amr,
            now=now,
            context=context.audit_context(),
            device_id=device_id,
        )
    else:
        if previous is not None:
            # Someone else signs in on this browser: the former user's session ends.
            end_session(
                db,
                deps.revocations,
                previous[0].id,
                reason="replaced",
                now=now,
                access_token_ttl=deps.settings.access_token_ttl,
                actor=previous[1].sub,
                context=context.audit_context(),
            )
            context.notices_owed()
        user_session, cookie_value = deps.login_sessions.start(
            db,
            user,
            acr=acr,
            amr=tx.amr,
            now=now,
            context=context.audit_context(),
            device_id=device_id,
        )
    complete_login(tx, facts_of(tx), session_id=user_session.id)
    save(tx)
    # SECURITY: a new interaction-session id at login defeats session fixation.
    interaction_session.rotate()  # type: ignore[attr-defined]
    if tx.return_to:
        response = redirect(tx.return_to, code=303)
    else:
        response = redirect(url_for("oidc.resume", tx=tx.id), code=303)
    set_login_cookie(response, cookie_value)
    return response


def _claim_finish(tx: LoginTransaction) -> bool:
    """One session per login: two requests racing on the same approved login (a page opened
    twice) must not both open one."""
    deps = context.deps()
    try:
        return deps.store.set(
            deps.keys.login_finished(tx.id),
            b"1",
            ttl=deps.settings.login_transaction_ttl,
            only_if_new=True,
        )
    except EphemeralStoreError:
        # The login's own state lives in the same store, so this is at most a page opened
        # twice during an outage; refusing would keep everyone out while it lasts.
        log.warning("idp.login.finish_claim_unavailable")
        return True


# The IdP's own pages that may ask for a login.
OWN_PAGES = frozenset(
    {"/enrol", "/account", "/account/passkeys", "/account/roles", "/helpdesk", "/"}
)
# The console's pages (a path of letters, digits and dashes: never another site).
_CONSOLE_PAGE = re.compile(r"/admin(/[a-z0-9-]{1,64}){0,3}")


@bp.get("/signin")
def signin() -> BaseResponse:
    """Sign in to the IdP's own pages (registration), not on behalf of a client."""
    target = request.args.get("next", "/")
    if target not in OWN_PAGES and not _CONSOLE_PAGE.fullmatch(target):
        target = "/"
    tx = LoginTransaction.start({}, client_id="", now=context.now(), return_to=target)
    save(tx)
    return redirect(url_for("login.start", tx=tx.id), code=303)


@bp.get("/login")
def start() -> BaseResponse:
    """Send the browser to the step its login is at."""
    tx = transaction()
    if tx is None:
        return expired()
    return advance(tx)


@bp.route("/login/password", methods=["GET", "POST"])
def password() -> BaseResponse:
    found = at_step(Step.PASSWORD)
    # A password step is passed once per attempt: a second password must not inherit the
    # first user's progress (their phone's approval among it).
    if found is None:
        return expired()
    tx, facts = found
    error = None
    username = tx.params.get("login_hint", "")[:64]
    if request.method == "POST":
        verify_csrf()
        username = request.form.get("username", "")[:64]
        try:
            user = authenticator().verify_password_login(
                context.db(),
                username=username,
                password=request.form.get("password", "")[:1024],
                now=context.now(),
                context=context.audit_context(),
            )
        except InvalidCredentialsError:
            LOGIN_OUTCOMES.labels("failure").inc()
            error = _(
                "The username or password is incorrect, or too many attempts were made. "
                "Wait a moment and try again, or call the helpdesk."
            )
        else:
            LOGIN_OUTCOMES.labels("success").inc()
            device_id = active_device_id(context.db(), user.id)
            # SECURITY: the phone bound now is the one that must confirm, whatever happens later.
            complete_password(tx, facts, user=user, device_id=device_id)
            if device_id is None and _needs_phone(tx):
                # AAL1 is for registering the Soft Token, never for an application.
                return _soft_token_needed(tx, user)
            return advance(tx)
    client = context.deps().clients.get(tx.client_id)
    page = render_template(
        "login.html",
        tx=tx.id,
        username=username,
        error=error,
        client_name=client.client_name if client else "",
        csrf_token=csrf_token(),
    )
    return Response(page, status=200)


def _needs_phone(tx: LoginTransaction) -> bool:
    required = Assurance(tx.required) if tx.required else None
    if required is not None and meets(required, Assurance.SOFT_TOKEN):
        return True  # the client asked for more than a password
    return bool(tx.client_id) and context.deps().settings.soft_token_required


def _soft_token_needed(tx: LoginTransaction, user: User) -> BaseResponse:
    drop(tx)
    record(
        context.db(),
        "login.soft_token_missing",
        now=context.now(),
        outcome="failure",
        actor=user.sub,
        context=context.audit_context(),
    )
    context.db().commit()  # the answer is an error (rolled back): the trail must keep this
    page = render_template("error.html", code="soft_token_required", description=None)
    return Response(page, status=403)


@bp.route("/login/change-password", methods=["GET", "POST"], endpoint="change_password")
def change_password_step() -> BaseResponse:
    # SECURITY: only when a change is due, and only after the phone confirmed the login: the
    # password alone must not change the password (account takeover), and a stolen session's
    # step-up must not make this page a password oracle.
    found = at_step(Step.CHANGE_PASSWORD)
    if found is None or found[1].user is None:
        return expired()
    tx, facts = found
    user = found[1].user
    db = context.db()
    settings = context.deps().settings
    reason = password_change_reason(user, now=context.now(), max_age=settings.password_max_age)
    errors: list[str] = []
    if request.method == "POST":
        verify_csrf()
        current = request.form.get("current_password", "")[:1024]
        new = request.form.get("new_password", "")[:1024]
        if new != request.form.get("confirm_password", ""):
            errors.append(_("The two new passwords differ."))
        else:
            try:
                # Counted exactly like a wrong password at the password step (commits).
                authenticator().verify_current_password(
                    db, user, current, now=context.now(), context=context.audit_context()
                )
            except AttemptThrottledError:
                errors.append(_("Too many failed attempts. Wait a moment and try again."))
            except InvalidCredentialsError:
                errors.append(_("The current password is not correct."))
            else:
                complete_password_change(tx, facts)  # kept only once the change is made
                try:
                    context.deps().accounts.change_password(
                        db,
                        user,
                        new_password=new,
                        now=context.now(),
                        reason=reason,
                        context=context.audit_context(),
                    )
                except PasswordPolicyError as exc:
                    errors.append(_policy_message(exc))
                else:
                    return advance(tx)
    page = render_template(
        "change_password.html",
        tx=tx.id,
        username=user.username,
        reason=_reason_message(reason),
        errors=errors,
        min_length=settings.password_min_length,
        csrf_token=csrf_token(),
    )
    return Response(page, status=200)


def _reason_message(reason: str | None) -> str | None:
    """Why the page asks for a new password, in the page's language (None: no reason known)."""
    messages: dict[str, str] = {
        ChangeReason.ISSUED: _(
            "Your password was issued to you. Choose your own password before you continue."
        ),
        ChangeReason.RESET: _(
            "Your password was reset. Choose a new password before you continue."
        ),
        ChangeReason.ROLE_CHANGED: _(
            "Your roles have changed. The rules ask for a new "
            "password right after a role change: choose one before "
            "you continue."
        ),
        ChangeReason.EXPIRED: _(
            "Your password has expired: it was set more than %(days)d days "
            "ago, and the Ministry's rules ask for a new password every 3 "
            "months. Choose a new password.",
            days=context.deps().settings.password_max_age_days,
        ),
    }
    return messages.get(reason) if reason else None


def _policy_message(error: PasswordPolicyError) -> str:
    settings = context.deps().settings
    messages = {
        "too_short": _("Use at least %(n)d characters.", n=settings.password_min_length),
        "too_long": _("The password is too long."),
        "contains_username": _("The password may not contain your username."),
        "common": _(
            "This is a commonly used password that is easy to guess. Choose another password."
        ),
        "unchanged": _("Choose a password different from the current one."),
        "reused": _(
            "You used this password recently. Choose one that is not among your last "
            "%(n)d passwords.",
            n=settings.password_history,
        ),
    }
    return str(messages.get(error.reason, error.message))
