"""A faithful stand-in for Krungthai's Paotang KYC: an OpenID provider that verifies a Thai
citizen's ID card and face and returns ``verified_claims`` about them.

It is a separate process and talks to the IdP only over HTTP, as the real service does.
"""

from __future__ import annotations

from flask import Flask

from mock_paotang.provider import Knobs
from mock_paotang.provider import SigningKey
from mock_paotang.provider import State
from mock_paotang.settings import PaotangSettings


def create_app(settings: PaotangSettings | None = None) -> Flask:
    from mock_paotang import views

    settings = settings or PaotangSettings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 32 * 1024
    app.extensions["paotang"] = State(
        settings=settings,
        key=SigningKey(settings.key_file),
        knobs=Knobs(
            latency_ms=settings.latency_ms,
            outage=settings.outage,
            force_failure=settings.force_failure,
        ),
    )
    app.register_blueprint(views.bp)
    return app
