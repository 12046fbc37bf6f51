"""Security events pushed to relying parties: a client's security event URI (RFC 8935), and
the notice outbox generalised to carry Security Event Tokens beside logout tokens.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25 23:16:14.190661
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("logout_notices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="logout", nullable=False)
        )
        batch_op.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch_op.alter_column("sid", existing_type=sa.VARCHAR(length=43), nullable=True)

    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("security_event_uri", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.drop_column("security_event_uri")

    # Security events have no place in the older table (no sid); they are dropped.
    op.execute("DELETE FROM logout_notices WHERE kind <> 'logout'")
    with op.batch_alter_table("logout_notices", schema=None) as batch_op:
        batch_op.alter_column("sid", existing_type=sa.VARCHAR(length=43), nullable=False)
        batch_op.drop_column("payload")
        batch_op.drop_column("kind")
