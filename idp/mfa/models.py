"""Bound devices: the phone that confirms every login."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import BigInteger
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.store.db import Base


class DeviceStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # lost or stolen: never confirms anything again


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[DeviceStatus] = mapped_column(String(16))
    # The phone's P-256 public key (the private key never leaves the phone) and its RFC 7638
    # thumbprint, so one key cannot be bound twice.
    public_jwk: Mapped[dict[str, Any]]
    key_thumbprint: Mapped[str] = mapped_column(String(64), unique=True)
    # Where the push relay reaches the phone.
    push_address: Mapped[str] = mapped_column(String(500))
    totp_seed_encrypted: Mapped[str] = mapped_column(Text)
    # The time step of the last code accepted, kept here as well as in the ephemeral store:
    # a code used just before Redis fails must not be accepted again from the fallback table.
    totp_last_counter: Mapped[int | None] = mapped_column(BigInteger)
    bound_at: Mapped[datetime]
    suspended_at: Mapped[datetime | None]


# One active phone per user, enforced by the database as well as by the service.
Index(
    "uq_devices_one_active_per_user",
    Device.user_id,
    unique=True,
    postgresql_where=text("status = 'active'"),
    sqlite_where=text("status = 'active'"),
)


class PushDenials(Base):
    """Consecutive pushes a user declined (push-bombing shows up here): each one delays the next
    push a little more, and enough of them pause pushes until a login succeeds another way."""

    __tablename__ = "push_denials"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    consecutive: Mapped[int]
    last_denied_at: Mapped[datetime]


class TransactionEvidence(Base):
    """A transaction the user confirmed on the phone: the details shown, and the answer the
    phone signed over their hash. It is the signer's electronic signature of their intent, so
    it is kept whole, with the public key that verifies it (even after the phone is gone)."""

    __tablename__ = "transaction_evidence"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[str] = mapped_column(String(32))
    device_public_jwk: Mapped[dict[str, Any]]
    challenge_id: Mapped[str] = mapped_column(String(32), unique=True)
    login_tx: Mapped[str] = mapped_column(String(32))
    authorization_details: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    txn_hash: Mapped[str] = mapped_column(String(64))
    signed_answer: Mapped[str] = mapped_column(Text)
    confirmed_at: Mapped[datetime]
    # One authorization per confirmation: set when a code is issued for it.
    consumed_at: Mapped[datetime | None]


class PasskeyStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # its sign counter went back: treated as cloned


class Passkey(Base):
    """A WebAuthn credential (passkey) that confirms a login in place of the phone's push."""

    __tablename__ = "passkeys"

    # The credential id (base64url), as the authenticator names it.
    id: Mapped[str] = mapped_column(String(1400), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[PasskeyStatus] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(Text)  # COSE key, base64url
    sign_count: Mapped[int] = mapped_column(BigInteger)  # uint32 per WebAuthn
    aaguid: Mapped[str] = mapped_column(String(36))
    backed_up: Mapped[bool]
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    suspended_at: Mapped[datetime | None]
