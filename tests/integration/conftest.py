"""Integration fixtures: a PostgreSQL schema of its own per module, for real processes."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.conftest import own_schema
from tests.conftest import redis_server_url


@pytest.fixture(scope="module")
def fresh_database_url() -> Iterator[str]:
    with own_schema(f"it_{secrets.token_hex(6)}") as url:
        yield url


@pytest.fixture(scope="module")
def redis_url() -> str:
    return redis_server_url()
