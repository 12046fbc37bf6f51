"""Per-request glue between Flask and the rest: dependencies, the database session, the
audit context. The only place request-scoped state is created."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from flask import Flask
from flask import Response
from flask import current_app
from flask import g
from flask import request
from sqlalchemy.orm import Session

from idp.audit.service import AuditContext
from idp.deps import Deps
from idp.revocation.service import announce_notices

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


def deps() -> Deps:
    return current_app.extensions["idp"]  # type: ignore[no-any-return]


def db() -> Session:
    """The request's database session: committed when the answer is a success, else rolled
    back. Services that must be durable even when the answer is an error commit themselves."""
    if "db" not in g:
        g.db = deps().sessions()
    return g.db  # type: ignore[no-any-return]


def now() -> datetime:
    if "now" not in g:
        g.now = deps().clock.now()
    return g.now  # type: ignore[no-any-return]


def request_id() -> str:
    if "request_id" not in g:
        g.request_id = request_id_from(request.headers.get("X-Request-Id", ""))
    return g.request_id  # type: ignore[no-any-return]


def request_id_from(incoming: str) -> str:
    """The caller's request id when it is a plausible one, else a fresh one."""
    return incoming if _REQUEST_ID.fullmatch(incoming) else secrets.token_hex(8)


def audit_context() -> AuditContext:
    return AuditContext(
        client_ip=request.remote_addr,
        request_id=request_id(),
        user_agent=request.headers.get("User-Agent", "")[:255] or None,
        client_id=g.get("audit_client_id"),
    )


def init_app(app: Flask) -> None:
    @app.after_request
    def _finish_transaction(response: Response) -> Response:
        db: Session | None = g.pop("db", None)
        if db is not None:
            committed = False
            try:
                if response.status_code < 400:
                    db.commit()
                    committed = True
                else:
                    db.rollback()
            finally:
                db.close()
            if committed and g.pop("notices_owed", False):
                announce()
        response.headers["X-Request-Id"] = request_id()
        return response

    @app.teardown_request
    def _close_on_error(_exc: BaseException | None) -> None:
        db: Session | None = g.pop("db", None)
        if db is not None:
            db.rollback()
            db.close()


def announce() -> None:
    """After committing notices owed to relying parties: wake every instance's sender."""
    announce_notices(deps().store, deps().keys)


def notices_owed() -> None:
    """This request ended sessions (logout notices, security events): once its transaction is
    committed, every instance's sender is woken to deliver them at once."""
    g.notices_owed = True
