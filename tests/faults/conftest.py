"""The fault suite's deployment: its own PostgreSQL cluster and Redis server (throwaway, on
free ports), two production IdP instances sharing them, the mock Nexus with the demo users'
phones bound through the real protocol. Under CI=true it fails when these cannot start."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import unavailable
from tests.faults.infrastructure import CannotStartError
from tests.faults.infrastructure import Postgres
from tests.faults.infrastructure import Redis
from tests.faults.infrastructure import throwaway_postgres
from tests.faults.infrastructure import throwaway_redis
from tests.servers import RunningIdp
from tests.servers import free_port
from tests.servers import production_env
from tests.servers import run_cli
from tests.servers import two_instances_with_phones
from tests.servers import with_phones

CALLBACK = "http://127.0.0.1:9999/callback"
RP_SECRET = secrets.token_urlsafe(32)


@dataclass
class Deployment:
    a: RunningIdp
    b: RunningIdp
    nexus: str
    postgres: Postgres
    redis: Redis
    env: dict[str, str]
    logs: Path

    @property
    def instances(self) -> tuple[str, str]:
        return self.a.url, self.b.url


@pytest.fixture(scope="session")
def servers() -> Iterator[tuple[Postgres, Redis]]:
    try:
        with throwaway_postgres() as postgres, throwaway_redis() as redis:
            yield postgres, redis
    except CannotStartError as exc:
        unavailable("the fault suite's own PostgreSQL and Redis", exc)


@pytest.fixture(scope="session")
def deployment(servers, tmp_path_factory) -> Iterator[Deployment]:
    postgres, redis = servers
    port_a, port_b, nexus_port = free_port(), free_port(), free_port()
    issuer, nexus = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{nexus_port}"
    env = with_phones(production_env(postgres.url, redis.url, issuer), issuer, nexus,
                      str(tmp_path_factory.mktemp("nexus") / "phones.json"))  # fmt: skip
    # The throughput figures sign the same few people in many times.
    env["IDP_MFA_PUSH_LIMIT"] = "100000"
    run_cli(env, "db", "upgrade")
    run_cli(env, "demo", "seed")
    run_cli(env, "clients", "add", "fault-rp", "--name", "Fault suite", "--secret", RP_SECRET,
            "--redirect-uri", CALLBACK, "--scope", "openid")  # fmt: skip
    logs = tmp_path_factory.mktemp("logs")
    with two_instances_with_phones(env, (port_a, port_b, nexus_port), log_dir=logs) as (a, b):
        yield Deployment(a, b, nexus, postgres, redis, env, logs)
