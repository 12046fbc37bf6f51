"""A stand-in for the Nexus Smart ID app and its push relay: simulated phones, each with a
page and a JSON API (DESIGN §7). It talks to the IdP only over HTTP."""

from __future__ import annotations

from flask import Flask

from mock_nexus.phones import PhoneBook
from mock_nexus.settings import NexusSettings


def create_app(settings: NexusSettings | None = None) -> Flask:
    from mock_nexus import views

    settings = settings or NexusSettings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 32 * 1024
    app.extensions["nexus"] = (settings, PhoneBook(settings.state_file))
    app.register_blueprint(views.bp)
    return app
