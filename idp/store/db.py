"""The declarative base, column types and database sessions (SQLAlchemy 2.0)."""

from __future__ import annotations

from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import DateTime
from sqlalchemy import Dialect
from sqlalchemy import Engine
from sqlalchemy import MetaData
from sqlalchemy import create_engine
from sqlalchemy import event
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker
from sqlalchemy.types import TypeDecorator

# Stable constraint names on every engine, as Alembic's autogenerate documentation advises.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every engine (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads this class attribute
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """Create the engine for ``url``; SQLite gets WAL, foreign keys and its folder."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # No ping on every checkout (a round trip on each token request); a connection that died
    # with a database restart fails one request and the pool is then renewed.
    # A server that accepts and never answers (a failover target not up yet, a balancer
    # with nothing behind it) or a peer gone without a word must fail the request, not hold
    # its thread for good; the URL's own values win.
    bounds = {k: v for k, v in _CONNECTION_BOUNDS.items() if k not in parsed.query}
    if parsed.get_driver_name() not in {"psycopg", "psycopg2"}:
        bounds = {}  # libpq's parameters: other drivers refuse them
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args=bounds,
    )


_CONNECTION_BOUNDS = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def is_postgresql(db: Session) -> bool:
    return db.get_bind().dialect.name == "postgresql"


def one_writer_at_a_time(db: Session) -> None:
    """SQLite ignores FOR UPDATE: take its database write lock before reading what a decision
    depends on, so such decisions run one after another there too (the embedded demo).
    PostgreSQL's row locks do this where it matters."""
    if not is_postgresql(db):
        # A write that changes nothing, to a table every migrated database has.
        db.execute(text("UPDATE alembic_version SET version_num = version_num WHERE 1 = 0"))
