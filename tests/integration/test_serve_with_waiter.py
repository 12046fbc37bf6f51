"""``idp serve`` with ``IDP_WAIT_URL`` starts the waiter beside the IdP, and ends it with it."""

from __future__ import annotations

import socket
import time

import requests

from tests.servers import free_port
from tests.servers import production_env
from tests.servers import run_cli
from tests.servers import running_idp


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_serve_starts_the_waiter_and_ends_it(fresh_database_url, redis_url, tmp_path):
    port, wait_port = free_port(), free_port()
    env = production_env(fresh_database_url, redis_url, f"http://127.0.0.1:{port}")
    env.update(IDP_WAIT_URL=f"http://127.0.0.1:{wait_port}",
               IDP_WAIT_BIND=f"127.0.0.1:{wait_port}")  # fmt: skip
    run_cli(env, "db", "upgrade")
    with running_idp(env, port, production=True, log_dir=tmp_path):
        deadline = time.monotonic() + 30
        while not listening(wait_port):
            assert time.monotonic() < deadline, "idp serve did not start the waiter"
            time.sleep(0.1)
        health = requests.get(f"http://127.0.0.1:{wait_port}/healthz", timeout=5).json()
        assert health["status"] == "ok"
    # 'idp serve' stopped (or, when granian's stop hangs, was killed): the waiter goes too.
    deadline = time.monotonic() + 15
    while listening(wait_port):
        assert time.monotonic() < deadline, "the waiter outlived 'idp serve'"
        time.sleep(0.1)
