"""The waiters workload: thousands of login pages waiting for their phone on one instance.

    python bench/run.py --waiters 2000

Builds its own world (the database ``idp_bench_waiters``, dropped and recreated; Redis keys
under ``bench-waiters:``), starts one IdP instance as production runs it (``idp serve``,
granian, one WSGI worker, with ``IDP_WAIT_URL`` so that it also starts the waiter), pinned
with the waiter to one core, wrk and this client to the other. Then:

1. token throughput (``client_credentials``) with no wait held;
2. ``--waiters`` challenges written to Redis as a push writes them, each with the wait ticket
   its page gets, and as many waits opened at once on the waiter by an asyncio client (one
   connection each, as many browsers);
3. token throughput again while all of them are held, and meanwhile every challenge answered
   through ``ChallengeStore.record_outcome`` (the path a phone's answer takes: write once,
   publish) at ``--answer-rate`` per second; the delay from each answer to its page learning
   it is measured in this process (one monotonic clock for both ends).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from run import TOKEN_BODY
from run import Scenario
from run import basic_auth
from run import ensure_wrk
from run import load_average
from run import run_wrk
from run import seeded_world
from suspension import PYTHON
from suspension import free_port
from suspension import start_server
from suspension import stop_server

WAITERS_NAMESPACE = "bench-waiters:"
HOLD_SECONDS = 60  # the longest allowed: no wait ends by itself during the run


@dataclass
class Wait:
    ticket: str
    challenge_id: str
    answered: float = 0.0
    learned: float = 0.0
    state: str = ""


def make_challenges(env: dict[str, str], count: int) -> tuple[Any, list[Wait]]:
    """``count`` pending pushes in Redis, as ``start_push`` saves them, with their tickets."""
    from idp.mfa.challenges import ChallengeStore
    from idp.mfa.challenges import new_challenge
    from idp.store.ephemeral import Keys
    from idp.store.ephemeral import RedisStore
    from idp.web import wait_ticket

    store = ChallengeStore(RedisStore(env["IDP_REDIS_URL"]), Keys(env["IDP_REDIS_NAMESPACE"]))
    now = datetime.now(UTC)
    waits = []
    for n in range(count):
        challenge = new_challenge(
            user_id=f"bench-user-{n}", device_id=f"bench-phone-{n}", login_tx=f"bench-tx-{n}",
            client_id="demo-public", client_name="bench", context={},
            authorization_details=None, now=now, ttl=600,
        )  # fmt: skip
        store.save(challenge, ttl=600)
        ticket = wait_ticket.issue(
            env["IDP_SECRET_KEY"],
            wait_ticket.Ticket(challenge.id, challenge.login_tx, challenge.user_id,
                               challenge.expires_at),
        )  # fmt: skip
        waits.append(Wait(ticket, challenge.id))
    return store, waits


async def open_wait(port: int, origin: str, wait: Wait, connecting: asyncio.Semaphore) -> None:
    """One page's wait: a connection of its own, held until the waiter answers."""
    async with connecting:  # do not flood the listen backlog with SYNs at once
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (
        f"GET /wait?ticket={wait.ticket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Origin: {origin}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    writer.write(request.encode())
    await writer.drain()
    raw = await reader.read()
    wait.learned = time.monotonic()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    wait.state = json.loads(body).get("state", "") if head.startswith(b"HTTP/1.1 200") else "error"


def waiting_count(waiter_url: str) -> int:
    return int(requests.get(f"{waiter_url}/healthz", timeout=5).json()["waiting"])


def answer_all(store: Any, waits: list[Wait], rate: float) -> None:
    from idp.mfa.challenges import Outcome

    started = time.monotonic()
    for n, wait in enumerate(waits):
        pause = started + n / rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        wait.answered = time.monotonic()
        assert store.record_outcome(wait.challenge_id, Outcome.APPROVED, ttl=600)


def process_of(port: int) -> int | None:
    """The pid of the waiter's granian worker (the process holding the connections)."""
    found = None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"idp.web.waiter:create_app" in command and str(port).encode() in command:
            found = max(found or 0, int(pid))  # granian's worker comes after its main process
    return found


def memory_mib(pid: int | None) -> float:
    if pid is None:
        return 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def open_all(
    args: argparse.Namespace, env: dict[str, str], issuer: str, waiter_url: str
) -> tuple[Any, list[Wait], list[asyncio.Task[None]], float]:
    """``--waiters`` pending challenges and a held wait on each; the seconds it took."""
    port = int(waiter_url.rpartition(":")[2])
    store, waits = make_challenges(env, args.waiters)
    connecting = asyncio.Semaphore(200)
    started = time.monotonic()
    tasks = [asyncio.create_task(open_wait(port, issuer, w, connecting)) for w in waits]
    while (held := await asyncio.to_thread(waiting_count, waiter_url)) < args.waiters:
        if time.monotonic() - started > 30:
            raise RuntimeError(f"only {held} of {args.waiters} waits held after 30 s")
        await asyncio.sleep(0.2)
    return store, waits, tasks, time.monotonic() - started


async def answer_and_learn(
    args: argparse.Namespace, store: Any, waits: list[Wait], tasks: list[asyncio.Task[None]]
) -> dict[str, Any]:
    answering = threading.Thread(target=answer_all, args=(store, waits, args.answer_rate))
    answering.start()
    await asyncio.gather(*tasks)
    answering.join()
    delays = [(w.learned - w.answered) * 1000 for w in waits if w.state == "approved"]
    return {
        "approved": len(delays),
        "other_answers": sorted({w.state for w in waits if w.state != "approved"}),
        "p50_ms": percentile(delays, 50) if delays else None,
        "p99_ms": percentile(delays, 99) if delays else None,
        "max_ms": max(delays) if delays else None,
    }


async def hold_and_answer(
    args: argparse.Namespace, env: dict[str, str], issuer: str, waiter_url: str
) -> dict[str, Any]:
    """Two waves of ``--waiters`` waits: the first held through a token run, then answered
    with nothing else running; the second answered while tokens are being issued."""
    worker = process_of(int(waiter_url.rpartition(":")[2]))
    token = token_scenario()
    store, waits, tasks, opened = await open_all(args, env, issuer, waiter_url)
    rss_held = memory_mib(worker)
    cpu_before = cpu_seconds(worker)
    await asyncio.sleep(5)  # idle: what holding costs
    idle_cpu = (cpu_seconds(worker) - cpu_before) / 5
    token_held = await asyncio.to_thread(run_wrk, issuer, token, args, args.duration)
    quiet = await answer_and_learn(args, store, waits, tasks)
    store, waits, tasks, _ = await open_all(args, env, issuer, waiter_url)
    load = asyncio.create_task(asyncio.to_thread(run_wrk, issuer, token, args, args.duration))
    await asyncio.sleep(min(2, args.duration / 4))
    # Where the CPU of answering goes: the waiter (server core) and this client (wrk's core).
    waiter_before, client_before, wall = cpu_seconds(worker), time.process_time(), time.monotonic()
    loaded = await answer_and_learn(args, store, waits, tasks)
    wall = time.monotonic() - wall
    loaded["waiter_cpu"] = (cpu_seconds(worker) - waiter_before) / wall
    loaded["client_cpu"] = (time.process_time() - client_before) / wall
    token_during = await load
    return {
        "waits": args.waiters,
        "opened_s": opened,
        "waiter_rss_mib": rss_held,
        "waiter_idle_cpu": idle_cpu,
        "quiet": quiet,
        "loaded": loaded,
        "approved": min(quiet["approved"], loaded["approved"]),
        "token_held": token_held,
        "token_during": token_during,
    }


def token_scenario() -> Scenario:
    form = (("Content-Type", "application/x-www-form-urlencoded"), ("Authorization", basic_auth()))
    return Scenario("token", "/token", "POST", TOKEN_BODY, form)


def run_waiters(args: argparse.Namespace) -> int:
    ensure_wrk()
    folder = Path(tempfile.mkdtemp(prefix="idp-bench-waiters-"))
    issuer = f"http://127.0.0.1:{free_port()}"
    waiter_url = f"http://127.0.0.1:{free_port()}"
    load_before = load_average()
    _world, env = seeded_world(args.waiters_database_url, args.redis_url, issuer,
                               WAITERS_NAMESPACE)  # fmt: skip
    env.update(
        IDP_WAIT_URL=waiter_url, IDP_WAIT_BIND=waiter_url[7:], IDP_WAIT_HOLD=str(HOLD_SECONDS),
        IDP_WAIT_MAX_PER_IP=str(args.waiters + 100),
        IDP_WAIT_MAX_CONNECTIONS=str(args.waiters + 100),
    )  # fmt: skip
    pin = ["taskset", "-c", str(args.server_core)]
    # This client shares wrk's core: the server's core stays the IdP's and the waiter's.
    os.sched_setaffinity(0, {args.load_core})
    server = start_server(
        "IdP", [*pin, PYTHON, "-m", "idp.cli", "serve", "--bind", issuer[7:], "--workers", "1",
                "--threads", str(args.idp_threads)],
        env, issuer, folder / "idp.log", "/readyz",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not requests.get(f"{waiter_url}/healthz", timeout=5).json()["subscribed"]:
            if time.monotonic() > deadline:
                raise RuntimeError("the waiter never subscribed")
            time.sleep(0.1)
        token = token_scenario()
        run_wrk(issuer, token, args, args.warmup)
        token_alone = run_wrk(issuer, token, args, args.duration)
        result = asyncio.run(hold_and_answer(args, env, issuer, waiter_url))
    finally:
        stop_server(server)
    result.update(token_alone=token_alone, load_before=load_before, load_after=load_average())
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_waiters(result, args)
    ok = (
        result["approved"] == args.waiters
        and token_alone["errors"] == 0
        and result["token_held"]["errors"] == 0
        and result["token_during"]["errors"] == 0
    )
    return 0 if ok else 1


def print_waiters(r: dict[str, Any], args: argparse.Namespace) -> None:
    alone, held, during = r["token_alone"], r["token_held"], r["token_during"]
    print(f"{r['waits']} waits on one instance (IdP and waiter on core {args.server_core}; "
          f"wrk -c{args.connections} and the client on core {args.load_core})")  # fmt: skip
    print(f"load average before {r['load_before']}, after {r['load_after']}")
    print(f"{'what':<46} {'value':>18}")
    rows = [
        ("waits opened and held (s)", f"{r['opened_s']:.1f}"),
        ("waiter memory holding them (MiB RSS)", f"{r['waiter_rss_mib']:.0f}"),
        ("waiter CPU while they idle (cores)", f"{r['waiter_idle_cpu']:.3f}"),
        (
            f"answered at {args.answer_rate:.0f}/s, learned: quiet / loaded",
            f"{r['quiet']['approved']} / {r['loaded']['approved']}",
        ),
        ("answer -> page learns p50 ms: quiet / loaded", _two(r, "p50_ms")),
        ("answer -> page learns p99 ms: quiet / loaded", _two(r, "p99_ms")),
        ("answer -> page learns max ms: quiet / loaded", _two(r, "max_ms")),
        (
            "while answering, CPU of waiter / this client",
            f"{r['loaded']['waiter_cpu']:.2f} / {r['loaded']['client_cpu']:.2f}",
        ),
        ("token req/s: no wait / waits held / answering", _three(alone, held, during, "rps", 0)),
        ("token p50 ms: same three", _three(alone, held, during, "p50_ms", 1)),
        ("token p99 ms: same three", _three(alone, held, during, "p99_ms", 1)),
        ("token errors: same three", _three(alone, held, during, "errors", 0)),
    ]
    for name, value in rows:
        print(f"{name:<46} {value:>18}")
    for wave in ("quiet", "loaded"):
        if r[wave]["other_answers"]:
            print(f"{wave}: waits that did not end approved:", ", ".join(r[wave]["other_answers"]))
    print("quiet: answered with nothing else running; loaded: while wrk asks for tokens")


def _three(a: dict[str, float], b: dict[str, float], c: dict[str, float], key: str,
           digits: int) -> str:  # fmt: skip
    return " / ".join(f"{x[key]:.{digits}f}" for x in (a, b, c))


def _two(r: dict[str, Any], key: str) -> str:
    return f"{r['quiet'][key]:.1f} / {r['loaded'][key]:.1f}"
