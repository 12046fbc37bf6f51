"""Registration: where each user stands, and the identity evidence summary on users.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 20:53:32.407783
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrolments",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("proofing_state", sa.String(length=64), nullable=True),
        sa.Column("proofing_nonce", sa.String(length=64), nullable=True),
        sa.Column("proofing_verifier_encrypted", sa.Text(), nullable=True),
        sa.Column("proofing_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rejected_reason", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_enrolments_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_enrolments")),
        sa.UniqueConstraint("proofing_state", name=op.f("uq_enrolments_proofing_state")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("identity_proofed_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("identity_evidence", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("identity_evidence")
        batch_op.drop_column("identity_proofed_at")

    op.drop_table("enrolments")
