"""Real IdP processes on loopback ports, for integration and browser tests."""

from __future__ import annotations

import base64
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
IDP = [sys.executable, "-m", "idp.cli"]
PASSWORD = "Demo-Pass-2025!"


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nobody listens on now, and never one this run handed out before (servers bind
    a moment after they are given one)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def production_env(database_url: str, redis_url: str, issuer: str) -> dict[str, str]:
    """Settings for production mode with fresh, non-demo secrets."""
    return {
        **os.environ,
        "IDP_MODE": "production",
        "IDP_ISSUER": issuer,
        "IDP_DATABASE_URL": database_url,
        "IDP_REDIS_URL": redis_url,
        "IDP_REDIS_NAMESPACE": f"it{secrets.token_hex(4)}:",
        "IDP_SECRET_KEY": secrets.token_urlsafe(48),
        "IDP_DATA_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="),
        "IDP_PAOTANG_CLIENT_SECRET": secrets.token_urlsafe(32),
        "IDP_NEXUS_API_KEY": secrets.token_urlsafe(32),
        "IDP_LOG_LEVEL": "WARNING",
        # These tests exercise serving with password-only users (a registration period).
        "IDP_SOFT_TOKEN_REQUIRED": "false",
    }


def with_phones(env: dict[str, str], issuer: str, nexus: str, state_file: str) -> dict[str, str]:
    """``env`` for an IdP confirming logins on phones at the mock ``nexus``, and for the mock."""
    return {
        **env,
        "IDP_SOFT_TOKEN_REQUIRED": "true",
        "IDP_NEXUS_RELAY_URL": nexus,
        "NEXUS_RELAY_URL": nexus,
        "NEXUS_IDP_URL": issuer,
        "NEXUS_API_KEY": env["IDP_NEXUS_API_KEY"],
        "NEXUS_STATE_FILE": state_file,
    }


@contextmanager
def two_instances_with_phones(
    env: dict[str, str], ports: tuple[int, int, int], *, log_dir: Path
) -> Iterator[tuple[RunningIdp, RunningIdp]]:
    """Two production IdP instances (the first at the issuer's port) and the mock Nexus at
    the third port, with the demo users' phones bound through the real protocol."""
    port_a, port_b, nexus_port = ports
    with (
        running_process([sys.executable, "-m", "mock_nexus", "--port", str(nexus_port)],
                        env, nexus_port, log_dir=log_dir),
        running_idp(env, port_a, production=True, log_dir=log_dir) as a,
        running_idp(env, port_b, production=True, log_dir=log_dir) as b,
    ):  # fmt: skip
        run_cli(env, "demo", "bind-phones", "--nexus", f"http://127.0.0.1:{nexus_port}")
        yield a, b


def run_cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [*IDP, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@dataclass
class RunningIdp:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@contextmanager
def running_idp(
    env: dict[str, str], port: int, *, production: bool, log_dir: Path
) -> Iterator[RunningIdp]:
    if production:
        command = [*IDP, "serve", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    else:
        command = [*IDP, "run", "--port", str(port)]
    with running_process(command, env, port, log_dir=log_dir, ready="/readyz") as running:
        yield running


@contextmanager
def running_process(
    command: list[str], env: dict[str, str], port: int, *, log_dir: Path, ready: str = "/healthz"
) -> Iterator[RunningIdp]:
    """Start one of our processes on a loopback port and wait until it answers."""
    log = log_dir / f"process-{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=sink, stderr=sink)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url + ready, process, log)
        yield RunningIdp(url=url, process=process, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_until_ready(ready_url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(ready_url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"nothing answered at {ready_url}:\n{log.read_text()}")


class LoopbackBrowser:
    """A user agent that, like browsers on a loopback origin, keeps Secure cookies over http.

    (requests drops them without TLS; production mode marks every cookie Secure.)
    """

    def __init__(self) -> None:
        self.cookies: dict[str, str] = {}

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        headers = {**kwargs.pop("headers", {}), "Cookie": cookie}
        response = requests.request(method, url, headers=headers,
                                    allow_redirects=False, **kwargs)  # fmt: skip
        for header in response.raw.headers.getlist("Set-Cookie"):
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return response


def sign_in(
    authorize_url: str,
    username: str,
    callback: str,
    password: str = PASSWORD,
    *,
    nexus: str | None = None,
) -> str:
    """Play the browser: follow to the login page, post the form, confirm on the user's phone
    (phone-<username> at the mock ``nexus``) when asked, return the callback URL."""
    browser = LoopbackBrowser()
    origin = f"{urlsplit(authorize_url).scheme}://{urlsplit(authorize_url).netloc}"

    def follow(response: requests.Response) -> requests.Response:
        while response.status_code in (302, 303):
            location = response.headers["Location"]
            if not location.startswith(("/", origin)):
                break
            absolute = location if location.startswith("http") else origin + location
            response = browser.request("GET", absolute)
        return response

    response = follow(browser.request("GET", authorize_url))
    assert response.status_code == 200, response.text
    action = re.search(r'<form method="post" action="([^"]+)"', response.text).group(1)
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', response.text))
    fields.update(username=username, password=password)
    response = browser.request("POST", origin + action.replace("&amp;", "&"), data=fields)
    confirm_url = origin + response.headers.get("Location", "")
    response = follow(response)
    if response.status_code == 200 and 'id="match-number"' in response.text and nexus:
        number = int(re.search(r'id="match-number"[^>]*>\s*(\d+)', response.text).group(1))
        phone = f"{nexus}/phones/phone-{username}"
        deadline = time.monotonic() + 10
        while not (pending := requests.get(f"{phone}/inbox", timeout=10).json()["challenges"]):
            assert time.monotonic() < deadline, "no push reached the phone"
            time.sleep(0.05)
        approve = f"{phone}/challenges/{pending[-1]['id']}/approve"
        requests.post(approve, json={"number": number}, timeout=10).raise_for_status()
        response = follow(browser.request("GET", confirm_url))
    assert response.status_code in (302, 303), response.text[:500]
    assert response.headers["Location"].startswith(callback), response.headers["Location"]
    return str(response.headers["Location"])


@contextmanager
def serving(app: object, port: int | None = None) -> Iterator[str]:
    """Serve a WSGI app in this process on a loopback port: real HTTP, test-controlled."""
    port = port or free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)  # type: ignore[arg-type]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()


def sign_in_to(browser: LoopbackBrowser, url: str, username: str, password: str = PASSWORD) -> str:
    """Open one of the IdP's own pages, sign in on the way; return the page's HTML."""
    origin = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
    response = browser.request("GET", url)
    while response.status_code in (302, 303):
        location = response.headers["Location"]
        response = browser.request(
            "GET", location if location.startswith("http") else origin + location
        )
    action = re.search(r'<form method="post" action="([^"]+)"', response.text).group(1)
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', response.text))
    fields.update(username=username, password=password)
    response = browser.request("POST", origin + action.replace("&amp;", "&"), data=fields)
    while response.status_code in (302, 303):
        location = response.headers["Location"]
        response = browser.request(
            "GET", location if location.startswith("http") else origin + location
        )
    return str(response.text)


def waiter_env(settings: object, issuer: str, **changes: str) -> dict[str, str]:
    """The environment of a waiter beside an IdP of these ``settings`` (its Redis, namespace,
    secret key and issuer)."""
    return {
        **os.environ,
        "IDP_ISSUER": issuer,
        "IDP_REDIS_URL": str(settings.redis_url),  # type: ignore[attr-defined]
        "IDP_REDIS_NAMESPACE": settings.redis_namespace,  # type: ignore[attr-defined]
        "IDP_SECRET_KEY": settings.secret_key.get_secret_value(),  # type: ignore[attr-defined]
        "IDP_LOG_LEVEL": "WARNING",
        **changes,
    }


@contextmanager
def running_waiter(env: dict[str, str], port: int, *, log_dir: Path) -> Iterator[RunningIdp]:
    """The waiter as ``idp serve`` starts it (granian, ASGI, one worker), subscribed."""
    command = [*IDP, "waiter", "--bind", f"127.0.0.1:{port}"]
    with running_process(command, env, port, log_dir=log_dir) as running:
        deadline = time.monotonic() + 10
        while not requests.get(f"{running.url}/healthz", timeout=5).json()["subscribed"]:
            assert time.monotonic() < deadline, "the waiter never subscribed"
            time.sleep(0.05)
        yield running
