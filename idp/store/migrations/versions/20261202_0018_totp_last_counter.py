"""Devices keep the time step of their last accepted TOTP code: the one-time marker in the
ephemeral store is lost when Redis fails or restarts, and a code seen over a shoulder would
be accepted again.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 06:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_last_counter", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("totp_last_counter")
