"""Data carried across migrations (the schema itself is compared with the models elsewhere)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import Engine
from sqlalchemy import inspect
from sqlalchemy import text

from idp.store.db import make_engine
from idp.store.migrate import alembic_config
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


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def outbox_names(engine: Engine, table: str) -> tuple[str | None, list[str | None]]:
    inspector = inspect(engine)
    return (
        inspector.get_pk_constraint(table)["name"],
        [index["name"] for index in inspector.get_indexes(table)],
    )


def check_outbox_renamed_in_place(engine: Engine) -> None:
    """0022 renames the notice outbox with its key and index, keeping what waits in it."""
    upgrade(engine, "0021")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO logout_notices (id, kind, client_id, target_uri, sub, sid,"
                " created_at, attempts, next_attempt_at) VALUES ('n1', 'logout', 'rp',"
                " 'https://rp.example/logout', 'sub', 'sid', '2026-12-01 00:00:00', 2,"
                " '2026-12-01 00:01:00')"
            )
        )
    upgrade(engine, "0022")
    assert outbox_names(engine, "relying_party_notices") == (
        "pk_relying_party_notices",
        ["ix_relying_party_notices_next_attempt_at"],
    )
    assert "logout_notices" not in inspect(engine).get_table_names()
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT id, attempts FROM relying_party_notices")).all()
    assert [tuple(row) for row in kept] == [("n1", 2)]

    downgrade(engine, "0021")
    assert outbox_names(engine, "logout_notices") == (
        "pk_logout_notices",
        ["ix_logout_notices_next_attempt_at"],
    )
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT id, attempts FROM logout_notices")).all()
    assert [tuple(row) for row in kept] == [("n1", 2)]
    upgrade(engine)


def test_the_notice_outbox_is_renamed_in_place_on_sqlite(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        check_outbox_renamed_in_place(engine)
    finally:
        engine.dispose()
