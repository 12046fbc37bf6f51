"""Orders that end a role from a day or change one role for another (issue 14).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("designation_requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="designate", nullable=False)
        )
        batch_op.add_column(sa.Column("ends_role", sa.String(length=32), nullable=True))


def downgrade() -> None:
    # Orders that ended or changed a role have no place in the older table; the assignments
    # they made stay, no longer linked to their request.
    op.execute(
        "UPDATE role_assignments SET request_id = NULL WHERE request_id IN "
        "(SELECT id FROM designation_requests WHERE kind <> 'designate')"
    )
    op.execute("DELETE FROM designation_requests WHERE kind <> 'designate'")
    with op.batch_alter_table("designation_requests", schema=None) as batch_op:
        batch_op.drop_column("ends_role")
        batch_op.drop_column("kind")
