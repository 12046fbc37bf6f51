"""Bound phones (devices) and the activation code and nonce of phone binding.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 20:58:43.261299
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("key_thumbprint", sa.String(length=64), nullable=False),
        sa.Column("push_address", sa.String(length=500), nullable=False),
        sa.Column("totp_seed_encrypted", sa.Text(), nullable=False),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_devices_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("key_thumbprint", name=op.f("uq_devices_key_thumbprint")),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_user_id"), ["user_id"], unique=False)
        batch_op.create_index(
            "uq_devices_one_active_per_user",
            ["user_id"],
            unique=True,
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        )

    with op.batch_alter_table("enrolments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("activation_code_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("activation_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("activation_nonce", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("activation_nonce_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("device_id", sa.String(length=32), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_enrolments_activation_code_hash"), ["activation_code_hash"]
        )


def downgrade() -> None:
    with op.batch_alter_table("enrolments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_enrolments_activation_code_hash"), type_="unique")
        batch_op.drop_column("device_id")
        batch_op.drop_column("activation_nonce_expires_at")
        batch_op.drop_column("activation_nonce")
        batch_op.drop_column("activation_expires_at")
        batch_op.drop_column("activation_code_hash")

    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_devices_one_active_per_user",
            postgresql_where=sa.text("status = 'active'"),
            sqlite_where=sa.text("status = 'active'"),
        )
        batch_op.drop_index(batch_op.f("ix_devices_user_id"))

    op.drop_table("devices")
