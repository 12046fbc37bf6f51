"""Unit tests build no Flask app: a migrated SQLite file and plain objects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from idp.settings import DEMO_DATA_KEY
from idp.settings import decode_data_key
from idp.store.db import make_engine
from idp.store.db import make_session_factory
from idp.store.migrate import upgrade
from idp.store.secrets import DataCipher


@pytest.fixture
def cipher() -> DataCipher:
    return DataCipher(decode_data_key(DEMO_DATA_KEY))


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'unit.sqlite3'}")
    upgrade(engine)
    yield make_session_factory(engine)
    engine.dispose()
