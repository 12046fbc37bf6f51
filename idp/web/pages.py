"""The IdP's own pages outside the login steps: home and the language switch."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint
from flask import Response
from flask import redirect
from flask import render_template
from flask import request
from werkzeug.wrappers import Response as BaseResponse

from idp.roles.authority import authority_of
from idp.web import context
from idp.web.i18n import LANGUAGE_COOKIE
from idp.web.i18n import SUPPORTED_LOCALES
from idp.web.sessions import current_login

bp = Blueprint("web", __name__)


@bp.get("/")
def home() -> BaseResponse:
    login = current_login()
    user = login[1] if login else None
    administrative = user is not None and authority_of(context.db(), user.id).is_administrative
    return Response(render_template("home.html", user=user, administrative=administrative))


@bp.get("/lang/<code>")
def switch_language(code: str) -> BaseResponse:
    target = request.args.get("next", "/")
    # Only a path on this site: the switch must not become an open redirector. Browsers read
    # a backslash as a slash ("/\\evil.example" is "//evil.example"), Python does not.
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
    ):
        target = "/"
    response = redirect(target, code=303)
    if code in SUPPORTED_LOCALES:
        response.set_cookie(
            LANGUAGE_COOKIE, code, max_age=365 * 86400, samesite="Lax", httponly=True
        )
    return response
