"""Transaction confirmation (RFC 9396): device-signed evidence; confirmed details on codes, grants.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 21:55:15.670448
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "transaction_evidence",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("device_public_jwk", sa.JSON(), nullable=False),
        sa.Column("challenge_id", sa.String(length=32), nullable=False),
        sa.Column("login_tx", sa.String(length=32), nullable=False),
        sa.Column("authorization_details", sa.JSON(), nullable=False),
        sa.Column("txn_hash", sa.String(length=64), nullable=False),
        sa.Column("signed_answer", sa.Text(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_transaction_evidence_user_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transaction_evidence")),
        sa.UniqueConstraint("challenge_id", name=op.f("uq_transaction_evidence_challenge_id")),
    )
    with op.batch_alter_table("transaction_evidence", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_transaction_evidence_user_id"), ["user_id"], unique=False
        )

    with op.batch_alter_table("authorization_codes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("authorization_details", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("txn", sa.String(length=32), nullable=True))

    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("authorization_details", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("txn", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_column("txn")
        batch_op.drop_column("authorization_details")

    with op.batch_alter_table("authorization_codes", schema=None) as batch_op:
        batch_op.drop_column("txn")
        batch_op.drop_column("authorization_details")

    with op.batch_alter_table("transaction_evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transaction_evidence_user_id"))

    op.drop_table("transaction_evidence")
