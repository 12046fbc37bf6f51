"""The claims a client asked for (OIDC Core 5.5), kept on codes and grants for verified_claims.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 21:07:02.378078
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("authorization_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claims_request", sa.JSON(), nullable=True))

    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claims_request", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_column("claims_request")

    with op.batch_alter_table("authorization_codes", schema=None) as batch_op:
        batch_op.drop_column("claims_request")
