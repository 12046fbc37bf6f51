"""The ephemeral store: Redis when configured, an in-process stand-in otherwise.

Only state that may be lost lives here (rate-limit counters, login transactions, caches,
fan-out messages). The database stays the source of truth: Redis runs without persistence.

Keys come only from the builders in ``Keys`` (``idp:<area>:<kind>:<id>``), every write has a
TTL, and single-use items are consumed atomically.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from typing import Protocol
from typing import TypeVar
from typing import cast

log = logging.getLogger(__name__)

T = TypeVar("T")


class EphemeralStoreError(Exception):
    """The ephemeral store could not be reached."""


class EphemeralStore(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def mget(self, keys: list[str]) -> list[bytes | None]: ...

    def set(self, key: str, value: bytes, *, ttl: float, only_if_new: bool = False) -> bool:
        """Store ``value`` for ``ttl`` seconds; with ``only_if_new`` (SET NX) report success."""
        ...

    def set_many(
        self, items: Iterable[tuple[str, bytes, float]], *, guard: tuple[str, bytes] | None = None
    ) -> bool:
        """Store several items at once, atomically; with ``guard`` (key, value), only while
        that key still holds that value (a flush in between refuses the write). Report
        whether they were stored."""
        ...

    def consume(self, key: str) -> bytes | None:
        """Return and delete the value at once (GETDEL)."""
        ...

    def delete(self, *keys: str) -> None: ...

    def incr(self, key: str, *, ttl: float) -> int:
        """Increment a counter; its TTL starts at the first increment (a fixed window)."""
        ...

    def publish(self, channel: str, message: bytes) -> None: ...

    def subscribe(self, channel: str, callback: Callable[[bytes], None]) -> None:
        """Call ``callback`` with every later message on ``channel`` once listening."""
        ...

    def start_listening(self) -> None:
        """Start delivering messages to the subscribed callbacks (a background thread)."""
        ...

    def ping(self) -> None:
        """Raises EphemeralStoreError when the store cannot be reached."""
        ...

    @property
    def is_shared(self) -> bool:
        """True when other processes see the same data (Redis)."""
        ...

    @property
    def has_durable_fallback(self) -> bool:
        """True when the database takes over while Redis is unreachable."""
        ...

    def markers_unseen_before(self) -> datetime | None:
        """While single-use markers set before some moment are out of sight (Redis is
        unreachable and the database has taken over), that moment; otherwise None."""
        ...


class Keys:
    """The only place Redis keys are spelled out."""

    def __init__(self, namespace: str = "") -> None:
        self._prefix = f"{namespace}idp:"

    def web_session(self, session_hash: str) -> str:
        return f"{self._prefix}web:session:{session_hash}"

    def login_finished(self, login_tx: str) -> str:
        return f"{self._prefix}login:finished:{login_tx}"

    def login_ip_failures(self, ip: str) -> str:
        return f"{self._prefix}login:ipfail:{ip}"

    def pending_push(self, user_id: str) -> str:
        return f"{self._prefix}mfa:pending:{user_id}"

    def push_challenge(self, challenge_id: str) -> str:
        return f"{self._prefix}mfa:challenge:{challenge_id}"

    def push_answer(self, challenge_id: str) -> str:
        return f"{self._prefix}mfa:answer:{challenge_id}"

    def dpop_jti(self, jti: str) -> str:
        return f"{self._prefix}mfa:dpop-jti:{jti}"

    def pushed_request(self, handle_hash: str) -> str:
        return f"{self._prefix}oidc:par:{handle_hash}"

    def client_assertion_jti(self, client_id_hash: str, jti_hash: str) -> str:
        return f"{self.client_assertion_jti_prefix}{client_id_hash}:{jti_hash}"

    @property
    def client_assertion_jti_prefix(self) -> str:
        return f"{self._prefix}oidc:assertion-jti:"

    def oauth_dpop_jti(self, thumbprint: str, jti: str) -> str:
        return f"{self._prefix}oauth:dpop-jti:{thumbprint}:{jti}"

    def totp_used(self, device_id: str, counter: int) -> str:
        return f"{self._prefix}mfa:totp-used:{device_id}:{counter}"

    def mfa_rejections(self, ip: str) -> str:
        return f"{self._prefix}mfa:rejections:{ip}"

    def passkey_challenge(self, scope: str) -> str:
        return f"{self._prefix}mfa:passkey-challenge:{scope}"

    def totp_last(self, device_id: str) -> str:
        return f"{self._prefix}mfa:totp-last:{device_id}"

    def push_count(self, user_id: str) -> str:
        return f"{self._prefix}mfa:push-count:{user_id}"

    def ciba_unknown_users(self, client_id: str) -> str:
        return f"{self._prefix}ciba:unknown-users:{client_id}"

    def activation_ip_failures(self, ip: str) -> str:
        return f"{self._prefix}enrol:activation-fail:{ip}"

    def revoked(self, kind: str, value: str) -> str:
        return f"{self._prefix}revocation:{kind}:{value}"

    def revocations_loaded(self) -> str:
        return f"{self._prefix}revocation:loaded"

    @property
    def revocations_prefix(self) -> str:
        return f"{self._prefix}revocation:"

    def revocations_epoch(self) -> str:
        return f"{self._prefix}revocation:epoch"

    def channel(self, topic: str) -> str:
        return f"{self._prefix}events:{topic}"

    @property
    def prefix(self) -> str:
        return self._prefix


def _send_and_read(connection: Any, command: list[bytes]) -> list[bytes | None]:
    connection.send_packed_command(command)
    return cast(list[bytes | None], connection.read_response())


class RedisStore:
    """The shared store (several IdP instances behind a load balancer)."""

    def __init__(self, url: str) -> None:
        import hiredis
        import redis

        self._redis_errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self._connection_error: type[Exception] = redis.ConnectionError
        # The C packer (a dependency, as redis-py's reply parser): UTF-8 keys, the same RESP
        # bytes as redis-py's own packing, without its per-argument checks in Python.
        self._pack: Callable[..., bytes] = hiredis.pack_command
        self._client = redis.Redis.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0, health_check_interval=30
        )
        self._subscriptions: dict[str, Callable[[bytes], None]] = {}
        self._listener: threading.Thread | None = None
        self._lock = threading.Lock()
        # Connections for ``mget`` (every introspection's revocation check), kept here rather
        # than taken from the client's pool: the pool's checkout and release (a lock, a poll
        # of the socket, its metrics) cost twice the MGET itself. ``list.pop`` and ``append``
        # are atomic, so a thread never shares a connection; there are as many as calls at once.
        self._idle: list[Any] = []
        self._idle_pid = os.getpid()

    @property
    def is_shared(self) -> bool:
        return True

    @property
    def has_durable_fallback(self) -> bool:
        return False

    def markers_unseen_before(self) -> datetime | None:
        return None  # every marker this store ever set is in sight while it answers

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except self._redis_errors as exc:
            raise EphemeralStoreError(str(exc)) from exc

    def get(self, key: str) -> bytes | None:
        return self._call(lambda: self._client.get(key))  # type: ignore[return-value]

    def mget(self, keys: list[str]) -> list[bytes | None]:
        if self._idle_pid != os.getpid():
            # A forked child must not use its parent's sockets (their replies would mix).
            self._idle, self._idle_pid = [], os.getpid()
        try:
            connection = self._idle.pop()
            reused = True
        except IndexError:
            pool = self._client.connection_pool
            connection = pool.connection_class(**pool.connection_kwargs)
            reused = False
        command = [self._pack(("MGET", *keys))]
        try:
            try:
                values = _send_and_read(connection, command)
            except self._connection_error:
                if not reused:
                    raise
                # What the pool's checkout does: a connection that Redis closed while it was
                # idle (a restart) is opened again once. MGET only reads: sending it twice is safe.
                connection.disconnect()
                values = _send_and_read(connection, command)
        except self._redis_errors as exc:
            connection.disconnect()
            raise EphemeralStoreError(str(exc)) from exc
        self._idle.append(connection)
        return values

    def set(self, key: str, value: bytes, *, ttl: float, only_if_new: bool = False) -> bool:
        ms = max(1, int(ttl * 1000))
        result = self._call(lambda: self._client.set(key, value, px=ms, nx=only_if_new))
        return bool(result)

    def set_many(
        self, items: Iterable[tuple[str, bytes, float]], *, guard: tuple[str, bytes] | None = None
    ) -> bool:
        import redis

        def run() -> bool:
            # MULTI/EXEC: all of it lands or none of it (a restart mid-way leaves nothing).
            with self._client.pipeline(transaction=True) as pipe:
                if guard is not None:
                    # WATCH: a FLUSHDB, an expiry or another write of the guard between this
                    # read and EXEC aborts the transaction.
                    pipe.watch(guard[0])  # type: ignore[no-untyped-call]
                    if pipe.get(guard[0]) != guard[1]:
                        pipe.unwatch()
                        return False
                    pipe.multi()
                for key, value, ttl in items:
                    pipe.set(key, value, px=max(1, int(ttl * 1000)))
                try:
                    pipe.execute()
                except redis.WatchError:
                    return False
            return True

        return self._call(run)

    def consume(self, key: str) -> bytes | None:
        return self._call(lambda: self._client.getdel(key))  # type: ignore[return-value]

    def delete(self, *keys: str) -> None:
        if keys:
            self._call(lambda: self._client.delete(*keys))

    def incr(self, key: str, *, ttl: float) -> int:
        def run() -> int:
            pipe = self._client.pipeline(transaction=True)
            pipe.incr(key)
            # NX: the window starts at the first failure and is not extended by later ones.
            pipe.pexpire(key, max(1, int(ttl * 1000)), nx=True)
            count, _ = pipe.execute()
            return int(count)

        return self._call(run)

    def publish(self, channel: str, message: bytes) -> None:
        self._call(lambda: self._client.publish(channel, message))

    def subscribe(self, channel: str, callback: Callable[[bytes], None]) -> None:
        with self._lock:
            self._subscriptions[channel] = callback

    def start_listening(self) -> None:
        with self._lock:
            if self._listener is None and self._subscriptions:
                self._listener = threading.Thread(
                    target=self._listen, name="idp-redis-subscriber", daemon=True
                )
                self._listener.start()

    def _listen(self) -> None:
        # Reconnects forever: a Redis restart must not silently end cache invalidation.
        delay = 0.5
        while True:
            try:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.subscribe(*self._subscriptions)
                delay = 0.5
                for message in pubsub.listen():
                    callback = self._subscriptions.get(message["channel"].decode())
                    if callback is not None:
                        callback(message["data"])
            except self._redis_errors:
                if delay == 0.5:
                    log.warning("idp.store.redis.subscriber_disconnected")
                time.sleep(delay)
                delay = min(delay * 2, 30.0)

    def ping(self) -> None:
        self._call(self._client.ping)


class MemoryStore:
    """The in-process stand-in: one process only (the demo)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: dict[str, tuple[bytes, float]] = {}
        self._subscriptions: dict[str, list[Callable[[bytes], None]]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    @property
    def is_shared(self) -> bool:
        return False

    @property
    def has_durable_fallback(self) -> bool:
        return False

    def markers_unseen_before(self) -> datetime | None:
        return None  # every marker this store ever set is in sight while it answers

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._data[key]
            return None
        return item[0]

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._live(key)

    def mget(self, keys: list[str]) -> list[bytes | None]:
        with self._lock:
            return [self._live(key) for key in keys]

    def set(self, key: str, value: bytes, *, ttl: float, only_if_new: bool = False) -> bool:
        with self._lock:
            if only_if_new and self._live(key) is not None:
                return False
            self._data[key] = (value, self._clock() + ttl)
            if len(self._data) > 100_000:
                self._sweep()
            return True

    def set_many(
        self, items: Iterable[tuple[str, bytes, float]], *, guard: tuple[str, bytes] | None = None
    ) -> bool:
        with self._lock:
            if guard is not None and self._live(guard[0]) != guard[1]:
                return False
            now = self._clock()
            for key, value, ttl in items:
                self._data[key] = (value, now + ttl)
            return True

    def consume(self, key: str) -> bytes | None:
        with self._lock:
            value = self._live(key)
            self._data.pop(key, None)
            return value

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._data.pop(key, None)

    def incr(self, key: str, *, ttl: float) -> int:
        with self._lock:
            current = self._live(key)
            if current is None:
                self._data[key] = (b"1", self._clock() + ttl)
                return 1
            count = int(current) + 1
            self._data[key] = (str(count).encode(), self._data[key][1])
            return count

    def publish(self, channel: str, message: bytes) -> None:
        for callback in list(self._subscriptions.get(channel, [])):
            callback(message)

    def subscribe(self, channel: str, callback: Callable[[bytes], None]) -> None:
        self._subscriptions.setdefault(channel, []).append(callback)

    def start_listening(self) -> None:
        return None  # publish() calls the callbacks directly

    def ping(self) -> None:
        return None

    def flush(self) -> None:
        """Forget everything, as a Redis restart without persistence would."""
        with self._lock:
            self._data.clear()

    def _sweep(self) -> None:
        now = self._clock()
        for key in [k for k, (_, expires) in self._data.items() if expires <= now]:
            del self._data[key]


def make_store(redis_url: str | None) -> EphemeralStore:
    if redis_url:
        return RedisStore(redis_url)
    return MemoryStore()
