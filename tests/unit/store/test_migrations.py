"""Data carried across migrations (the schema itself is compared with the models elsewhere)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from idp.store.db import make_engine
from idp.store.migrate import upgrade


def test_accounts_flagged_before_0011_were_issued_passwords(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    upgrade(engine, "0010")
    with engine.begin() as connection:
        for username, flagged in (("newuser", True), ("somchai", False)):
            connection.execute(
                text(
                    "INSERT INTO users (id, sub, username, password_hash, must_change_password,"
                    " status, given_name_th, family_name_th, given_name_en, family_name_en,"
                    " created_at) VALUES (:u, :u, :u, 'x', :f, 'active', '', '', '', '',"
                    " '2026-01-01 00:00:00')"
                ),
                {"u": username, "f": flagged},
            )
    upgrade(engine)
    with engine.connect() as connection:
        reasons = dict(
            connection.execute(text("SELECT username, password_change_reason FROM users")).all()
        )
    engine.dispose()
    assert reasons == {"newuser": "issued", "somchai": None}
