"""Disbursement units, role assignments, designation requests with their orders, the
exclusive-role policy (seeded with approve-1/approve-2) and administrative roles.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 22:55:03.489821
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exclusive_role_pairs",
        sa.Column("role_a", sa.String(length=32), nullable=False),
        sa.Column("role_b", sa.String(length=32), nullable=False),
        sa.Column("rule", sa.String(length=300), nullable=False),
        sa.CheckConstraint("role_a < role_b", name=op.f("ck_exclusive_role_pairs_ordered")),
        sa.PrimaryKeyConstraint("role_a", "role_b", name=op.f("pk_exclusive_role_pairs")),
    )
    op.bulk_insert(
        sa.table(
            "exclusive_role_pairs",
            sa.column("role_a", sa.String),
            sa.column("role_b", sa.String),
            sa.column("rule", sa.String),
        ),
        [
            {
                "role_a": "approve-1",
                "role_b": "approve-2",
                "rule": "ผู้อนุมัติเบิกเงิน (อนุมัติ ๑) และผู้อนุมัติจ่ายเงิน (อนุมัติ ๒) เป็นบุคคลเดียวกันมิได้",
            }
        ],
    )
    op.create_table(
        "units",
        sa.Column("code", sa.String(length=10), nullable=False),
        sa.Column("name_th", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("province", sa.String(length=100), nullable=False),
        sa.Column("treasury_office", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_units")),
    )
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_units_province"), ["province"], unique=False)

    op.create_table(
        "admin_grants",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("province", sa.String(length=100), nullable=True),
        sa.Column("unit_code", sa.String(length=10), nullable=True),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.String(length=64), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["unit_code"], ["units.code"], name=op.f("fk_admin_grants_unit_code_units")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_admin_grants_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_grants")),
    )
    with op.batch_alter_table("admin_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_admin_grants_user_id"), ["user_id"], unique=False)

    op.create_table(
        "designation_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("unit_code", sa.String(length=10), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("substitute_for", sa.String(length=32), nullable=True),
        sa.Column("order_number", sa.String(length=64), nullable=False),
        sa.Column("order_date", sa.Date(), nullable=False),
        sa.Column("order_filename", sa.String(length=255), nullable=False),
        sa.Column("order_media_type", sa.String(length=64), nullable=False),
        sa.Column("order_size", sa.Integer(), nullable=False),
        sa.Column("order_sha256", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("submitted_by", sa.String(length=32), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "valid_until IS NULL OR valid_until >= valid_from",
            name=op.f("ck_designation_requests_period"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_designation_requests_decided_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["submitted_by"], ["users.id"], name=op.f("fk_designation_requests_submitted_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["substitute_for"],
            ["users.id"],
            name=op.f("fk_designation_requests_substitute_for_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_code"], ["units.code"], name=op.f("fk_designation_requests_unit_code_units")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_designation_requests_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_designation_requests")),
    )
    with op.batch_alter_table("designation_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_designation_requests_unit_code"), ["unit_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_designation_requests_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "designation_order_files",
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["designation_requests.id"],
            name=op.f("fk_designation_order_files_request_id_designation_requests"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_designation_order_files")),
    )
    op.create_table(
        "role_assignments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("unit_code", sa.String(length=10), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("substitute_for", sa.String(length=32), nullable=True),
        sa.Column("request_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "valid_until IS NULL OR valid_until >= valid_from",
            name=op.f("ck_role_assignments_period"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["designation_requests.id"],
            name=op.f("fk_role_assignments_request_id_designation_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["substitute_for"],
            ["users.id"],
            name=op.f("fk_role_assignments_substitute_for_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["unit_code"], ["units.code"], name=op.f("fk_role_assignments_unit_code_units")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_role_assignments_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_assignments")),
    )
    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.create_index("ix_role_assignments_unit", ["unit_code"], unique=False)
        batch_op.create_index(
            "ix_role_assignments_user_unit", ["user_id", "unit_code"], unique=False
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unit_code", sa.String(length=10), nullable=True))
        batch_op.add_column(
            sa.Column("legacy_token_key", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_users_unit_code_units"), "units", ["unit_code"], ["code"]
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_users_unit_code_units"), type_="foreignkey")
        batch_op.drop_column("legacy_token_key")
        batch_op.drop_column("unit_code")

    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_role_assignments_user_unit")
        batch_op.drop_index("ix_role_assignments_unit")

    op.drop_table("role_assignments")
    op.drop_table("designation_order_files")
    with op.batch_alter_table("designation_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_designation_requests_user_id"))
        batch_op.drop_index(batch_op.f("ix_designation_requests_unit_code"))

    op.drop_table("designation_requests")
    with op.batch_alter_table("admin_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_admin_grants_user_id"))

    op.drop_table("admin_grants")
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_units_province"))

    op.drop_table("units")
    op.drop_table("exclusive_role_pairs")
