"""The waiter: login pages learn the phone's answer from a process of its own, over real HTTP,
with real Redis, the IdP and the mock Nexus serving on loopback ports and the waiter started
as ``idp serve`` starts it. The attacks first: a wait ticket that is not the page's own learns
nothing."""

from __future__ import annotations

import html
import http.client
import re
import time
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import requests

from idp.deps import Deps
from idp.deps import build_deps
from idp.settings import Settings
from idp.store.ephemeral import RedisStore
from idp.web import wait_ticket
from tests.faults.infrastructure import CannotStartError
from tests.faults.infrastructure import throwaway_redis
from tests.nexus_server import confirm_state
from tests.nexus_server import match_number
from tests.push_stack import Login
from tests.push_stack import Stack
from tests.push_stack import push_stack
from tests.servers import RunningIdp
from tests.servers import free_port
from tests.servers import running_waiter
from tests.servers import waiter_env


@dataclass
class Running:
    stack: Stack
    waiter: RunningIdp
    secret: str

    def start(self, username: str) -> tuple[Login, str]:
        """A login of ``username`` at the confirmation page, and its waiter URL."""
        login = Login.start(self.stack, username)
        assert confirm_state(login.page.text) == "pending"
        return login, waiter_url_of(login.page.text)

    def ticket_for(self, challenge_id: str, login_tx: str, user_id: str, **kw: Any) -> str:
        """A ticket signed with the IdP's own key: what only a bug or a leaked key could make."""
        expires_at = kw.get("expires_at", time.time() + 60)
        return wait_ticket.issue(
            kw.get("secret", self.secret),
            wait_ticket.Ticket(challenge_id, login_tx, user_id, expires_at),
        )

    def wait(self, ticket: str, **headers: str) -> requests.Response:
        return requests.get(
            f"{self.waiter.url}/wait", params={"ticket": ticket}, headers=headers, timeout=40
        )


@contextmanager
def with_waiter(settings: Settings, deps: Deps, folder: Path, **env: str) -> Iterator[Running]:
    port = free_port()
    wait_url = f"http://127.0.0.1:{port}"
    with push_stack(settings, deps, folder, users=("somchai", "malee"), wait_url=wait_url) as stack:
        environment = waiter_env(settings, stack.idp, IDP_WAIT_HOLD="3", **env)
        with running_waiter(environment, port, log_dir=folder) as waiter:
            yield Running(stack, waiter, settings.secret_key.get_secret_value())


@pytest.fixture
def running(settings, deps, tmp_path) -> Iterator[Running]:
    with with_waiter(settings, deps, tmp_path) as value:
        yield value


def waiter_url_of(page: str) -> str:
    found = re.search(r'data-waiter-url="([^"]+)"', page)
    assert found, "the page does not wait at the waiter"
    return html.unescape(found.group(1))


def ticket_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["ticket"][0]


def challenge_of(running: Running, login: Login) -> tuple[str, str, str]:
    """(challenge id, login transaction, user id) of the login's pending push."""
    ticket = wait_ticket.read(running.secret, ticket_of(waiter_url_of(login.page.text)),
                              now=time.time())  # fmt: skip
    assert ticket is not None
    return ticket.challenge_id, ticket.login_tx, ticket.user_id


def phone_answers_while_waiting(
    running: Running, url: str, answer: Any, **headers: str
) -> tuple[requests.Response, float]:
    """Start the page's wait, let the phone answer, return the wait's answer and its delay
    after the phone's answer was taken."""
    with ThreadPoolExecutor(1) as pool:
        waiting: Future[requests.Response] = pool.submit(
            requests.get, url, headers=headers, timeout=40
        )
        time.sleep(0.3)
        assert not waiting.done(), waiting.result().text
        answer()
        answered = time.monotonic()
        response = waiting.result()
        return response, time.monotonic() - answered


# --- attacks: a ticket that is not the page's own learns nothing ---------------------------


def test_a_forged_or_altered_ticket_is_refused(running):
    login, url = running.start("somchai")
    other, _ = running.start("malee")
    challenge, tx, user = challenge_of(running, login)
    own = ticket_of(url)
    payload, _, signature = own.partition(".")
    mine = wait_ticket.read(running.secret, ticket_of(waiter_url_of(other.page.text)),
                            now=time.time())  # fmt: skip
    assert mine is not None
    # Somchai's challenge under malee's signature, a flipped signature, another key, junk.
    stolen_payload = ticket_of(waiter_url_of(other.page.text)).partition(".")[0]
    for ticket in (
        f"{payload}.{ticket_of(waiter_url_of(other.page.text)).partition('.')[2]}",
        f"{stolen_payload}.{signature}",
        f"{payload}.{signature[:-2]}AA",
        running.ticket_for(challenge, tx, user, secret="not-the-idp-key-" * 3),
        "",
        "x" * 600,
        "a.b.c",
    ):
        response = running.wait(ticket)
        assert response.status_code == 403, (ticket, response.text)
        assert response.json() == {"error": "invalid_ticket"}


def test_an_expired_ticket_is_refused(running):
    login, _ = running.start("somchai")
    challenge, tx, user = challenge_of(running, login)
    expired = running.ticket_for(challenge, tx, user, expires_at=time.time() - wait_ticket.GRACE)
    assert running.wait(expired).status_code == 403


def test_a_ticket_binding_another_login_or_user_learns_nothing(running):
    """Even signed with the IdP's key (a bug elsewhere), a ticket naming another login's
    challenge is refused: the challenge itself says whose it is."""
    somchai, _ = running.start("somchai")
    malee, _ = running.start("malee")
    challenge, _tx, _user = challenge_of(running, somchai)
    _c, malee_tx, malee_user = challenge_of(running, malee)
    for ticket in (
        running.ticket_for(challenge, malee_tx, malee_user),  # malee's login, his challenge
        running.ticket_for(challenge, malee_tx, _user),
        running.ticket_for(challenge, _tx, malee_user),
    ):
        response = running.wait(ticket)
        assert response.status_code == 403
        assert response.json() == {"error": "invalid_ticket"}


def test_a_ticket_replayed_after_the_login_finished_learns_nothing(running):
    login, url = running.start("somchai")
    number = match_number(login.page.text)
    pushed = running.stack.nexus.wait_for_push("phone-somchai")
    assert running.stack.nexus.approve("phone-somchai", pushed["id"], number).ok
    assert requests.get(url, timeout=10).json() == {"state": "approved"}
    login.reload()
    assert login.returned
    response = requests.get(url, timeout=10)
    assert response.status_code == 403
    assert response.json() == {"error": "invalid_ticket"}


def test_only_the_issuers_pages_may_read_an_answer(running):
    login, url = running.start("somchai")
    refused = requests.get(url, headers={"Origin": "https://evil.example"}, timeout=10)
    assert refused.status_code == 403
    assert "approved" not in refused.text
    assert "pending" not in refused.text
    # The page's own origin is the only one allowed, and no cookie is ever asked for.
    answered = requests.get(url, headers={"Origin": running.stack.idp}, timeout=10)
    assert answered.headers["Access-Control-Allow-Origin"] == running.stack.idp
    assert "Access-Control-Allow-Credentials" not in answered.headers
    connect = re.search(r"connect-src ([^;]+);", login.page.headers["Content-Security-Policy"])
    assert connect
    assert running.waiter.url in connect.group(1).split()


def test_one_ticket_cannot_hold_many_connections(running):
    _login, url = running.start("somchai")
    with ThreadPoolExecutor(4) as pool:
        held = [pool.submit(requests.get, url, timeout=40) for _ in range(2)]
        time.sleep(0.5)
        third = requests.get(url, timeout=10)
        assert third.status_code == 429
        assert third.json() == {"state": "pending", "retry_after_ms": 1000}
        assert all(f.result().json() == {"state": "pending"} for f in held)


def test_one_address_cannot_hold_more_than_its_share(settings, deps, tmp_path):
    with with_waiter(settings, deps, tmp_path, IDP_WAIT_MAX_PER_IP="1") as running:
        _a, first = running.start("somchai")
        _b, second = running.start("malee")
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(requests.get, first, timeout=40)
            time.sleep(0.5)
            assert requests.get(second, timeout=10).status_code == 429
            assert held.result().json() == {"state": "pending"}


def _wait_via_proxies(url: str, forwarded_lines: list[str]) -> tuple[int, str]:
    """A wait as two proxies pass it on, each adding an X-Forwarded-For line of its own (as
    HAProxy's ``option forwardfor`` does); requests cannot send a header twice."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=40)
    try:
        connection.putrequest("GET", f"{parts.path}?{parts.query}")
        for line in forwarded_lines:
            connection.putheader("X-Forwarded-For", line)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_every_forwarded_line_counts_as_the_idp_reads_them(settings, deps, tmp_path):
    """Attack: behind two proxies that each add a line, the waiter read only the last line,
    found too few hops and counted every client as the proxy's own address: one client
    holding its share then made every other page in the country wait with a 429."""
    env = {"IDP_WAIT_MAX_PER_IP": "1", "IDP_TRUSTED_PROXIES": "2"}
    with with_waiter(settings, deps, tmp_path, **env) as running:
        _a, first = running.start("somchai")
        _b, second = running.start("malee")
        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(_wait_via_proxies, first, ["198.51.100.7", "10.0.0.2"])
            time.sleep(0.5)
            status, body = _wait_via_proxies(second, ["203.0.113.50", "10.0.0.2"])
            assert status == 200, body
            assert held.result()[0] == 200


# --- the page learns the answer through the waiter ----------------------------------------


def test_the_page_learns_an_approval_at_once_and_signs_in(running):
    login, url = running.start("somchai")
    number = match_number(login.page.text)
    pushed = running.stack.nexus.wait_for_push("phone-somchai")
    response, delay = phone_answers_while_waiting(
        running, url, lambda: running.stack.nexus.approve("phone-somchai", pushed["id"], number),
        Origin=running.stack.idp,
    )  # fmt: skip
    assert response.status_code == 200
    assert response.json() == {"state": "approved"}
    assert delay < 1.0  # woken by the publication, not at the end of the hold (3 s)
    login.reload()  # what the script does: the IdP completes the login, as without the waiter
    assert login.returned
    assert login.id_token()["amr"] == ["pwd", "swk", "mca", "mfa"]


def test_the_page_learns_a_denial_and_shows_it(running):
    login, url = running.start("malee")
    pushed = running.stack.nexus.wait_for_push("phone-malee")
    response, delay = phone_answers_while_waiting(
        running, url, lambda: running.stack.nexus.deny("phone-malee", pushed["id"])
    )
    assert response.json() == {"state": "denied"}
    assert delay < 1.0
    login.reload()
    assert confirm_state(login.page.text) == "denied"
    # The IdP's own long poll says the same.
    idp_wait = login.go(f"{running.stack.idp}/login/confirm/wait?tx={challenge_of_tx(login)}")
    assert idp_wait.json() == {"state": "denied"}


def challenge_of_tx(login: Login) -> str:
    return parse_qs(urlsplit(login.url).query)["tx"][0]


def test_a_wait_without_an_answer_ends_pending_after_the_hold(running):
    _login, url = running.start("somchai")
    started = time.monotonic()
    assert requests.get(url, timeout=40).json() == {"state": "pending"}
    assert 2.5 < time.monotonic() - started < 6


def test_a_push_sent_again_ends_the_old_wait(running):
    """A new challenge replacing the old one (the TOTP code, or another login of the same
    browser) is an outcome too: the old page's wait ends."""
    login, url = running.start("somchai")
    response, delay = phone_answers_while_waiting(
        running, url, lambda: login.use_code(running.stack.nexus.totp("phone-somchai"))
    )
    assert response.json() == {"state": "expired"}
    assert delay < 1.0


# --- without Redis: the page is told to ask the IdP ----------------------------------------


def test_redis_going_away_ends_waits_with_ask_again(settings, clock, pg_engine, clean_state,
                                                     tmp_path):  # fmt: skip
    try:
        redis_context = throwaway_redis()
        server = redis_context.__enter__()
    except CannotStartError as exc:
        pytest.skip(str(exc))
    try:
        own = settings.model_copy(update={"redis_url": server.url})
        deps = build_deps(own, clock=clock, store=RedisStore(server.url), engine=pg_engine)
        with with_waiter(own, deps, tmp_path) as running:
            _login, url = running.start("somchai")
            with ThreadPoolExecutor(1) as pool:
                waiting = pool.submit(requests.get, url, timeout=40)
                time.sleep(0.3)
                server.stop()
                answer = waiting.result()
            assert answer.status_code == 200
            assert answer.json() == {"state": "pending", "fallback": True}
            # New waits are told at once; the waiter itself lives on.
            started = time.monotonic()
            assert requests.get(url, timeout=10).json() == {"state": "pending", "fallback": True}
            assert time.monotonic() - started < 1.0
            health = requests.get(f"{running.waiter.url}/healthz", timeout=5).json()
            assert health == {"status": "ok", "subscribed": False, "waiting": 0}
            # Redis back (empty: no persistence): the waiter subscribes again by itself.
            server.start()
            deadline = time.monotonic() + 15
            while not requests.get(f"{running.waiter.url}/healthz", timeout=5).json()["subscribed"]:
                assert time.monotonic() < deadline, "the waiter never subscribed again"
                time.sleep(0.1)
    finally:
        redis_context.__exit__(None, None, None)


def test_the_confirmation_page_without_a_waiter_is_as_before(settings, deps, tmp_path):
    with push_stack(settings, deps, tmp_path, users=("somchai",)) as stack:
        login = Login.start(stack, "somchai")
        assert "data-waiter-url" not in login.page.text
        assert "connect-src 'self';" in login.page.headers["Content-Security-Policy"]


def test_the_waiter_ends_a_wait_at_the_challenges_expiry(running):
    """Nobody publishes an expiry: the waiter keeps the time itself."""
    from datetime import UTC
    from datetime import datetime

    from idp.mfa.challenges import new_challenge

    challenge = new_challenge(
        user_id="u-expiring", device_id="d", login_tx="tx-expiring", client_id="demo-public",
        client_name="x", context={}, authorization_details=None, now=datetime.now(UTC), ttl=1,
    )  # fmt: skip
    running.stack.deps.challenges.save(challenge, ttl=60)
    ticket = running.ticket_for(challenge.id, "tx-expiring", "u-expiring")
    started = time.monotonic()
    assert running.wait(ticket).json() == {"state": "expired"}
    assert 0.5 < time.monotonic() - started < 2.5  # at the expiry, not at the end of the hold


def test_healthz_tells_an_outsider_nothing_about_other_logins(running):
    """Attack: anyone reaching the waiter through the public proxy reads /healthz and watches
    how many people are confirming a login right now (and when a watched one starts)."""
    _login, url = running.start("somchai")
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(requests.get, url, timeout=40)
        time.sleep(0.3)
        outsider = requests.get(
            f"{running.waiter.url}/healthz", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=5
        )
        assert outsider.status_code == 200
        assert outsider.json() == {"status": "ok", "subscribed": True}
        # The operator on the machine itself (monitoring, the benchmark) still sees the count.
        local = requests.get(f"{running.waiter.url}/healthz", timeout=5).json()
        assert local["waiting"] == 1
        waiting.result()
