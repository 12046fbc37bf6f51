"""The revocation list: what was revoked before it expired, kept in the database as the truth."""

from __future__ import annotations

import enum
from datetime import date
from datetime import datetime
from typing import Any

from sqlalchemy import Date
from sqlalchemy import ForeignKey
from sqlalchemy import LargeBinary
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


class NoticeKind(enum.StrEnum):
    LOGOUT = "logout"  # a logout token (OIDC Back-Channel Logout 1.0), form-posted
    SECURITY_EVENT = "set"  # a Security Event Token (RFC 8417), pushed per RFC 8935
    CIBA_PING = "ciba_ping"  # CIBA Core 1.0 §10.2: "your backchannel request has an answer"


class RelyingPartyNotice(Base):
    """A token owed to a relying party: a back-channel logout token (OIDC Back-Channel Logout
    1.0) or, by ``kind``, a CAEP Security Event Token (RFC 8417) pushed per RFC 8935.

    Written in the same transaction as the change it reports, so no restart can lose it; sent
    and retried by one background sender until the relying party accepts it. Both kinds share
    the table so that they share that sender (lease, SKIP LOCKED, retries); the token itself
    is signed at each attempt from what is stored here.
    """

    __tablename__ = "relying_party_notices"

    # Also the token's jti: every retry carries the same one, so the relying party can
    # recognise a repeat (RFC 8417 §2.2; Back-Channel Logout 1.0 §2.4).
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[NoticeKind] = mapped_column(
        String(16), default=NoticeKind.LOGOUT, server_default=NoticeKind.LOGOUT.value
    )
    client_id: Mapped[str] = mapped_column(String(64))
    target_uri: Mapped[str] = mapped_column(String(500))
    sub: Mapped[str] = mapped_column(String(64))
    # The ended session of a logout token; none for a security event (its subject is the user).
    sid: Mapped[str | None] = mapped_column(String(43))
    # A security event's type, its event claims and its txn (see revocation.security_events).
    payload: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(index=True)
    delivered_at: Mapped[datetime | None]
    abandoned_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(200))


class SuspensionReason(enum.StrEnum):
    LOST = "lost"
    STOLEN = "stolen"
    COMPROMISED = "compromised"
    OTHER = "other"


class CallerCheck(enum.StrEnum):
    """What the helpdesk asks a caller before giving access back (an access pass,
    re-registration); a suspension never waits for these, whatever was checked is recorded."""

    CITIZEN_ID = "citizen_id"
    UNIT = "unit"
    CALLBACK = "callback"
    HEAD_OF_UNIT = "head_of_unit"


class CaseKind(enum.StrEnum):
    # Lost or stolen: the head of unit's letter to CGD is due (กค ๐๔๐๒.๒/ว ๒๔ ข้อ ๔).
    LOST = "lost"
    # "This was not me", compromised, other: looked into, no letter unless the head of unit
    # says the phone was lost after all.
    INVESTIGATION = "investigation"


LETTER_REASONS = frozenset({SuspensionReason.LOST, SuspensionReason.STOLEN})


class LostDeviceCase(Base):
    """A suspended phone, opened by its suspension. For a lost or stolen phone the head of
    unit's letter is due within three Thai working days of the loss; receiving it closes the
    case. Other suspensions open an investigation, which asks for no letter."""

    __tablename__ = "lost_device_cases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))
    reason: Mapped[SuspensionReason] = mapped_column(String(16))
    kind: Mapped[CaseKind] = mapped_column(
        String(16), default=CaseKind.LOST, server_default=CaseKind.LOST.value
    )
    # What the helpdesk had verified of the caller when suspending (a suspension never waits
    # for it; it is kept so that whoever gives access back knows what was checked).
    verified: Mapped[list[str] | None]
    # How it was reported: helpdesk, api, self (the user), not_me (the phone's own report).
    channel: Mapped[str] = mapped_column(String(16))
    reported_at: Mapped[datetime]
    reported_by: Mapped[str | None] = mapped_column(String(64))
    # The day the phone was lost (Thai calendar), from which the letter's days count, and the
    # moment when the reporter knew it.
    lost_on: Mapped[date] = mapped_column(Date)
    lost_at: Mapped[datetime | None]
    letter_due: Mapped[date | None] = mapped_column(Date, index=True)
    letter_filename: Mapped[str | None] = mapped_column(String(255))
    letter_media_type: Mapped[str | None] = mapped_column(String(64))
    letter_sha256: Mapped[str | None] = mapped_column(String(64))
    letter_received_at: Mapped[datetime | None]
    letter_received_by: Mapped[str | None] = mapped_column(String(64))
    closed_at: Mapped[datetime | None]


class CaseLetter(Base):
    """The letter's bytes, apart from the case so that listing cases never loads them."""

    __tablename__ = "lost_device_case_letters"

    case_id: Mapped[str] = mapped_column(
        ForeignKey("lost_device_cases.id", ondelete="CASCADE"), primary_key=True
    )
    content: Mapped[bytes] = mapped_column(LargeBinary)


class AccessPass(Base):
    """A Temporary Access Pass the helpdesk issued after verifying a caller: once, briefly,
    and only to start registering a new phone."""

    __tablename__ = "access_passes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_by: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
