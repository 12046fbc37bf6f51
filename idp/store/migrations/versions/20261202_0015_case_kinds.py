"""Lost-device cases of two kinds: a lost or stolen phone (the letter is due) and an
investigation ("this was not me", compromised: no letter); what the helpdesk verified.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 05:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lost_device_cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="lost", nullable=False)
        )
        batch_op.add_column(sa.Column("verified", sa.JSON(), nullable=True))
        batch_op.alter_column("letter_due", existing_type=sa.Date(), nullable=True)
    # Open cases that were never about a lost phone stop asking heads of unit for a letter.
    cases = sa.table(
        "lost_device_cases",
        sa.column("reason", sa.String),
        sa.column("kind", sa.String),
        sa.column("letter_due", sa.Date),
        sa.column("closed_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        cases.update()
        .where(cases.c.reason.in_(["compromised", "other"]), cases.c.closed_at.is_(None))
        .values(kind="investigation", letter_due=None)
    )


def downgrade() -> None:
    cases = sa.table(
        "lost_device_cases",
        sa.column("letter_due", sa.Date),
        sa.column("reported_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        cases.update().where(cases.c.letter_due.is_(None)).values(letter_due=sa.func.date(
            cases.c.reported_at))
    )
    with op.batch_alter_table("lost_device_cases", schema=None) as batch_op:
        batch_op.alter_column("letter_due", existing_type=sa.Date(), nullable=False)
        batch_op.drop_column("verified")
        batch_op.drop_column("kind")
