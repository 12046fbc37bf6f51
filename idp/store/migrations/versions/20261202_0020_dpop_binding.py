"""DPoP (RFC 9449): clients that must bind their access tokens to a key
(``dpop_bound_access_tokens``, §5.2), and the key thumbprint an authorization code (``dpop_jkt``,
§10) or a public client's grant with its refresh tokens (§5) is bound to.

Revision ID: 0020
Revises: 0018
Create Date: 2026-12-02 10:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "dpop_bound_access_tokens", sa.Boolean(), nullable=False,
                server_default=sa.false(),
            )
        )
    with op.batch_alter_table("authorization_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dpop_jkt", sa.String(length=43), nullable=True))
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dpop_jkt", sa.String(length=43), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_column("dpop_jkt")
    with op.batch_alter_table("authorization_codes", schema=None) as batch_op:
        batch_op.drop_column("dpop_jkt")
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.drop_column("dpop_bound_access_tokens")
