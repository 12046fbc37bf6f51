"""Where each user's registration stands."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.store.db import Base


class Enrolment(Base):
    """One row per user who started registering; ``state`` follows ``idp.enrol.flow``."""

    __tablename__ = "enrolments"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(32))
    # The proofing attempt under way: the values its answer must carry back.
    proofing_state: Mapped[str | None] = mapped_column(String(64), unique=True)
    proofing_nonce: Mapped[str | None] = mapped_column(String(64))
    proofing_verifier_encrypted: Mapped[str | None] = mapped_column(Text)
    proofing_started_at: Mapped[datetime | None]
    rejected_reason: Mapped[str | None] = mapped_column(String(64))
    # Phone binding: a code shown to the user (kept as a keyed hash), valid for minutes and
    # usable once, and the nonce the phone must sign.
    activation_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    activation_expires_at: Mapped[datetime | None]
    activation_nonce: Mapped[str | None] = mapped_column(String(64))
    activation_nonce_expires_at: Mapped[datetime | None]
    device_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
