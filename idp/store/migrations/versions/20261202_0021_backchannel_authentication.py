"""CIBA (OpenID Connect Client-Initiated Backchannel Authentication Core 1.0): the requests a
client waits on while the user's phone is asked, and the clients' delivery mode metadata.

Revision ID: 0021
Revises: 0018
Create Date: 2026-12-02 10:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("backchannel_token_delivery_mode", sa.String(length=8), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "backchannel_client_notification_endpoint", sa.String(length=500), nullable=True
            )
        )
    op.create_table(
        "backchannel_requests",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("auth_req_id_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("device_id", sa.String(length=32), nullable=False),
        sa.Column("challenge_id", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("binding_message", sa.String(length=200), nullable=True),
        sa.Column("authorization_details", sa.JSON(), nullable=True),
        sa.Column("delivery_mode", sa.String(length=8), nullable=False),
        sa.Column("client_notification_token", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interval", sa.Integer(), nullable=False),
        sa.Column("last_polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("txn", sa.String(length=32), nullable=True),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("grant_id", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth_clients.client_id"],
            name=op.f("fk_backchannel_requests_client_id_oauth_clients"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_backchannel_requests_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backchannel_requests")),
        sa.UniqueConstraint(
            "auth_req_id_hash", name=op.f("uq_backchannel_requests_auth_req_id_hash")
        ),
        sa.UniqueConstraint("challenge_id", name=op.f("uq_backchannel_requests_challenge_id")),
    )
    with op.batch_alter_table("backchannel_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_backchannel_requests_client_id"), ["client_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_backchannel_requests_user_id"), ["user_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("backchannel_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_backchannel_requests_user_id"))
        batch_op.drop_index(batch_op.f("ix_backchannel_requests_client_id"))
    op.drop_table("backchannel_requests")
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.drop_column("backchannel_client_notification_endpoint")
        batch_op.drop_column("backchannel_token_delivery_mode")
