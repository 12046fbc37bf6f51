"""On a machine where neither PostgreSQL nor Redis answers, the tests start their own.

Runs a few tests needing both in a separate pytest, with the configured URLs pointing at ports
where nothing listens and CI unset (so a missing service would skip, not fail): they must pass,
none skipped, the run must say it used throwaway servers, and it must leave none running.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.conftest import unavailable
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
# A test on PostgreSQL and Redis through the app, one on Redis's revocation mirror, and one of
# the real-process integration tests (its own schema, Redis through the fixture).
SUBSET = [
    "tests/functional/test_token_endpoint.py::test_expired_code_is_refused",
    "tests/functional/test_revocation_resilience.py::test_a_failed_rebuild_is_not_trusted",
    "tests/integration/test_storage.py",
]


def test_the_tests_start_their_own_postgres_and_redis_when_none_answers() -> None:
    initdb = glob.glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("initdb")
    if not initdb or not shutil.which("redis-server"):
        unavailable("PostgreSQL's and Redis's binaries", "not installed (make test does, as root)")
    pg_port, redis_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env["IDP_TEST_DATABASE_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:{pg_port}/test"
    env["IDP_TEST_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *SUBSET],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert " passed" in output, output
    assert "skipped" not in output, output
    assert f"({env['IDP_TEST_DATABASE_URL']} did not answer)" in output, output
    assert f"({env['IDP_TEST_REDIS_URL']} did not answer)" in output, output
    # Stopped afterwards: the throwaway Redis's port answers no more.
    used = [line for line in output.splitlines() if "a throwaway Redis at" in line]
    port = int(used[0].split("a throwaway Redis at redis://127.0.0.1:")[1].split("/")[0])
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=port, socket_connect_timeout=1).ping()
