"""Thai first, English on request (Flask-Babel)."""

from __future__ import annotations

from datetime import date
from datetime import datetime
from pathlib import Path

from flask import Flask
from flask import g
from flask import request
from flask import session as interaction_session
from flask_babel import Babel
from flask_babel import get_locale

import thai_format

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
    pending = interaction_session.get("login_tx", {}).get(request.args.get("tx", ""), {})
    return str(pending.get("params", {}).get("ui_locales", ""))


def init_app(app: Flask, *, default_locale: str) -> None:
    app.config["BABEL_DEFAULT_LOCALE"] = default_locale
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)

    @app.before_request
    def _default_locale() -> None:
        g.default_locale = default_locale

    Babel(app, locale_selector=select_locale)
    app.jinja_env.globals["get_locale"] = get_locale
    # Every page writes dates and times one way: Buddhist era and Thailand's time in Thai
    # (2 ธ.ค. 2569, 09.30 น.), Thailand's time marked in English.
    app.jinja_env.filters["thai_date"] = _date
    app.jinja_env.filters["thai_time"] = _time
    app.jinja_env.filters["thai_datetime"] = _datetime


def _date(day: date | datetime | None, long: bool = False) -> str:
    return thai_format.format_date(day, str(get_locale()), long=long)


def _time(moment: datetime | None) -> str:
    return thai_format.format_time(moment, str(get_locale()))


def _datetime(moment: datetime | None) -> str:
    return thai_format.format_datetime(moment, str(get_locale()))
