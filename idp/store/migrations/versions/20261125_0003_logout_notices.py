"""Back-channel logout notices: the logout tokens owed to relying parties, kept until sent.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 20:21:05.122645
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "logout_notices",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("target_uri", sa.String(length=500), nullable=False),
        sa.Column("sub", sa.String(length=64), nullable=False),
        sa.Column("sid", sa.String(length=43), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("abandoned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_logout_notices")),
    )
    with op.batch_alter_table("logout_notices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_logout_notices_next_attempt_at"), ["next_attempt_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("logout_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_logout_notices_next_attempt_at"))

    op.drop_table("logout_notices")
