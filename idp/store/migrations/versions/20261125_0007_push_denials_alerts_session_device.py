"""Anti-fatigue: push denials per user; alerts for the helpdesk; the phone that confirmed a session.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 21:48:49.084812
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "push_denials",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("consecutive", sa.Integer(), nullable=False),
        sa.Column("last_denied_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_push_denials_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_push_denials")),
    )
    op.create_table(
        "security_alerts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_security_alerts_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_alerts")),
    )
    with op.batch_alter_table("security_alerts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_security_alerts_acknowledged_at"), ["acknowledged_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_security_alerts_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("device_id", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_user_sessions_device_id"), ["device_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_user_sessions_device_id_devices"),
            "devices",
            ["device_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("user_sessions", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_user_sessions_device_id_devices"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_user_sessions_device_id"))
        batch_op.drop_column("device_id")

    with op.batch_alter_table("security_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_security_alerts_user_id"))
        batch_op.drop_index(batch_op.f("ix_security_alerts_acknowledged_at"))

    op.drop_table("security_alerts")
    op.drop_table("push_denials")
