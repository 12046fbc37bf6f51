"""The durable fallback of the ephemeral store: a PostgreSQL table that takes over whatever
a login needs (interaction sessions, rate-limit counters, push challenges and answers,
one-time markers) while Redis cannot be reached, so that signing in keeps working, a little
more slowly, through a Redis outage.

Why the database rather than state sealed into the browser: single-use markers (a TOTP step,
a DPoP or assertion ``jti``) and rate-limit counters must be shared by every instance and
consumed atomically, which a cookie cannot do without becoming replayable; the database is
already shared, consistent and durable, and is only asked while Redis is away (or while it
still holds items written during an outage). Keys under ``database_prefixes`` (client
assertion ``jti`` marks) always live here: a mark made in Redis cannot be seen during an
outage, and the assertion it guards would be accepted once more.

The revocation mirror never falls back here: its keys go to Redis only, and revocation
checks answer from the revocation table itself while Redis is away.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import TypeVar
from typing import cast

from sqlalchemy import BigInteger
from sqlalchemy import Engine
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.store.db import Base
from idp.store.ephemeral import EphemeralStore
from idp.store.ephemeral import EphemeralStoreError

log = logging.getLogger(__name__)

T = TypeVar("T")

# After a failed Redis call, Redis is tried by one call at a time (the others go straight to
# the database) until a call succeeds again or this long has passed. One at a time rather than
# once a second: an instance must see Redis back as soon as another does, or a marker one
# instance sets in Redis is set again in the database here, and an item written there is
# missing here.
_AVOID_REDIS_FOR = 1.0
# How often to ask the database whether it still holds items from an outage.
_CHECK_TABLE_EVERY = 2.0


class EphemeralItem(Base):
    """An item of the ephemeral store written while Redis was unreachable."""

    __tablename__ = "ephemeral_items"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    counter: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(index=True)


_TABLE = cast(Table, EphemeralItem.__table__)


def _now() -> datetime:
    return datetime.now(UTC)


def _value(value: bytes, counter: int | None) -> bytes:
    return str(counter).encode() if counter is not None else value


class DatabaseStore:
    """The ephemeral store's operations on the ``ephemeral_items`` table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def get(self, key: str) -> bytes | None:
        return self.mget([key])[0]

    def mget(self, keys: list[str]) -> list[bytes | None]:
        table = _TABLE
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(table.c.key, table.c.value, table.c.counter).where(
                    table.c.key.in_(keys), table.c.expires_at > _now()
                )
            ).all()
        found = {key: _value(value, counter) for key, value, counter in rows}
        return [found.get(key) for key in keys]

    def set(self, key: str, value: bytes, *, ttl: float, only_if_new: bool = False) -> bool:
        table = _TABLE
        now = _now()
        statement = self._insert(table).values(
            key=key, value=value, counter=None, expires_at=now + timedelta(seconds=ttl)
        )
        upsert = statement.on_conflict_do_update(
            index_elements=["key"],
            set_={"value": value, "counter": None, "expires_at": statement.excluded.expires_at},
            # SET NX: only an expired item may be replaced.
            where=(table.c.expires_at <= now) if only_if_new else None,
        )
        with self._engine.begin() as connection:
            # A row comes back only when one was written: the rowcount is 1 even when the
            # WHERE kept the existing item (psycopg), so it cannot say "already set".
            return connection.execute(upsert.returning(table.c.key)).first() is not None

    def consume(self, key: str) -> bytes | None:
        table = _TABLE
        with self._engine.begin() as connection:
            row = connection.execute(
                delete(table)
                .where(table.c.key == key)
                .returning(table.c.value, table.c.counter, table.c.expires_at)
            ).first()
        if row is None or row.expires_at <= _now():
            return None
        return _value(row.value, row.counter)

    def delete(self, *keys: str) -> None:
        table = _TABLE
        with self._engine.begin() as connection:
            connection.execute(delete(table).where(table.c.key.in_(keys)))

    def incr(self, key: str, *, ttl: float) -> int:
        table = _TABLE
        now = _now()
        expired = table.c.expires_at <= now
        statement = self._insert(table).values(
            key=key, value=b"", counter=1, expires_at=now + timedelta(seconds=ttl)
        )
        upsert = statement.on_conflict_do_update(
            index_elements=["key"],
            set_={
                # A fixed window: it starts at the first increment, as Redis's PEXPIRE NX.
                "counter": case((expired, 1), else_=func.coalesce(table.c.counter, 0) + 1),
                "expires_at": case(
                    (expired, statement.excluded.expires_at), else_=table.c.expires_at
                ),
            },
        ).returning(table.c.counter)
        with self._engine.begin() as connection:
            return int(connection.execute(upsert).scalar_one())

    def latest_expiry(self) -> datetime | None:
        table = _TABLE
        with self._engine.begin() as connection:
            connection.execute(delete(table).where(table.c.expires_at <= _now()))
            return connection.execute(select(func.max(table.c.expires_at))).scalar()


class FallbackStore:
    """Redis first; the database while Redis is unreachable, and as a second place to look
    while the database still holds items written during an outage."""

    def __init__(
        self,
        redis: EphemeralStore,
        engine: Engine,
        *,
        shared_prefix: str,
        database_prefixes: tuple[str, ...] = (),
        now: Callable[[], datetime] = _now,
    ) -> None:
        self._redis = redis
        # The application's clock: the outage's start is compared with times it gave out.
        self._clock = now
        # When this instance first missed Redis in the current outage (None: Redis answers).
        self._redis_lost_at: datetime | None = None
        self._db = DatabaseStore(engine)
        # Keys under this prefix never fall back (the revocation mirror checks the database
        # itself when Redis is away).
        self._redis_only = shared_prefix
        # Keys under these live in the database only: single-use marks that an attacker could
        # otherwise use again during an outage, when the marks made in Redis cannot be seen.
        self._database_only = database_prefixes
        # When no key can be both, a batch of Redis-only keys (a revocation check, on every
        # introspection) goes to Redis without the other tests.
        self._apart = not any(
            prefix.startswith(shared_prefix) or shared_prefix.startswith(prefix)
            for prefix in database_prefixes
        )
        self._redis_down_until = 0.0
        self._warned_at = -10.0
        self._probe = threading.Lock()
        self._db_holds_until = _now() + timedelta(days=1)  # unknown until first checked
        self._db_checked_at = 0.0
        self._db_unreachable = False
        self._lock = threading.Lock()

    @property
    def is_shared(self) -> bool:
        return True

    @property
    def has_durable_fallback(self) -> bool:
        return True

    def markers_unseen_before(self) -> datetime | None:
        # SECURITY: markers set in Redis before it went away are out of sight until it is
        # back; a single-use token older than that moment may have been used there.
        return self._redis_lost_at

    # -- deciding where to go ---------------------------------------------------------------

    def _durable(self, key: str) -> bool:
        return not key.startswith(self._redis_only)

    def _in_database_only(self, key: str) -> bool:
        return key.startswith(self._database_only) if self._database_only else False

    def _redis_call(self, fn: Callable[[], T]) -> T | None:
        """Run a Redis call; None when Redis is away (or being tried by another call)."""
        if time.monotonic() >= self._redis_down_until:
            return self._try_redis(fn)
        if not self._probe.acquire(blocking=False):
            return None
        try:
            return self._try_redis(fn)
        finally:
            self._probe.release()

    def _try_redis(self, fn: Callable[[], T]) -> T | None:
        try:
            result = fn()
        except EphemeralStoreError:
            now = time.monotonic()
            if now - self._warned_at > 5:
                self._warned_at = now
                log.warning("idp.store.redis_unavailable_using_database")
            self._redis_down_until = now + _AVOID_REDIS_FOR
            if self._redis_lost_at is None:
                self._redis_lost_at = self._clock()
            return None
        self._redis_down_until = 0.0
        self._redis_lost_at = None
        return result

    def _db_may_hold_items(self) -> bool:
        if time.monotonic() - self._db_checked_at > _CHECK_TABLE_EVERY:
            with self._lock:
                if time.monotonic() - self._db_checked_at > _CHECK_TABLE_EVERY:
                    self._db_checked_at = time.monotonic()
                    try:
                        latest = self._db.latest_expiry()
                    except SQLAlchemyError:
                        # The database is away: Redis alone serves until it is back.
                        log.warning("idp.store.fallback_check_failed")
                        self._db_unreachable = True
                    else:
                        self._db_unreachable = False
                        self._db_holds_until = latest or datetime.min.replace(tzinfo=UTC)
        return not self._db_unreachable and self._db_holds_until > _now()

    def _wrote_to_db(self, ttl: float) -> None:
        self._db_holds_until = max(self._db_holds_until, _now() + timedelta(seconds=ttl))

    # -- the EphemeralStore interface -------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        return self.mget([key])[0]

    def mget(self, keys: list[str]) -> list[bytes | None]:
        if self._apart and all(key.startswith(self._redis_only) for key in keys):
            return self._redis.mget(keys)
        in_database = [key for key in keys if self._in_database_only(key)]
        if in_database:
            found = dict(zip(in_database, self._db.mget(in_database), strict=True))
            rest = [key for key in keys if key not in found]
            others = dict(zip(rest, self.mget(rest), strict=True)) if rest else {}
            return [found[key] if key in found else others[key] for key in keys]
        if not any(self._durable(key) for key in keys):
            return self._redis.mget(keys)
        values = self._redis_call(lambda: self._redis.mget(keys))
        if values is None:
            values = [None] * len(keys)
            missing = [key for key in keys if self._durable(key)]
        elif self._db_may_hold_items():
            pairs = zip(keys, values, strict=True)
            missing = [key for key, value in pairs if value is None and self._durable(key)]
        else:
            return values
        if missing:
            found = dict(zip(missing, self._db.mget(missing), strict=True))
            values = [found.get(key, value) for key, value in zip(keys, values, strict=True)]
        return values

    def set(self, key: str, value: bytes, *, ttl: float, only_if_new: bool = False) -> bool:
        if self._in_database_only(key):
            return self._db.set(key, value, ttl=ttl, only_if_new=only_if_new)
        if not self._durable(key):
            return self._redis.set(key, value, ttl=ttl, only_if_new=only_if_new)
        in_db = self._db_may_hold_items()
        if only_if_new and in_db and self._db.get(key) is not None:
            return False  # marked during an outage: still used
        stored = self._redis_call(
            lambda: self._redis.set(key, value, ttl=ttl, only_if_new=only_if_new)
        )
        if stored is None:
            self._wrote_to_db(ttl)
            return self._db.set(key, value, ttl=ttl, only_if_new=only_if_new)
        if stored and in_db and not only_if_new:
            self._db.delete(key)  # an older value from the outage must not come back
        return stored

    def set_many(
        self, items: Iterable[tuple[str, bytes, float]], *, guard: tuple[str, bytes] | None = None
    ) -> bool:
        return self._redis.set_many(items, guard=guard)

    def consume(self, key: str) -> bytes | None:
        if self._in_database_only(key):
            return self._db.consume(key)
        if not self._durable(key):
            return self._redis.consume(key)
        from_redis = self._redis_call(lambda: self._redis.consume(key))
        if from_redis is not None:
            return from_redis
        return self._db.consume(key) if self._in_outage_or_db_holds() else None

    def _in_outage_or_db_holds(self) -> bool:
        return time.monotonic() < self._redis_down_until or self._db_may_hold_items()

    def delete(self, *keys: str) -> None:
        if in_database := [key for key in keys if self._in_database_only(key)]:
            self._db.delete(*in_database)
            keys = tuple(key for key in keys if not self._in_database_only(key))
            if not keys:
                return
        shared = [key for key in keys if not self._durable(key)]
        if shared:
            self._redis.delete(*shared)
        durable = [key for key in keys if self._durable(key)]
        if not durable:
            return
        self._redis_call(lambda: self._redis.delete(*durable))
        if self._in_outage_or_db_holds():
            self._db.delete(*durable)

    def incr(self, key: str, *, ttl: float) -> int:
        if not self._durable(key):
            return self._redis.incr(key, ttl=ttl)
        count = self._redis_call(lambda: self._redis.incr(key, ttl=ttl))
        if count is None:
            self._wrote_to_db(ttl)
            return self._db.incr(key, ttl=ttl)
        if self._db_may_hold_items():
            # Failures counted during the outage still count.
            earlier = self._db.get(key)
            count += int(earlier) if earlier else 0
        return count

    def publish(self, channel: str, message: bytes) -> None:
        self._redis.publish(channel, message)

    def subscribe(self, channel: str, callback: Callable[[bytes], None]) -> None:
        self._redis.subscribe(channel, callback)

    def start_listening(self) -> None:
        self._redis.start_listening()

    def ping(self) -> None:
        self._redis.ping()
