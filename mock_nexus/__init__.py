"""A stand-in for the Nexus Smart ID app and its push relay: simulated phones, each with a
page and a JSON API, and the relay that carries challenges and answers. It talks to
the IdP only over HTTP."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from mock_nexus.phones import PhoneBook
from mock_nexus.relay import Inboxes
from mock_nexus.relay import Knobs
from mock_nexus.settings import NexusSettings


@dataclass
class Nexus:
    settings: NexusSettings
    phones: PhoneBook
    inboxes: Inboxes
    knobs: Knobs


def create_app(settings: NexusSettings | None = None) -> Flask:
    from mock_nexus import views

    settings = settings or NexusSettings()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 32 * 1024
    app.extensions["nexus"] = Nexus(
        settings=settings,
        phones=PhoneBook(settings.state_file),
        inboxes=Inboxes(),
        knobs=Knobs(
            latency_ms=settings.latency_ms,
            outage=settings.outage,
            drop_pushes=settings.drop_pushes,
            drop_answers=settings.drop_answers,
        ),
    )
    app.register_blueprint(views.bp)
    return app
