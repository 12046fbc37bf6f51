"""Lost-device cases record the day of the loss (and its moment when known): the letter's
three working days count from it, not from the report.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 05:00:00
"""

from __future__ import annotations

from datetime import UTC
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lost_device_cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lost_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("lost_at", sa.DateTime(timezone=True), nullable=True))
    # Cases opened before: their days were counted from the report, so that was the loss day.
    cases = sa.table(
        "lost_device_cases",
        sa.column("id", sa.String),
        sa.column("reported_at", sa.DateTime(timezone=True)),
        sa.column("lost_on", sa.Date),
    )
    connection = op.get_bind()
    for case_id, reported_at in connection.execute(sa.select(cases.c.id, cases.c.reported_at)):
        moment = reported_at if reported_at.tzinfo else reported_at.replace(tzinfo=UTC)
        thai_day = (moment.astimezone(UTC) + timedelta(hours=7)).date()
        connection.execute(
            cases.update().where(cases.c.id == case_id).values(lost_on=thai_day)
        )
    with op.batch_alter_table("lost_device_cases", schema=None) as batch_op:
        batch_op.alter_column("lost_on", existing_type=sa.Date(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("lost_device_cases", schema=None) as batch_op:
        batch_op.drop_column("lost_at")
        batch_op.drop_column("lost_on")
