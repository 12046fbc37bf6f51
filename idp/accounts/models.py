"""Users, their login sessions and the password step's failure counters."""

from __future__ import annotations

import enum
import secrets
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import false
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from idp.store.db import Base


def new_id() -> str:
    return uuid.uuid4().hex


def new_subject() -> str:
    # OIDC Core §2: sub is locally unique, never reassigned; opaque so it leaks nothing.
    return secrets.token_urlsafe(16)


class UserStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    sub: Mapped[str] = mapped_column(String(64), unique=True, default=new_subject)
    # Stored case-folded: "Somchai" and "somchai" are one account and share one failure counter.
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(default=True)
    password_changed_at: Mapped[datetime | None]
    temporary_password_expires_at: Mapped[datetime | None]
    # Why must_change_password is set (a ChangeReason value), for the page to say so.
    password_change_reason: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[UserStatus] = mapped_column(String(16), default=UserStatus.ACTIVE)

    given_name_th: Mapped[str] = mapped_column(String(100), default="")
    family_name_th: Mapped[str] = mapped_column(String(100), default="")
    given_name_en: Mapped[str] = mapped_column(String(100), default="")
    family_name_en: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str | None] = mapped_column(String(254))
    # The disbursement unit the account was issued for (its roles may be in others too).
    unit_code: Mapped[str | None] = mapped_column(ForeignKey("units.code"))
    # Held a hardware GFMS Token Key before the Soft Token; issued a username the same way.
    legacy_token_key: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Encrypted at rest (IDP_DATA_KEY), plus a keyed hash for look-ups.
    citizen_id_encrypted: Mapped[str | None] = mapped_column(String(255))
    citizen_id_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Identity proofing (Paotang): when, and a summary of how (trust framework, evidence, IAL);
    # never the card's laser code, the face or other data the check used (PDPA minimisation).
    identity_proofed_at: Mapped[datetime | None]
    identity_evidence: Mapped[dict[str, Any] | None]

    created_at: Mapped[datetime]

    @property
    def is_active(self) -> bool:
        return self.status == UserStatus.ACTIVE

    def display_name(self, locale: str) -> str:
        if locale == "en" and self.given_name_en:
            return f"{self.given_name_en} {self.family_name_en}".strip()
        return f"{self.given_name_th} {self.family_name_th}".strip() or self.username


class UserSession(Base):
    """A browser's authenticated session at the IdP (the ``sid`` of OIDC logout)."""

    __tablename__ = "user_sessions"

    # Public: appears in ID tokens and logout tokens as "sid".
    id: Mapped[str] = mapped_column(String(43), primary_key=True)
    # Secret: only the SHA-256 of the cookie value is stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    auth_time: Mapped[datetime]
    acr: Mapped[str] = mapped_column(String(255))
    amr: Mapped[list[str]]
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))
    # The phone that confirmed the login: when it is suspended, this session ends.
    device_id: Mapped[str | None] = mapped_column(
        ForeignKey("devices.id", ondelete="SET NULL"), index=True
    )


class LoginFailure(Base):
    """Consecutive failed password attempts for one username, known or not.

    Unknown usernames are counted exactly like real ones, so neither the answers, their timing
    nor a lock-out reveals whether an account exists.
    """

    __tablename__ = "login_failures"

    username_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[datetime]


class PasswordHistory(Base):
    """A former password's hash, so that it is not chosen again soon.

    Only the newest few per user are kept (``IDP_PASSWORD_HISTORY`` counts the current
    password, which stays on the user, as one of them); older rows are deleted.
    """

    __tablename__ = "password_history"

    # Insertion order is the order of the changes, even when two share a timestamp.
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # When this password stopped being the current one.
    created_at: Mapped[datetime]


Index("ix_user_sessions_active", UserSession.user_id, UserSession.ended_at)
