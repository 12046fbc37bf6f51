"""The portal's database: an engine and a session factory; tables made at start."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from gfms_portal.models import Base


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return create_engine(url, connect_args={"check_same_thread": False})
    return create_engine(url, pool_pre_ping=True)


def prepare(engine: Engine) -> sessionmaker[Session]:
    """A simulator makes its tables with ``create_all`` (no migrations; docs/portal.md says so)."""
    Base.metadata.create_all(engine)
    return sessionmaker(engine, expire_on_commit=False)
