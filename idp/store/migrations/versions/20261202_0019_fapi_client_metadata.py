"""FAPI 2.0 client metadata: the client's public keys (private_key_jwt, signed request
objects), and whether it must push its authorization requests (RFC 9126) or sign them
(RFC 9101).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 10:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("jwks", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("jwks_uri", sa.String(length=500), nullable=True))
        batch_op.add_column(
            sa.Column(
                "require_pushed_authorization_requests",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
        batch_op.add_column(
            sa.Column(
                "require_signed_request_object",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.drop_column("require_signed_request_object")
        batch_op.drop_column("require_pushed_authorization_requests")
        batch_op.drop_column("jwks_uri")
        batch_op.drop_column("jwks")
