"""A database blip is invisible to clients when it can be: a request that meets a dropped
connection (a PostgreSQL restart, a failover) runs once more on a fresh one where that is
safe, and is otherwise answered ``503`` with ``Retry-After``, never a bare 500."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask import g
from flask import request
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1
# Reads, and protocol requests whose every write is in the request's one transaction (not
# committed when the connection dropped): running them again changes nothing twice.
_RETRIED_POSTS = frozenset({"/token", "/introspect", "/revoke", "/userinfo"})


def is_database_unavailable(error: BaseException) -> bool:
    """True for failures of the database connection rather than of the request."""
    if isinstance(error, PoolTimeoutError | OperationalError | InterfaceError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


def _is_safe_to_run_again() -> bool:
    return request.method in ("GET", "HEAD") or request.path in _RETRIED_POSTS


def _retrying(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except DBAPIError as error:
            if not (error.connection_invalidated and _is_safe_to_run_again()):
                raise
            log.warning("idp.web.database_connection_dropped_retrying")
            # The failed connection is gone (SQLAlchemy invalidates the pool on a
            # disconnect); the next session checks out a fresh one.
            db: Session | None = g.pop("db", None)
            if db is not None:
                db.close()
            return view(*args, **kwargs)

    return run


def init_app(app: Flask) -> None:
    """Wrap every view registered so far: call after the blueprints are registered."""
    for endpoint, view in list(app.view_functions.items()):
        app.view_functions[endpoint] = _retrying(view)
