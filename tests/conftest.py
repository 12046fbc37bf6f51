"""Fixtures: a PostgreSQL schema and a Redis namespace of this run's own, a fake clock, the
app and its test client.

PostgreSQL and Redis are the configured ones (``IDP_TEST_DATABASE_URL``, ``IDP_TEST_REDIS_URL``)
when they answer, else throwaway ones this run starts and stops (tests/services.py). Tests that
need a service that neither answers nor starts (or Chromium) skip on a developer's machine, and
fail under CI=true.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from idp import create_app
from idp.deps import Deps
from idp.deps import build_deps
from idp.oidc.keys import ensure_keys
from idp.settings import Settings
from idp.store.db import make_engine
from idp.store.ephemeral import RedisStore
from idp.store.migrate import upgrade
from idp.store.models import Base
from idp.store.secrets import DataCipher
from tests.fakes import FakeClock
from tests.services import CONFIGURED_PG_URL
from tests.services import CONFIGURED_REDIS_URL
from tests.services import SERVICES
from tests.services import ServiceUnavailableError

CI = os.environ.get("CI") == "true"
RUN_ID = f"{os.getpid()}_{secrets.token_hex(3)}"
NAMESPACE = f"test{RUN_ID}:"
# Kept across tests: generating RSA keys for every test would dominate the run time; the
# exclusive-role policy is reference data the migration writes.
KEEP_TABLES = {"signing_keys", "alembic_version", "exclusive_role_pairs"}


def unavailable(what: str, why: object) -> NoReturn:
    message = f"{what} is not reachable: {why}"
    if CI:
        pytest.fail(f"{message} (required under CI=true)")
    pytest.skip(message)


def postgres_server_url() -> str:
    """The PostgreSQL server of this run (configured or throwaway); skips or fails without one."""
    try:
        return SERVICES.postgres_url()
    except ServiceUnavailableError as exc:
        unavailable("PostgreSQL", exc)


def redis_server_url() -> str:
    """The Redis server of this run (configured or throwaway); skips or fails without one."""
    try:
        return SERVICES.redis_url()
    except ServiceUnavailableError as exc:
        unavailable("Redis", exc)


def __getattr__(name: str) -> str:
    """``PG_URL`` and ``REDIS_URL`` for tests that import them: the server of this run, found
    (or started) on first import; the configured URL when there is none, so that the fixtures,
    not an import, skip or fail."""
    finders = {"PG_URL": (SERVICES.postgres_url, CONFIGURED_PG_URL),
               "REDIS_URL": (SERVICES.redis_url, CONFIGURED_REDIS_URL)}  # fmt: skip
    if name not in finders:
        raise AttributeError(name)
    find, configured = finders[name]
    try:
        return find()
    except ServiceUnavailableError:
        return configured


def pytest_sessionfinish() -> None:
    SERVICES.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in SERVICES.started:
        terminalreporter.write_line(f"tests used {line}")


def with_search_path(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


@contextmanager
def own_schema(name: str) -> Iterator[str]:
    """A PostgreSQL schema for this run only; yields a URL whose search path is that schema."""
    server = postgres_server_url()
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{name}"'))
    except OperationalError as exc:
        unavailable("PostgreSQL", exc.orig)
    try:
        yield with_search_path(server, name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with own_schema(f"t_{RUN_ID}") as url:
        _prepare(url)
        yield url


def _prepare(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as connection, Session(connection) as session:
        ensure_keys(session, DataCipher(Settings().data_key_bytes), now=FakeClock().now())
        session.flush()
    engine.dispose()


@pytest.fixture(scope="session")
def pg_engine(pg_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_url, pool_size=5)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def redis_store() -> Iterator[RedisStore]:
    import redis

    url = redis_server_url()
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        unavailable("Redis", exc)
    yield RedisStore(url)
    _delete_namespace(client)


def _delete_namespace(client: object) -> None:
    keys = list(client.scan_iter(match=f"{NAMESPACE}*", count=1000))  # type: ignore[attr-defined]
    if keys:
        client.delete(*keys)  # type: ignore[attr-defined]


@pytest.fixture
def clean_state(pg_engine: Engine, redis_store: RedisStore) -> None:
    import redis

    tables = [t.name for t in Base.metadata.sorted_tables if t.name not in KEEP_TABLES]
    with pg_engine.begin() as connection:
        # The audit table refuses TRUNCATE; a superuser's replica role skips its triggers.
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        connection.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))
    _delete_namespace(redis.Redis.from_url(redis_server_url()))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(pg_url: str) -> Settings:
    try:
        redis_url = SERVICES.redis_url()
    except ServiceUnavailableError:
        # Settings alone need no Redis: a test that uses it asks for redis_store, which skips.
        redis_url = CONFIGURED_REDIS_URL
    return Settings(
        database_url=pg_url,
        redis_url=redis_url,
        redis_namespace=NAMESPACE,
        log_level="WARNING",
        # Most tests drive the protocol with users who have no phone, as during a registration
        # period; the confirmation tests turn it back on.
        soft_token_required=False,
    )


@pytest.fixture
def deps(
    settings: Settings,
    pg_engine: Engine,
    redis_store: RedisStore,
    clock: FakeClock,
    clean_state: None,
) -> Deps:
    return build_deps(settings, clock=clock, store=redis_store, engine=pg_engine)


@pytest.fixture
def app(deps: Deps) -> Flask:
    return create_app(deps=deps, background=False)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
