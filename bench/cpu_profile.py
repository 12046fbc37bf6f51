"""Where the CPU of one hot-path request goes, through the real WSGI application.

    python bench/cpu_profile.py [--requests 2000] [--core 0] [--top 25] [--concurrency 8]
    python bench/cpu_profile.py --only login [--requests 300]

Builds the IdP in production mode in this process (``create_app``, no background jobs) on its
own PostgreSQL database ``idp_bench_profile`` (dropped and recreated) and Redis db 1 under
``bench-profile:``, with ``idp demo seed``; then calls the WSGI application directly, without a
server or a socket, for each path: first unprofiled, for the CPU and wall time per request,
then under cProfile on the thread's CPU clock. Prints, per path, the named stages (the
profiler's share of each, scaled to the unprofiled CPU time) and the costliest functions.

``--only login``: a password login of ``bench/run.py`` (``/authorize`` with PKCE, the login
page, the password ``POST`` to the ``303`` to ``/login/confirm``), one user with a phone; the
CPU of each of its three requests, the ``POST``'s without the argon2id verification (timed
apart, on the same clock), then the profile of the three.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import re
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from run import LOGIN_CALLBACK
from run import LOGIN_CLIENT
from run import LOGIN_USER
from run import TOKEN_BODY
from run import LoginRefusedError
from run import basic_auth
from run import seeded_world
from suspension import PASSWORD
from suspension import create_users
from suspension import in_process_deps
from suspension import pkce_pair

NAMESPACE = "bench-profile:"
ISSUER = "http://127.0.0.1:8000"

# (label, file suffix, function name): cumulative time of these, per request.
STAGES = (
    ("the whole WSGI call", "flask/app.py", "__call__"),
    ("the fast-path layer (discovery, JWKS)", "idp/web/fastpath.py", "_answer"),
    ("the token fast path", "idp/web/fast_token.py", "answer"),
    ("the introspection fast path", "idp/web/fast_introspection.py", "answer"),
    ("audit row by group commit (INSERT and COMMIT)", "idp/audit/group_commit.py", "append"),
    ("before_request hooks", "flask/app.py", "preprocess_request"),
    ("view (Authlib and the domain)", "flask/app.py", "dispatch_request"),
    ("after_request hooks", "flask/app.py", "process_response"),
    ("request context push/pop", "flask/ctx.py", "push"),
    ("client authentication", "rfc6749/authenticate_client.py", "__call__"),
    ("client secret check", "idp/oidc/clients.py", "check_client_secret"),
    ("sign the access token", "idp/oidc/tokens.py", "issue_access_token"),
    ("verify the access token", "idp/oidc/tokens.py", "verify_access_token"),
    ("revocation check", "idp/revocation/service.py", "is_revoked"),
    ("audit row (INSERT)", "idp/audit/service.py", "record"),
    ("commit", "sqlalchemy/orm/session.py", "commit"),
    ("session close", "sqlalchemy/orm/session.py", "close"),
    ("metrics", "prometheus_client/metrics.py", "observe"),
    ("metric labels", "prometheus_client/metrics.py", "labels"),
    ("JSON body", "flask/json/provider.py", "response"),
)


def environ_factory(method: str, path: str, body: str = "", **headers: str) -> Callable[[], dict]:  # type: ignore[type-arg]
    from werkzeug.test import EnvironBuilder

    builder = EnvironBuilder(
        path=path, method=method, data=body.encode(), base_url=ISSUER, headers=headers
    )
    if body:
        builder.content_type = "application/x-www-form-urlencoded"
    template = builder.get_environ()
    raw = body.encode()
    builder.close()

    def make() -> dict:  # type: ignore[type-arg]
        environ = dict(template)
        environ["wsgi.input"] = io.BytesIO(raw)
        return environ

    return make


def call(app: Any, make: Callable[[], dict]) -> int:  # type: ignore[type-arg]
    status = []

    def start_response(s: str, _headers: list[Any], _exc: Any = None) -> None:
        status.append(s)

    chunks = app(make(), start_response)
    try:
        for _ in chunks:
            pass
    finally:
        getattr(chunks, "close", lambda: None)()
    return int(status[0][:3])


def workloads(app: Any) -> dict[str, Callable[[], dict]]:  # type: ignore[type-arg]
    auth = basic_auth()
    token_request = environ_factory("POST", "/token", TOKEN_BODY, Authorization=auth)
    chunks = app(token_request(), lambda *_: None)
    token = json.loads(b"".join(chunks))["access_token"]
    introspect = urllib.parse.urlencode({"token": token, "token_type_hint": "access_token"})
    return {
        "token": token_request,
        "introspection": environ_factory("POST", "/introspect", introspect, Authorization=auth),
        "jwks": environ_factory("GET", "/jwks.json"),
        "discovery": environ_factory("GET", "/.well-known/openid-configuration"),
    }


def stage_shares(stats: pstats.Stats, requests: int) -> list[tuple[str, float]]:
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    whole = 0.0
    found = []
    for label, suffix, name in STAGES:
        seconds = sum(
            entry[3]
            for (filename, _line, function), entry in table.items()
            if function == name and filename.endswith(suffix)
        )
        if label == "the whole WSGI call":
            whole = seconds
        if seconds:
            found.append((label, seconds / whole if whole else 0.0))
    return found


def concurrent(app: Any, make: Callable[[], dict], name: str, requests: int, threads: int) -> None:  # type: ignore[type-arg]
    """``threads`` threads calling at once, as a server's blocking threads do: the process's
    CPU (every thread, this core) and the wall time per request."""
    each = requests // threads
    statuses: list[int] = []

    def work() -> None:
        for _ in range(each):
            statuses.append(call(app, make))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started, wall = time.process_time(), time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    cpu_us = (time.process_time() - started) / (each * threads) * 1e6
    wall_us = (time.perf_counter() - wall) / (each * threads) * 1e6
    bad = sorted({status for status in statuses if status != 200})
    print(f"\n## {name}, {threads} threads at once: {cpu_us:.0f} µs of CPU per request"
          f" (the process's), {wall_us:.0f} µs of wall time per request"
          f"{f', statuses {bad}' if bad else ''}")  # fmt: skip


class LoginBrowser:
    """A browser's cookies and one login's three requests, straight into the WSGI app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}

    def request(self, method: str, target: str, body: str = "") -> tuple[int, str, str]:
        path, _, query = target.partition("?")
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        make = environ_factory(method, path + ("?" + query if query else ""), body, **headers)
        answer: list[Any] = []

        def start_response(s: str, response_headers: list[Any], _exc: Any = None) -> None:
            answer.extend((s, response_headers))

        chunks = self.app(make(), start_response)
        try:
            text = b"".join(chunks).decode()
        finally:
            getattr(chunks, "close", lambda: None)()
        location = ""
        for name, value in answer[1]:
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
            elif name.lower() == "location":
                location = value
        return int(answer[0][:3]), location, text


LOGIN_STEPS = ("GET /authorize", "GET the login page", "POST the password (without argon2id)")


def one_login(app: Any, username: str, clock: list[float]) -> None:
    """The three requests; ``clock`` gets the CPU seconds of each added."""
    browser = LoginBrowser(app)
    _verifier, challenge = pkce_pair()
    query = urllib.parse.urlencode({
        "response_type": "code", "client_id": LOGIN_CLIENT, "redirect_uri": LOGIN_CALLBACK,
        "scope": "openid profile", "state": "s", "nonce": "n", "code_challenge": challenge,
        "code_challenge_method": "S256",
    })  # fmt: skip
    started = time.thread_time()
    status, location, _ = browser.request("GET", "/authorize?" + query)
    clock[0] += time.thread_time() - started
    if status not in (302, 303) or not location.startswith("/login/"):
        raise LoginRefusedError(f"/authorize answered {status} {location[:120]}")
    started = time.thread_time()
    status, _, page = browser.request("GET", location)
    clock[1] += time.thread_time() - started
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    if status != 200 or action is None:
        raise LoginRefusedError(f"no login form ({status})")
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page))
    fields.update(username=username, password=PASSWORD)
    started = time.thread_time()
    status, location, _ = browser.request(
        "POST", action.group(1).replace("&amp;", "&"), urllib.parse.urlencode(fields)
    )
    clock[2] += time.thread_time() - started
    if status != 303 or "/login/confirm?" not in location:
        raise LoginRefusedError(f"password step answered {status} {location[:120]}")


def bound_user(env: dict[str, str]) -> str:
    """One user with an active phone, written straight into the database: binding it through
    the mock Nexus needs the IdP listening on a socket, and only the device's row matters to
    the password step."""
    from sqlalchemy import select

    from idp.accounts.models import User
    from idp.mfa.models import Device
    from idp.mfa.models import DeviceStatus

    username = LOGIN_USER.format(0)
    deps = in_process_deps(env)
    try:
        create_users(deps, [username])
        with deps.sessions.begin() as db:
            user = db.scalar(select(User).where(User.username == username))
            assert user is not None
            db.add(Device(id="d" * 32, user_id=user.id, status=DeviceStatus.ACTIVE,
                          public_jwk={}, key_thumbprint="t" * 43,
                          push_address="http://127.0.0.1:9/phones/phone-bench",
                          totp_seed_encrypted="x", bound_at=deps.clock.now()))  # fmt: skip
    finally:
        deps.engine.dispose()
    return username


def login_profile(app: Any, env: dict[str, str], logins: int, top: int) -> None:
    import idp.accounts.service as service

    username = bound_user(env)
    gc.freeze()
    verify = service.verify_password
    hashing = [0.0]

    def timed_verify(password_hash: str | None, password: str) -> bool:
        started = time.thread_time()
        try:
            return verify(password_hash, password)
        finally:
            hashing[0] += time.thread_time() - started

    service.verify_password = timed_verify  # type: ignore[assignment]
    for _ in range(20):
        one_login(app, username, [0.0, 0.0, 0.0])
    clock = [0.0, 0.0, 0.0]
    hashing[0] = 0.0
    for _ in range(logins):
        one_login(app, username, clock)
    clock[2] -= hashing[0]
    argon2_ms = hashing[0] / logins * 1000
    rest_ms = sum(clock) / logins * 1000
    print(f"\n## login: {rest_ms + argon2_ms:.2f} ms of CPU per login, of which argon2id"
          f" {argon2_ms:.2f} ms; the rest {rest_ms:.2f} ms"
          f" ({rest_ms / (rest_ms + argon2_ms):.0%})\n")  # fmt: skip
    print("| step | ms |")
    print("|---|---|")
    for label, seconds in zip(LOGIN_STEPS, clock, strict=True):
        print(f"| {label} | {seconds / logins * 1000:.2f} |")
    service.verify_password = verify
    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    for _ in range(logins):
        one_login(app, username, [0.0, 0.0, 0.0])
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    print("\n```")
    print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))
    print("```")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="per path")
    parser.add_argument("--core", type=int, default=0, help="run on this core only")
    parser.add_argument("--top", type=int, default=20, help="functions listed per path")
    parser.add_argument("--only", help="one path: token, introspection, jwks, discovery, login")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="threads calling at once: the process's CPU per request, no"
                             " profile (a token's group commit is shared under load)")  # fmt: skip
    parser.add_argument("--database-url",
                        default="postgresql+psycopg://postgres@127.0.0.1:5432/idp_bench_profile",
                        help="dropped and recreated; its name must contain 'bench'")  # fmt: skip
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/1")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.core})
    _world, env = seeded_world(args.database_url, args.redis_url, ISSUER, NAMESPACE)
    os.environ.update(env)

    from idp import create_app

    app = create_app(background=False)
    gc.freeze()  # as idp.wsgi does: full collections do not walk what start-up built
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.only == "login":
        login_profile(app, env, args.requests, args.top)
        return 0
    for name, make in workloads(app).items():
        if args.only and name != args.only:
            continue
        for _ in range(200):
            call(app, make)
        if args.concurrency > 1:
            concurrent(app, make, name, args.requests, args.concurrency)
            continue
        started, wall = time.thread_time(), time.perf_counter()
        for _ in range(args.requests):
            status = call(app, make)
        cpu_us = (time.thread_time() - started) / args.requests * 1e6
        wall_us = (time.perf_counter() - wall) / args.requests * 1e6
        # The CPU clock, not the wall: waiting for PostgreSQL to commit costs no CPU here.
        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()
        for _ in range(args.requests):
            call(app, make)
        profiler.disable()
        stats = pstats.Stats(profiler)
        print(f"\n## {name}: {cpu_us:.0f} µs of CPU per request, {wall_us:.0f} µs of wall time"
              f" (status {status})\n")  # fmt: skip
        print("| stage | share | µs |")
        print("|---|---|---|")
        for label, share in stage_shares(stats, args.requests):
            print(f"| {label} | {share:.0%} | {share * cpu_us:.0f} |")
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs()  # no local paths in reports
        stats.sort_stats("tottime").print_stats(args.top)
        print("\n```")
        print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))
        print("```")
    return 0


if __name__ == "__main__":
    sys.exit(main())
