"""The PostgreSQL and Redis the tests use: the configured ones when they answer, else
throwaway ones started for this run and stopped at its end.

So ``make test`` on a fresh machine runs every test, nothing skipped: a developer need not run
either service, and CI, which runs both, keeps using its own. The throwaway servers are the
fault suite's (``tests/faults/infrastructure.py``), on free loopback ports; their binaries
come from Debian's packages, which ``make test`` installs when root (as it does Chromium), or
from PATH. Each is started at most once, on first need, so a run of unit tests starts nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from contextlib import ExitStack

import redis
from sqlalchemy import create_engine
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from tests.faults.infrastructure import CannotStartError
from tests.faults.infrastructure import Postgres
from tests.faults.infrastructure import Redis
from tests.faults.infrastructure import throwaway_postgres
from tests.faults.infrastructure import throwaway_redis

CONFIGURED_PG_URL = os.environ.get(
    "IDP_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CONFIGURED_REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class ServiceUnavailableError(RuntimeError):
    """Neither the configured server answers nor could a throwaway one start."""


def postgres_answers(url: str) -> bool:
    engine = create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False
    finally:
        engine.dispose()
    return True


def redis_answers(url: str) -> bool:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except (redis.RedisError, OSError):
        return False
    return True


class Services:
    """Finds, or starts, each server once per run; ``close`` stops what it started."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._urls: dict[str, str] = {}
        self._failures: dict[str, str] = {}
        self.started: list[str] = []  # what this run started, for the summary line

    def postgres_url(self) -> str:
        return self._url("PostgreSQL", CONFIGURED_PG_URL, postgres_answers, throwaway_postgres)

    def redis_url(self) -> str:
        return self._url("Redis", CONFIGURED_REDIS_URL, redis_answers, throwaway_redis)

    def _url(
        self,
        what: str,
        configured: str,
        answers: Callable[[str], bool],
        throwaway: Callable[[], AbstractContextManager[Postgres | Redis]],
    ) -> str:
        if what in self._urls:
            return self._urls[what]
        if what in self._failures:  # tried once already: do not pay for a second attempt
            raise ServiceUnavailableError(self._failures[what])
        if answers(configured):
            self._urls[what] = configured
            return configured
        try:
            server = self._stack.enter_context(throwaway())
        except (CannotStartError, OSError) as exc:
            self._failures[what] = f"{configured} does not answer and no throwaway {what}: {exc}"
            raise ServiceUnavailableError(self._failures[what]) from exc
        self._urls[what] = server.url
        self.started.append(f"a throwaway {what} at {server.url} ({configured} did not answer)")
        return server.url

    def close(self) -> None:
        self._stack.close()
        self._urls.clear()


SERVICES = Services()
