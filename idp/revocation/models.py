"""The revocation list: what was revoked before it expired, kept in the database as the truth."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.store.db import Base


class RevokedKind(enum.StrEnum):
    ACCESS_TOKEN = "jti"  # one JWT access token
    SESSION = "sid"  # every access token issued under an IdP session


class Revocation(Base):
    __tablename__ = "revocations"

    kind: Mapped[RevokedKind] = mapped_column(String(8), primary_key=True)
    value: Mapped[str] = mapped_column(String(64), primary_key=True)
    # After this, whatever was revoked has expired on its own and the row may be purged.
    expires_at: Mapped[datetime] = mapped_column(index=True)
    revoked_at: Mapped[datetime] = mapped_column(index=True)
    reason: Mapped[str] = mapped_column(String(64))


class MirrorState(Base):
    """One row: when a revocation was committed that Redis may not have received.

    Every instance checks it each second; a set mark means "rebuild the mirror from here".
    """

    __tablename__ = "revocation_mirror_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    dirty_since: Mapped[datetime | None]
