"""Throwaway servers for the fault suite: a Redis server and a PostgreSQL cluster of its own,
on free loopback ports, so that stopping, flushing or restarting them disturbs nothing else
on the machine."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.servers import free_port


class CannotStartError(RuntimeError):
    """A server of the fault suite could not be started here."""


def _as_postgres(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; CI containers often are.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name) or ""]
    if not found[-1]:
        raise CannotStartError(f"{name} not found")
    return found[-1]


@dataclass
class Postgres:
    folder: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str, timeout: float = 30) -> None:
        done = subprocess.run(
            _as_postgres([_postgres_bin("pg_ctl"), "-D", str(self.folder / "data"), *args]),
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if done.returncode != 0:
            raise CannotStartError(done.stdout + done.stderr)

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")  # fmt: skip
        self._ctl("-o", options, "-l", str(self.folder / "postgres.log"), "-w", "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")


@contextmanager
def throwaway_postgres() -> Iterator[Postgres]:
    # Directly under /tmp: the postgres user must reach it (pytest's folders are private).
    folder = Path(tempfile.mkdtemp(prefix="idp-faults-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    done = subprocess.run(
        _as_postgres([_postgres_bin("initdb"), "-D", str(folder / "data"), "-U", "postgres",
                      "--auth=trust", "-E", "UTF8", "--no-sync"]),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if done.returncode != 0:
        raise CannotStartError(done.stdout + done.stderr)
    server = Postgres(folder, free_port())
    try:
        server.start()
        yield server
    finally:
        with contextlib.suppress(CannotStartError):  # already stopped by a test
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Redis:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise CannotStartError("redis-server not found")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.client().ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise CannotStartError("redis-server did not answer")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@contextmanager
def throwaway_redis() -> Iterator[Redis]:
    server = Redis(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
