"""Thai first, English on request (Flask-Babel)."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask import g
from flask import request
from flask import session
from flask_babel import Babel
from flask_babel import get_locale

SUPPORTED_LOCALES = ("th", "en")
LANGUAGE_COOKIE = "idp_lang"
TRANSLATIONS = Path(__file__).parent / "translations"


def select_locale() -> str:
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in SUPPORTED_LOCALES:
        return chosen
    # OIDC Core §3.1.2.1 ui_locales: the relying party's hint, when we speak it, on the
    # authorization request itself and on every page of the login it started.
    hint = request.args.get("ui_locales") or _login_transaction_hint()
    for tag in hint.split():
        if tag.split("-")[0].lower() in SUPPORTED_LOCALES:
            return tag.split("-")[0].lower()
    return str(g.get("default_locale", "th"))


def _login_transaction_hint() -> str:
    pending = session.get("login_tx", {}).get(request.args.get("tx", ""), {})
    return str(pending.get("params", {}).get("ui_locales", ""))


def init_app(app: Flask, *, default_locale: str) -> None:
    app.config["BABEL_DEFAULT_LOCALE"] = default_locale
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)

    @app.before_request
    def _default_locale() -> None:
        g.default_locale = default_locale

    Babel(app, locale_selector=select_locale)
    app.jinja_env.globals["get_locale"] = get_locale
