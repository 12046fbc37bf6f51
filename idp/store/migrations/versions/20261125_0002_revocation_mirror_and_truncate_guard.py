"""Revocation mirror state; the audit table also refuses TRUNCATE.

The mirror state row marks the Redis mirror of the revocation list dirty when a mirror write
failed, so every instance rebuilds it. Row-level triggers do not see TRUNCATE, which would
empty the audit trail without a trace; a statement-level trigger refuses it (PostgreSQL;
SQLite has no TRUNCATE).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 20:13:30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_PG_TRUNCATE_GUARD = """
CREATE OR REPLACE FUNCTION audit_events_no_truncate() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only';
END $$ LANGUAGE plpgsql;
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_no_truncate();
"""


def upgrade() -> None:
    op.create_table(
        "revocation_mirror_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dirty_since", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revocation_mirror_state")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_TRUNCATE_GUARD)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_no_truncate()")
    op.drop_table("revocation_mirror_state")
