"""The waiter: login pages wait here for the phone's answer, without holding an IdP worker.

One small asyncio process (granian's ASGI interface, one worker) beside the IdP. A page's
script asks ``GET /wait?ticket=...`` (a wait ticket from the confirmation page, see
``wait_ticket``) and gets the same answer as the IdP's long poll: ``{"state": ...}``, at once
when the challenge is already over, else when it ends or after ``IDP_WAIT_HOLD`` seconds.

Whoever writes a challenge's outcome publishes its id on one Redis channel
(``ChallengeStore.record_outcome``); the waiter holds one subscription and wakes only the
waits of that id, which then read the outcome from Redis with the rule the IdP uses
(``outcome_of``). Expiry it computes from the challenge's own expiry. Without Redis (down, or
the subscription lost) every wait ends with ``{"state": "pending", "fallback": true}``: the
page asks the IdP's long poll instead, which also serves during an outage.

What an attacker gets here: a wrong, expired, altered ticket, one whose challenge belongs to
another login or user, or one of a login that has finished, all get the same 403. Waits are
capped per challenge, per client address and in all, so connections cannot exhaust the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from idp.mfa.challenges import ANSWERS_TOPIC
from idp.mfa.challenges import Outcome
from idp.mfa.challenges import outcome_of
from idp.settings import Settings
from idp.store.ephemeral import Keys
from idp.web import wait_ticket

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# A page has one wait at a time; two allow a reload to overlap the wait it replaces.
MAX_PER_CHALLENGE = 2
_REDIS_CONNECTIONS = 32
_FALLBACK = {"state": Outcome.PENDING.value, "fallback": True}
_BUSY = {"state": Outcome.PENDING.value, "retry_after_ms": 1000}
_REFUSED = {"error": "invalid_ticket"}
_GONE = 499  # the page went away while it waited


class Waiter:
    """The ASGI application (``create_app`` builds it from the ``IDP_*`` settings)."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        if not settings.redis_url:
            raise ValueError("the waiter needs IDP_REDIS_URL")
        self._settings = settings
        self._secret = settings.secret_key.get_secret_value()
        self._keys = Keys(settings.redis_namespace)
        self._channel = self._keys.channel(ANSWERS_TOPIC)
        parts = urlsplit(settings.issuer)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._clock = clock
        self._redis: aioredis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = False
        self._waits: dict[str, set[asyncio.Event]] = {}
        self._per_ip: Counter[str] = Counter()
        self._per_challenge: Counter[str] = Counter()
        self._total = 0

    # --- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _start(self) -> None:
        if self._redis is None:
            # A bounded pool that queues: thousands of waits woken at once (a reconnection)
            # share a few connections instead of opening one each, or failing past a limit.
            pool = aioredis.BlockingConnectionPool.from_url(
                self._settings.redis_url or "",
                max_connections=_REDIS_CONNECTIONS,
                timeout=5.0,
                socket_timeout=2.0,
                socket_connect_timeout=2.0,
            )
            self._redis = aioredis.Redis(connection_pool=pool)
            self._listener = asyncio.create_task(self._listen(self._redis))

    async def _stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
        if self._redis is not None:
            await self._redis.aclose(close_connection_pool=True)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._start()  # a server without lifespan support still gets its subscription
        path, method = scope.get("path", ""), scope.get("method", "")
        if path == "/healthz" and method == "GET":
            health: dict[str, Any] = {"status": "ok", "subscribed": self._subscribed}
            if _from_this_machine(scope):
                # How many are confirming a login right now is no outsider's business.
                health["waiting"] = self._total
            await self._answer(send, 200, health)
        elif path == "/wait" and method == "GET":
            status, body = await self._wait(scope, receive)
            if status != _GONE:  # nobody is left to read an answer
                await self._answer(send, status, body)
        else:
            await self._answer(send, 404, {"error": "not_found"})

    async def _answer(self, send: Send, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
            # Only the issuer's pages may read an answer; no cookie is ever sent or wanted.
            (b"access-control-allow-origin", self._origin.encode()),
            (b"vary", b"Origin"),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})

    # --- one wait ------------------------------------------------------------------------

    async def _wait(self, scope: Scope, receive: Receive) -> tuple[int, dict[str, Any]]:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        origin = headers.get("origin")
        if origin is not None and origin != self._origin:
            return 403, {"error": "origin_not_allowed"}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        ticket = wait_ticket.read(self._secret, (query.get("ticket") or [""])[0], now=self._clock())
        if ticket is None:
            return 403, _REFUSED
        ip = self._client_ip(scope)
        if (
            self._total >= self._settings.wait_max_connections
            or self._per_ip[ip] >= self._settings.wait_max_per_ip
            or self._per_challenge[ticket.challenge_id] >= MAX_PER_CHALLENGE
        ):
            return 429, _BUSY
        event = asyncio.Event()
        self._hold(ticket.challenge_id, ip, event)
        try:
            return await self._until_answered(ticket, event, receive)
        finally:
            self._release(ticket.challenge_id, ip, event)

    async def _until_answered(
        self, ticket: wait_ticket.Ticket, event: asyncio.Event, receive: Receive
    ) -> tuple[int, dict[str, Any]]:
        deadline = self._clock() + self._settings.wait_hold
        # The wait is registered before the first read: a publication in between still wakes it.
        disconnected = asyncio.ensure_future(_disconnect(receive))
        try:
            while True:
                if not self._subscribed:
                    return 200, _FALLBACK
                # Cleared before the read: a publication that lands while it runs is kept.
                event.clear()
                found = await self._read(ticket)
                if found is None:
                    return 200, _FALLBACK
                if isinstance(found, int):
                    return found, _REFUSED
                state, expires_at = found
                now = self._clock()
                if state != Outcome.PENDING or now >= deadline:
                    return 200, {"state": state.value}
                woken = asyncio.ensure_future(event.wait())
                done, _ = await asyncio.wait(
                    {woken, disconnected},
                    timeout=max(min(deadline, expires_at) - now, 0.0),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                woken.cancel()
                if disconnected in done:
                    return _GONE, {}
        finally:
            disconnected.cancel()

    async def _read(self, ticket: wait_ticket.Ticket) -> tuple[Outcome, float] | int | None:
        """The challenge's outcome and expiry; 403 for a ticket that may learn nothing; None
        when Redis cannot tell (down, or the challenge is not there: it may have been written
        to the IdP's database during an outage, and the IdP's long poll knows)."""
        if self._redis is None:
            return None
        try:
            raw, answer, finished = await self._redis.mget(
                [
                    self._keys.push_challenge(ticket.challenge_id),
                    self._keys.push_answer(ticket.challenge_id),
                    self._keys.login_finished(ticket.login_tx),
                ]
            )
        except (RedisError, OSError):
            return None
        if finished is not None:
            return 403  # the login is over: a replayed ticket learns nothing more
        if raw is None:
            return None
        try:
            challenge = json.loads(raw)
            expires_at = float(challenge["expires_at"])
            owner = (challenge["login_tx"], challenge["user_id"])
        except (ValueError, KeyError, TypeError):
            return None
        if owner != (ticket.login_tx, ticket.user_id):
            return 403
        return outcome_of(_as_bytes(answer), expires_at=expires_at, now=self._clock()), expires_at

    def _client_ip(self, scope: Scope) -> str:
        hops = self._settings.trusted_proxies
        # Every line, in order, as a WSGI server joins them for the IdP's ProxyFix: a proxy
        # may add a line of its own instead of extending the last one.
        lines = [
            v.decode("latin-1") for k, v in scope["headers"] if k.lower() == b"x-forwarded-for"
        ]
        forwarded = [h.strip() for h in ",".join(lines).split(",") if h.strip()]
        if hops and len(forwarded) >= hops:
            return forwarded[-hops]  # as the IdP reads it (ProxyFix with x_for=hops)
        client = scope.get("client")
        return str(client[0]) if client else ""

    def _hold(self, challenge_id: str, ip: str, event: asyncio.Event) -> None:
        self._total += 1
        self._per_ip[ip] += 1
        self._per_challenge[challenge_id] += 1
        self._waits.setdefault(challenge_id, set()).add(event)

    def _release(self, challenge_id: str, ip: str, event: asyncio.Event) -> None:
        self._total -= 1
        for counter, key in ((self._per_ip, ip), (self._per_challenge, challenge_id)):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]
        events = self._waits.get(challenge_id)
        if events is not None:
            events.discard(event)
            if not events:
                del self._waits[challenge_id]

    # --- the subscription ----------------------------------------------------------------

    def _wake_all(self) -> None:
        for events in self._waits.values():
            for event in events:
                event.set()

    async def _listen(self, client: aioredis.Redis) -> None:
        delay = 0.25
        while True:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self._subscribed = True
                delay = 0.25
                # Publications missed while unsubscribed: every wait reads its outcome again.
                self._wake_all()
                while True:
                    message = await pubsub.get_message(timeout=30.0)
                    if message is None:
                        await pubsub.ping()  # a silent channel or a dead connection?
                        continue
                    if message.get("type") == "message":
                        for event in self._waits.get(message["data"].decode(), ()):
                            event.set()
            except (RedisError, OSError, UnicodeDecodeError):
                if self._subscribed:
                    log.warning("idp.waiter.subscription_lost")
                self._subscribed = False
                self._wake_all()  # their pages ask the IdP meanwhile
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]


def _from_this_machine(scope: Scope) -> bool:
    """A request from loopback that no proxy forwarded: monitoring, not the public."""
    client = scope.get("client")
    if not client or str(client[0]) not in ("127.0.0.1", "::1"):
        return False
    forwarded = (b"x-forwarded-for", b"forwarded", b"x-real-ip")
    return not any(name.lower() in forwarded for name, _ in scope["headers"])


def _as_bytes(value: object) -> bytes | None:
    return value if isinstance(value, bytes) else None


async def _disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def create_app() -> Waiter:
    """The waiter from the ``IDP_*`` settings (``granian --factory``)."""
    settings = Settings()
    logging.basicConfig(level=settings.log_level)
    return Waiter(settings)
