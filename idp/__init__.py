"""Soft Token IdP: the OpenID Connect provider of the New GFMIS Thai Soft Token."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from idp.deps import Deps
from idp.deps import build_deps
from idp.oidc.backchannel import NoticeSender
from idp.settings import Settings

log = logging.getLogger(__name__)

# Protocol and form bodies are small; anything larger is refused before it is parsed.
MAX_BODY_BYTES = 64 * 1024


def create_app(
    settings: Settings | None = None, *, deps: Deps | None = None, background: bool = True
) -> Flask:
    """Build the IdP's WSGI application.

    ``background`` starts this process's jobs: the audit sealer, the revocation-mirror
    reconciler, the sender of back-channel notices (logout tokens and security events), key
    reloading and housekeeping. Tests turn it off and run the jobs themselves. (Imports are
    local so that ``idp.cli`` and the domain packages load without the web stack.)
    """
    from idp.api import admin as _admin_operations  # noqa: F401 - adds its routes to the API
    from idp.api import audit as _audit_operations  # noqa: F401 - likewise
    from idp.api import helpdesk as _helpdesk_operations  # noqa: F401 - likewise
    from idp.api.common import bp as admin_api_bp
    from idp.audit.service import Sealer
    from idp.oidc.discovery import build_discovery_document
    from idp.oidc.jsondoc import serialise
    from idp.oidc.server import build_authorization_server
    from idp.web import admin
    from idp.web import confirm
    from idp.web import context
    from idp.web import device_api
    from idp.web import enrol
    from idp.web import errors
    from idp.web import evidence
    from idp.web import helpdesk
    from idp.web import hygiene
    from idp.web import i18n
    from idp.web import login
    from idp.web import ops
    from idp.web import outages
    from idp.web import pages
    from idp.web import passkeys
    from idp.web import protocol
    from idp.web import security
    from idp.web import trail
    from idp.web.fastpath import FastPaths
    from idp.web.sessions import EphemeralSessionInterface

    settings = settings or (deps.settings if deps else Settings())
    deps = deps or build_deps(settings)
    ops.configure_logging(settings.log_level)

    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    app.config.update(
        SECRET_KEY=settings.secret_key.get_secret_value(),
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        MAX_FORM_PARTS=200,
        PREFERRED_URL_SCHEME="https" if settings.issuer.startswith("https") else "http",
    )
    discovery = serialise(build_discovery_document(settings.issuer))
    # Inside ProxyFix, so that the fast paths see the same client address as Flask does.
    app.wsgi_app = fast_paths = FastPaths(app.wsgi_app, deps, discovery)  # type: ignore[method-assign]
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app,
            x_for=settings.trusted_proxies,
            x_proto=settings.trusted_proxies,
            x_host=settings.trusted_proxies,
        )
    app.extensions["idp"] = deps
    app.extensions["idp.discovery"] = discovery
    app.extensions["idp.fast_paths"] = fast_paths
    app.session_interface = EphemeralSessionInterface(deps)

    context.init_app(app)
    ops.init_app(app)
    security.init_app(app, production=settings.is_production)
    i18n.init_app(app, default_locale=settings.default_locale)
    errors.init_app(app)
    hygiene.init_app(app)
    app.extensions["idp.oauth"] = build_authorization_server(
        app, deps, db=context.db, audit_context=context.audit_context
    )
    app.extensions["idp.notice_sender"] = sender = NoticeSender(
        deps.sessions,
        deps.signer,
        deps.clients,
        deps.clock,
        default_alg=settings.signing_alg,
        cipher=deps.cipher,
    )
    for blueprint in (
        protocol.bp,
        login.bp,
        confirm.bp,
        device_api.bp,
        evidence.bp,
        passkeys.bp,
        enrol.bp,
        pages.bp,
        admin.bp,
        helpdesk.bp,
        trail.bp,
        admin_api_bp,
        ops.bp,
    ):
        app.register_blueprint(blueprint)
    outages.init_app(app)

    deps.keyring.reload()
    _watch_for_changes(deps, sender)
    if not deps.store.is_shared:
        log.warning("idp.store.in_process: no IDP_REDIS_URL, so this must be the only process")
    if background:
        Sealer(deps.sessions, interval=settings.audit_seal_interval).start()
        _start_background_jobs(deps, sender)
    return app


def _watch_for_changes(deps: Deps, sender: NoticeSender) -> None:
    """Reload clients and keys when another process changes them, and send notices as soon
    as any process announces them (Redis pub/sub)."""
    from idp.revocation.service import NOTICES_TOPIC

    def on_clients(message: bytes) -> None:
        deps.clients.invalidate(message.decode() or None)

    def on_keys(_message: bytes) -> None:
        deps.keyring.reload()

    deps.store.subscribe(deps.keys.channel("clients"), on_clients)
    deps.store.subscribe(deps.keys.channel("keys"), on_keys)
    deps.store.subscribe(deps.keys.channel(NOTICES_TOPIC), lambda _message: sender.wake())
    deps.store.start_listening()


def _start_background_jobs(deps: Deps, sender: NoticeSender) -> None:
    from idp.audit.service import run_periodically
    from idp.enrol.service import expire_abandoned
    from idp.oidc.keys import retire_expired
    from idp.revocation.housekeeping import purge_expired

    def reconcile() -> None:
        with deps.sessions() as db:
            deps.revocations.reconcile(db, deps.clock.now())

    def reload_keys() -> None:
        deps.keyring.reload()

    def purge() -> None:
        with deps.sessions.begin() as db:
            purge_expired(db, now=deps.clock.now())
            retire_expired(db, now=deps.clock.now(), overlap=deps.settings.key_overlap)
            expire_abandoned(db, now=deps.clock.now(), proofing_ttl=timedelta(hours=1))

    stop = threading.Event()
    jobs = (
        ("revocation-reconciler", 1.0, reconcile),
        # Keys also change on a schedule nobody announces (the end of an overlap).
        ("key-reloader", 60.0, reload_keys),
        ("housekeeping", 600.0, purge),
    )
    for name, interval, job in jobs:
        threading.Thread(
            target=run_periodically,
            args=(stop, interval, job, f"idp.{name}.failed"),
            name=f"idp-{name}",
            daemon=True,
        ).start()
    # Woken by announcements; the poll is the fallback when Redis is away.
    threading.Thread(
        target=sender.run,
        args=(stop,),
        kwargs={"poll_interval": 0.5},
        name="idp-notice-sender",
        daemon=True,
    ).start()
