"""Lost-device cases (the head of unit's letter, due in Thai working days) with the letter
files, and the helpdesk's Temporary Access Passes.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 23:23:21.116977
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "access_passes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("issued_by", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_access_passes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_passes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_access_passes_code_hash")),
    )
    with op.batch_alter_table("access_passes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_passes_user_id"), ["user_id"], unique=False)

    op.create_table(
        "lost_device_cases",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("device_id", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reported_by", sa.String(length=64), nullable=True),
        sa.Column("letter_due", sa.Date(), nullable=False),
        sa.Column("letter_filename", sa.String(length=255), nullable=True),
        sa.Column("letter_media_type", sa.String(length=64), nullable=True),
        sa.Column("letter_sha256", sa.String(length=64), nullable=True),
        sa.Column("letter_received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("letter_received_by", sa.String(length=64), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_lost_device_cases_device_id_devices"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_lost_device_cases_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lost_device_cases")),
    )
    with op.batch_alter_table("lost_device_cases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lost_device_cases_letter_due"), ["letter_due"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_lost_device_cases_user_id"), ["user_id"], unique=False)

    op.create_table(
        "lost_device_case_letters",
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["lost_device_cases.id"],
            name=op.f("fk_lost_device_case_letters_case_id_lost_device_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_lost_device_case_letters")),
    )


def downgrade() -> None:
    op.drop_table("lost_device_case_letters")
    with op.batch_alter_table("lost_device_cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lost_device_cases_user_id"))
        batch_op.drop_index(batch_op.f("ix_lost_device_cases_letter_due"))

    op.drop_table("lost_device_cases")
    with op.batch_alter_table("access_passes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_passes_user_id"))

    op.drop_table("access_passes")
