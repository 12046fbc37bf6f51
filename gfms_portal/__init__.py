"""The GFMS portal simulator: a relying party of the IdP that shows role-scoped work on
disbursement requests and has each approval confirmed on the approver's phone.

It is its own process and talks to the IdP only over HTTP, as a real relying party would:
it never imports ``idp``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from gfms_portal.idp_client import IdpClient
from gfms_portal.settings import PortalSettings
from gfms_portal.store import make_engine
from gfms_portal.store import prepare


@dataclass(frozen=True)
class Portal:
    settings: PortalSettings
    engine: Engine
    sessions: sessionmaker[Session]
    idp: IdpClient


def create_app(settings: PortalSettings | None = None, *, engine: Engine | None = None) -> Flask:
    from gfms_portal import web

    settings = settings or PortalSettings()
    engine = engine or make_engine(settings.database_url)
    app = Flask(__name__)
    app.config["SECRET_KEY"] = settings.secret_key
    # Attachments plus the form around them.
    app.config["MAX_CONTENT_LENGTH"] = settings.attachment_max_bytes * 4 + 64 * 1024
    app.extensions["portal"] = Portal(
        settings=settings,
        engine=engine,
        sessions=prepare(engine),
        idp=IdpClient(
            issuer=settings.issuer,
            client_id=settings.client_id,
            client_key=settings.client_key(),
            client_secret=settings.client_secret,
            redirect_uri=settings.redirect_uri,
            timeout=settings.timeout,
            leeway=settings.leeway,
        ),
    )
    web.init_app(app)
    return app
