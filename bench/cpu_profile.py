"""Where the CPU of one hot-path request goes, through the real WSGI application.

    python bench/cpu_profile.py [--requests 2000] [--core 0] [--top 25] [--concurrency 8]

Builds the IdP in production mode in this process (``create_app``, no background jobs) on its
own PostgreSQL database ``idp_bench_profile`` (dropped and recreated) and Redis db 1 under
``bench-profile:``, with ``idp demo seed``; then calls the WSGI application directly, without a
server or a socket, for each path: first unprofiled, for the CPU and wall time per request,
then under cProfile on the thread's CPU clock. Prints, per path, the named stages (the
profiler's share of each, scaled to the unprofiled CPU time) and the costliest functions.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from run import TOKEN_BODY
from run import basic_auth
from run import seeded_world

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="per path")
    parser.add_argument("--core", type=int, default=0, help="run on this core only")
    parser.add_argument("--top", type=int, default=20, help="functions listed per path")
    parser.add_argument("--only", help="one path: token, introspection, jwks, discovery")
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
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
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
