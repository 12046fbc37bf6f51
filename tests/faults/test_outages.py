"""Faults from outside, against two production instances sharing a PostgreSQL cluster and a
Redis server of the suite's own: malformed input on every route, Redis stopped while people
sign in, Redis flushed in a tight loop while tokens are revoked, PostgreSQL restarted under
load, and one instance killed under load. Each scenario asserts what every client saw and
that nothing was lost; the figures are written to the log folder and printed."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import requests

from idp import create_app
from idp.settings import Settings
from tests.faults.conftest import Deployment
from tests.malformed import API
from tests.malformed import probes
from tests.nexus_server import Nexus
from tests.nexus_server import match_number
from tests.push_stack import Login
from tests.push_stack import Stack

SERVICE = ("demo-service", "demo-service-secret")
USERS = ("somchai", "malee", "prasert")
FIGURES: dict[str, object] = {}


def record(deployment: Deployment, name: str, value: object) -> None:
    FIGURES[name] = value
    (deployment.logs / "figures.json").write_text(json.dumps(FIGURES, indent=2))
    print(f"figure {name}: {value}")


def stack(deployment: Deployment, instance: str) -> Stack:
    return Stack(idp=instance, nexus=Nexus(deployment.nexus, deployment.env["NEXUS_STATE_FILE"]),
                 deps=None)  # type: ignore[arg-type]  # fmt: skip


def push_login(deployment: Deployment, instance: str, username: str) -> dict:
    here = stack(deployment, instance)
    phone = f"phone-{username}"
    # A push an earlier login withdrew (it went on by code) may still sit in the inbox.
    earlier = {challenge["id"] for challenge in here.nexus.inbox(phone)}
    login = Login.start(here, username)
    assert 'id="match-number"' in login.page.text, login.page.text[:300]
    deadline = time.monotonic() + 10
    while not (new := [c for c in here.nexus.inbox(phone) if c["id"] not in earlier]):
        assert time.monotonic() < deadline, f"no new push reached {phone}"
        time.sleep(0.05)
    answered = here.nexus.approve(phone, new[-1]["id"], match_number(login.page.text))
    assert answered.status_code == 200, answered.text
    login.reload()
    return login.tokens()


def totp_login(deployment: Deployment, instance: str, username: str) -> dict:
    login = Login.start(stack(deployment, instance), username)
    login.use_code(login.stack.nexus.totp(f"phone-{username}"))
    assert login.returned, login.page.text[:300]
    return login.tokens()


def service_token(instance: str, scope: str | None = None) -> str:
    data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    answer = requests.post(f"{instance}/token", auth=SERVICE, data=data, timeout=10)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def active_at(instance: str, token: str) -> bool:
    answer = requests.post(f"{instance}/introspect", data={"token": token}, auth=SERVICE,
                           timeout=10)  # fmt: skip
    assert answer.status_code == 200, answer.text
    return bool(answer.json()["active"])


def logins_per_second(deployment: Deployment, seconds: float) -> float:
    """Push logins by every demo user at once, alternating instances, for ``seconds``."""
    done = Counter[str]()
    deadline = time.monotonic() + seconds

    def sign_in_repeatedly(index: int, username: str) -> None:
        while time.monotonic() < deadline:
            instance = deployment.instances[(done[username] + index) % 2]
            push_login(deployment, instance, username)
            done[username] += 1

    started = time.monotonic()
    with ThreadPoolExecutor(len(USERS)) as pool:
        for future in [pool.submit(sign_in_repeatedly, i, u) for i, u in enumerate(USERS)]:
            future.result()
    return round(sum(done.values()) / (time.monotonic() - started), 2)


def under_load(deployment: Deployment, during: Callable[[], None]) -> Counter[str]:
    """Token, introspection and userinfo-like requests at both instances while ``during``
    runs; what each answer was."""
    outcomes = Counter[str]()
    stop = threading.Event()
    token = service_token(deployment.a.url)

    def client(instance: str) -> None:
        while not stop.is_set():
            for send in (
                lambda: requests.post(f"{instance}/token", auth=SERVICE, timeout=10,
                                      data={"grant_type": "client_credentials"}),
                lambda: requests.post(f"{instance}/introspect", data={"token": token},
                                      auth=SERVICE, timeout=10),
            ):  # fmt: skip
                try:
                    answer = send()
                except requests.RequestException as exc:
                    outcomes[f"connection error at {instance[-5:]}: {type(exc).__name__}"] += 1
                    continue
                retry = answer.headers.get("Retry-After")
                outcomes[f"{answer.status_code}{' retry-after' if retry else ''}"] += 1

    threads = [threading.Thread(target=client, args=(url,)) for url in deployment.instances * 2]
    for thread in threads:
        thread.start()
    try:
        during()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return outcomes


# --- the scenarios, in an order that leaves the deployment usable for the next ------------


def test_no_malformed_request_from_outside_gets_a_500(deployment):
    with mock.patch.dict(os.environ, deployment.env):
        app = create_app(Settings(), background=False)  # for its URL map only
    document = requests.get(f"{deployment.a.url}{API}/openapi.json", timeout=10).json()
    sweep = probes(app, document, bearer=service_token(deployment.a.url, "helpdesk"))
    failures, statuses = [], Counter[int]()
    for index, probe in enumerate(sweep):
        instance = deployment.instances[index % 2]
        headers = {**probe.headers, **({"Content-Type": probe.content_type}
                                       if probe.content_type else {})}  # fmt: skip
        answer = requests.request(probe.method, instance + probe.target, data=probe.body or None,
                                  headers=headers, allow_redirects=False, timeout=10)  # fmt: skip
        statuses[answer.status_code] += 1
        refused_ok = 400 <= answer.status_code < 500
        if answer.status_code >= 500 or (probe.refused and not refused_ok):
            failures.append(f"{probe.method} {probe.target[:70]} [{probe.name}] -> "
                            f"{answer.status_code}")  # fmt: skip
    record(deployment, "malformed_requests", {"sent": len(sweep), "5xx": len(failures)})
    assert not failures, "\n".join(failures[:40])


def test_sign_in_with_push_and_totp_while_redis_is_stopped(deployment):
    with_redis = logins_per_second(deployment, 5)
    deployment.redis.stop()
    try:
        tokens = totp_login(deployment, deployment.b.url, "prasert")
        assert active_at(deployment.a.url, tokens["access_token"])
        without_redis = logins_per_second(deployment, 5)
        pushed = push_login(deployment, deployment.a.url, "somchai")
        # Revocation and introspection answer from the database meanwhile.
        revoked = requests.post(f"{deployment.b.url}/revoke", auth=SERVICE, timeout=10,
                                data={"token": service_token(deployment.b.url)})  # fmt: skip
        assert revoked.status_code == 200
        assert active_at(deployment.b.url, pushed["access_token"])
    finally:
        deployment.redis.start()
    # Back with an empty Redis: a login started now works, and so does one at the other.
    push_login(deployment, deployment.b.url, "malee")
    record(deployment, "push_logins_per_second", {"with_redis": with_redis,
                                                  "redis_stopped": without_redis})  # fmt: skip
    assert without_redis > 0


def test_no_revoked_token_reads_active_while_redis_is_flushed_in_a_tight_loop(deployment):
    tokens = [service_token(deployment.instances[i % 2]) for i in range(200)]
    stop = threading.Event()
    flushes = 0

    def flush_repeatedly() -> None:
        nonlocal flushes
        client = deployment.redis.client()
        while not stop.is_set():
            client.flushdb()
            flushes += 1
            time.sleep(0.005)

    violations: list[str] = []
    checks = 0

    def revoke_and_check(token: str) -> None:
        nonlocal checks
        a, b = random.sample(deployment.instances, 2)
        answer = requests.post(f"{a}/revoke", data={"token": token}, auth=SERVICE, timeout=10)
        assert answer.status_code == 200
        for instance in (a, b, a, b):
            checks += 1
            if active_at(instance, token):
                violations.append(f"{token[-8:]} active at {instance[-5:]} after /revoke")

    flusher = threading.Thread(target=flush_repeatedly)
    flusher.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(revoke_and_check, tokens))
    finally:
        stop.set()
        flusher.join()
    record(deployment, "revocations_while_flushing", {
        "revocations": len(tokens), "introspections": checks, "flushes": flushes,
        "active_after_revoke": len(violations)})  # fmt: skip
    assert flushes > 50
    assert not violations, violations[:10]


def test_postgresql_restart_under_load_gets_no_500(deployment):
    def restart() -> None:
        time.sleep(1)
        deployment.postgres.stop()
        time.sleep(0.6)  # refusing connections
        deployment.postgres.start()
        time.sleep(2)

    outcomes = under_load(deployment, restart)
    record(deployment, "postgresql_restart", dict(outcomes))
    assert not [o for o in outcomes if o.startswith("5") and o != "503 retry-after"], outcomes
    assert not [o for o in outcomes if o.startswith("connection error")], outcomes
    # And after it, everything answers again.
    assert active_at(deployment.a.url, service_token(deployment.b.url))


def test_kill_minus_9_of_one_instance_leaves_the_other_serving(deployment):
    seen_at_b = Counter[str]()

    def kill_a() -> None:
        time.sleep(1)
        # The instance and every process it started (the server's workers), at once.
        for pid in [deployment.a.process.pid, *_descendants(deployment.a.process.pid)]:
            os.kill(pid, signal.SIGKILL)
        time.sleep(2)

    outcomes = under_load(deployment, kill_a)
    for outcome, count in outcomes.items():
        if "connection error" not in outcome:
            seen_at_b[outcome] += count
    record(deployment, "kill_minus_9", dict(outcomes))
    # Only the killed instance's clients saw connection errors; every answer was a 200.
    assert set(seen_at_b) == {"200"}, outcomes
    # People still sign in at the survivor (by code: the phones answer pushes at A's URL).
    tokens = totp_login(deployment, deployment.b.url, "malee")
    assert active_at(deployment.b.url, tokens["access_token"])


def _descendants(parent: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, pending = [], [parent]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found
