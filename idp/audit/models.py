"""The audit trail: append-only security events, hash-chained once sealed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.store.db import Base


class AuditEvent(Base):
    __tablename__ = "audit_events"

    # Insertion order; rows from concurrent transactions may commit out of this order, which
    # is why the chain follows ``seq`` (given at sealing), not ``id``.
    id: Mapped[int] = mapped_column(
        # SQLite autoincrements only INTEGER primary keys.
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    )
    occurred_at: Mapped[datetime]
    event: Mapped[str] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(128), index=True)
    client_id: Mapped[str | None] = mapped_column(String(64))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]]
    # Set once by the sealer: position in the chain and SHA-256 over (previous hash, this row).
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    chain_hash: Mapped[str | None] = mapped_column(String(64))


class SecurityAlert(Base):
    """Something the helpdesk must look at (a reported sign-in, a phone suspended by policy).
    Unlike audit events, an alert is worked on: it is acknowledged when handled."""

    __tablename__ = "security_alerts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    kind: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    details: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None] = mapped_column(index=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
