"""Integration fixtures: a PostgreSQL schema of its own per module, for real processes."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.conftest import REDIS_URL
from tests.conftest import own_schema
from tests.conftest import unavailable


@pytest.fixture(scope="module")
def fresh_database_url() -> Iterator[str]:
    with own_schema(f"it_{secrets.token_hex(6)}") as url:
        yield url


@pytest.fixture(scope="module")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except (redis.RedisError, OSError) as exc:
        unavailable("Redis", exc)
    return REDIS_URL
