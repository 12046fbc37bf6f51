"""What the administration and helpdesk consoles share: who may open them (a login the phone
confirmed, and an administrative role the page asks for) and how their pages are answered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint
from flask import Response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from werkzeug.wrappers import Response as BaseResponse

from idp.accounts.flow import Assurance
from idp.accounts.flow import assurance_of
from idp.accounts.flow import meets
from idp.accounts.models import User
from idp.accounts.models import UserSession
from idp.roles.authority import Authority
from idp.roles.authority import authority_of
from idp.web import context
from idp.web.sessions import csrf_token
from idp.web.sessions import current_login


class RefusedError(Exception):
    """Stops a console view with the answer to give instead (sign in, or refused)."""

    def __init__(self, response: BaseResponse) -> None:
        self.response = response


def answer_refusals(bp: Blueprint) -> None:
    bp.register_error_handler(RefusedError, lambda error: error.response)


def page(template: str, status: int = 200, **values: Any) -> Response:
    response = Response(render_template(template, csrf_token=csrf_token(), **values))
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def signed_in(next_path: str) -> tuple[UserSession, User]:
    """The browser's login; without one, to the sign-in page and back to ``next_path``.

    Raises:
        RefusedError
    """
    login = current_login()
    if login is None:
        raise RefusedError(redirect(url_for("login.signin", next=next_path), code=303))
    return login


def staff(allowed: Callable[[Authority], bool]) -> tuple[User, Authority]:
    """The signed-in person, from a login the phone confirmed, whose administrative roles
    pass ``allowed``.

    Raises:
        RefusedError
    """
    user_session, user = signed_in(request.path)
    if not meets(
        assurance_of(context.deps().settings.issuer, user_session.acr), Assurance.SOFT_TOKEN
    ):
        raise RefusedError(page("admin_refused.html", 403, reason="phone"))
    authority = authority_of(context.db(), user.id)
    if not allowed(authority):
        raise RefusedError(page("admin_refused.html", 403, reason="role"))
    return user, authority
