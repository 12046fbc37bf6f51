"""The notice outbox named for what it holds: ``logout_notices`` also carries Security Event
Tokens and CIBA pings, so it becomes ``relying_party_notices``, renamed in place with its
primary key and index (no row is copied on PostgreSQL).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 15:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def _rename(old: str, new: str) -> None:
    op.rename_table(old, new)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {new} RENAME CONSTRAINT pk_{old} TO pk_{new}")
        op.execute(f"ALTER INDEX ix_{old}_next_attempt_at RENAME TO ix_{new}_next_attempt_at")
        return
    # SQLite renames neither constraints nor indexes: the primary key's name lives in the
    # table's definition, so the batch copy rebuilds the table with the new one.
    with op.batch_alter_table(new, schema=None, recreate="always") as batch_op:
        batch_op.drop_index(f"ix_{old}_next_attempt_at")
        batch_op.drop_constraint(f"pk_{old}", type_="primary")
        batch_op.create_primary_key(f"pk_{new}", ["id"])
        batch_op.create_index(f"ix_{new}_next_attempt_at", ["next_attempt_at"], unique=False)


def upgrade() -> None:
    _rename("logout_notices", "relying_party_notices")


def downgrade() -> None:
    _rename("relying_party_notices", "logout_notices")
