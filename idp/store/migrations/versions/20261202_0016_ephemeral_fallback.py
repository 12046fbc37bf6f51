"""The ephemeral store's durable fallback: items written while Redis is unreachable.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 05:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ephemeral_items",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_ephemeral_items")),
    )
    with op.batch_alter_table("ephemeral_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ephemeral_items_expires_at"), ["expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("ephemeral_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ephemeral_items_expires_at"))
    op.drop_table("ephemeral_items")
