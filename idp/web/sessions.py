"""Browser state: a server-side interaction session, the login cookie, and CSRF tokens.

Two cookies, each opaque and random:
- the interaction session (``idp_session``) lives in the ephemeral store: CSRF token and the
  login transactions under way. Losing it (a Redis restart) only restarts a login.
- the login session (``idp_auth``) names a row in the database, the source of truth: ending
  that row ends the login everywhere, whatever any instance has cached.
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from typing import Any

from flask import Flask
from flask import Request
from flask import Response
from flask import abort
from flask import g
from flask import request
from flask import session as interaction_session
from flask.sessions import SessionInterface
from flask.sessions import SessionMixin
from werkzeug.datastructures import CallbackDict
from werkzeug.wrappers import Response as BaseResponse

from idp.accounts.models import User
from idp.accounts.models import UserSession
from idp.deps import Deps
from idp.store.ephemeral import EphemeralStoreError
from idp.store.secrets import sha256_hex
from idp.web import context

log = logging.getLogger(__name__)


def cookie_name(base: str, *, production: bool) -> str:
    # RFC 6265bis §4.1.3.2: __Host- cookies are Secure, host-only and Path=/.
    return f"__Host-{base}" if production else base


class InteractionSession(CallbackDict[str, Any], SessionMixin):
    def __init__(self, initial: dict[str, Any] | None = None, sid: str | None = None) -> None:
        def on_update(_self: Any) -> None:
            self.modified = True

        super().__init__(initial, on_update)
        self.sid = sid
        self.modified = False
        self.rotate_requested = False

    def rotate(self) -> None:
        """Give the session a new id and CSRF token (at login), so neither planted before it
        is worth anything after."""
        self.pop("csrf", None)
        self.rotate_requested = True
        self.modified = True


class EphemeralSessionInterface(SessionInterface):
    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        self._name = cookie_name("idp_session", production=deps.settings.is_production)

    def _key(self, sid: str) -> str:
        return self._deps.keys.web_session(sha256_hex(sid))

    def open_session(self, app: Flask, request: Request) -> InteractionSession:
        sid = request.cookies.get(self._name)
        if not sid or len(sid) > 64:
            # No store round trip for cookie-less requests: the protocol hot paths.
            return InteractionSession()
        try:
            raw = self._deps.store.get(self._key(sid))
        except EphemeralStoreError:
            log.warning("idp.web.session_store_unavailable")
            raw = None
        if raw is None:
            return InteractionSession()
        return InteractionSession(json.loads(raw), sid=sid)

    def save_session(self, app: Flask, interaction: Any, response: Response) -> None:
        assert isinstance(interaction, InteractionSession)  # noqa: S101 - ours from open_session
        if not interaction.modified:
            return
        secure = self._deps.settings.is_production
        old_sid = interaction.sid
        if not interaction:
            if old_sid:
                self._deps.store.delete(self._key(old_sid))
                response.delete_cookie(self._name, secure=secure, httponly=True, samesite="Lax")
            return
        sid = old_sid
        if sid is None or interaction.rotate_requested:
            sid = secrets.token_urlsafe(32)
            if old_sid:
                self._deps.store.delete(self._key(old_sid))
        ttl = self._deps.settings.session_idle_timeout
        self._deps.store.set(self._key(sid), json.dumps(dict(interaction)).encode(), ttl=ttl)
        response.set_cookie(self._name, sid, httponly=True, secure=secure, samesite="Lax", path="/")
        response.vary.add("Cookie")


# --- the login cookie -----------------------------------------------------------------


def auth_cookie_name() -> str:
    return cookie_name("idp_auth", production=context.deps().settings.is_production)


def current_login() -> tuple[UserSession, User] | None:
    """The browser's live login session and its user, or None."""
    if "login" not in g:
        value = request.cookies.get(auth_cookie_name())
        found = None
        if value and len(value) <= 64:
            found = context.deps().login_sessions.active(context.db(), value, now=context.now())
        g.login = found
    return g.login  # type: ignore[no-any-return]


def set_login_cookie(response: BaseResponse, value: str) -> None:
    production = context.deps().settings.is_production
    # A browser-session cookie: closing the browser ends the login on this machine.
    response.set_cookie(
        auth_cookie_name(), value, httponly=True, secure=production, samesite="Lax", path="/"
    )


def clear_login_cookie(response: BaseResponse) -> None:
    production = context.deps().settings.is_production
    response.delete_cookie(auth_cookie_name(), secure=production, httponly=True, samesite="Lax")


# --- CSRF -------------------------------------------------------------------------------


def csrf_token() -> str:
    token = interaction_session.get("csrf")
    if not token:
        token = interaction_session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def verify_csrf() -> None:
    """Every form post carries the session's token (synchroniser token pattern); a script's
    JSON call carries it in the X-CSRF-Token header."""
    expected = interaction_session.get("csrf")
    given = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token", "")
    if not expected or not hmac.compare_digest(str(expected), given):
        abort(400, description="csrf")
