"""The portal's own tables: disbursement documents, their attachments and e-signatures, the
portal's server-side sessions and the trips to the IdP it is waiting for.

A simulator: the tables are made with ``metadata.create_all`` when the app starts (no Alembic).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlalchemy import DateTime
from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import LargeBinary
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Status(enum.StrEnum):
    RECORDED = "recorded"  # keyed in, not yet a claim: the claimant has not signed it
    SUBMITTED = "submitted"  # the claimant signed (ข้อ ๑.๒)
    RETURNED = "returned"  # the finance officer sent it back with a reason
    CHECKED = "checked"  # the finance officer signed that it was checked (ข้อ ๑.๓)
    WITHDRAWAL_APPROVED = "withdrawal_approved"
    PAYMENT_APPROVED = "payment_approved"


class Document(Base):
    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str | None] = mapped_column(String(32), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    unit: Mapped[str] = mapped_column(String(10), index=True)
    amount: Mapped[str] = mapped_column(String(20))  # a Decimal as a string, 2 places
    payee: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # Who keyed it in (the claimant, or a recorder for them): not a signature.
    recorder_sub: Mapped[str] = mapped_column(String(64))
    recorder_name: Mapped[str] = mapped_column(String(200))
    # The person entitled to claim (their IdP username): only they sign it as the claim.
    claimant_username: Mapped[str] = mapped_column(String(64), default="")
    # The finance officer's last sending back: why, by whom, when.
    return_reason: Mapped[str | None] = mapped_column(Text)
    returned_by_name: Mapped[str | None] = mapped_column(String(200))
    returned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(24), default=Status.RECORDED)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The form it was recorded from: the same form sent twice records one request.
    form_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Optimistic concurrency: an edit and an approval of one version cannot both win.
    version: Mapped[int] = mapped_column(Integer, default=0)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy reads it

    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="document", order_by="Attachment.id"
    )
    # The signatures that stand; a claim sent back stays on file, superseded.
    signatures: Mapped[list[Signature]] = relationship(
        primaryjoin="and_(Document.id == Signature.document_id, Signature.superseded_at.is_(None))",
        order_by="Signature.id",
        viewonly=True,
    )


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))  # sniffed from the bytes
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    document: Mapped[Document] = relationship(back_populates="attachments")


class Signature(Base):
    """An electronic signature (the claim, the check, an approval): the tokens the IdP issued
    for the confirmed transaction and the phone-signed evidence behind it."""

    __tablename__ = "signatures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"))
    action: Mapped[str] = mapped_column(String(16))  # claim, check, approve-1 or approve-2
    signer_sub: Mapped[str] = mapped_column(String(64))
    signer_name: Mapped[str] = mapped_column(String(200))
    substitute_for: Mapped[str | None] = mapped_column(String(64))
    access_token: Mapped[str] = mapped_column(Text)
    # The ID token of the confirmation: the signer's name, signed by the IdP.
    id_token: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    txn_hash: Mapped[str] = mapped_column(String(64))
    document_sha256: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # A claim sent back for correction: kept (evidence is never deleted), no longer standing.
    superseded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    document: Mapped[Document] = relationship()


class PortalSession(Base):
    __tablename__ = "portal_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sub: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # From the ID token: the IdP username and the unit the account was issued for.
    username: Mapped[str] = mapped_column(String(64), default="")
    unit: Mapped[str | None] = mapped_column(String(10))
    sid: Mapped[str | None] = mapped_column(String(128), index=True)  # the IdP session
    roles: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    id_token: Mapped[str] = mapped_column(Text)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_reason: Mapped[str | None] = mapped_column(String(32))


class RevokedSid(Base):
    """IdP sessions that ended (back-channel logout): a login finishing with one of them
    afterwards gets no portal session."""

    __tablename__ = "revoked_sids"

    sid: Mapped[str] = mapped_column(String(128), primary_key=True)
    revoked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuthRequest(Base):
    """A trip to the IdP the portal waits for: a login, or the confirmation of one approval.
    Used once (``used_at``), so a second callback with the same state does nothing."""

    __tablename__ = "auth_requests"

    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64))
    code_verifier: Mapped[str] = mapped_column(String(128))
    purpose: Mapped[str] = mapped_column(String(16))  # login or approve
    session_id: Mapped[str | None] = mapped_column(String(64))
    document_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str | None] = mapped_column(String(16))
    document_sha256: Mapped[str | None] = mapped_column(String(64))
    authorization_details: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PhoneApproval(Base):
    """One approval sent to the approver's phone through CIBA (poll mode): the portal polls the
    IdP's token endpoint for it, no more often than the IdP's interval, while the approver's
    browser shows the waiting page. ``outcome`` is set once: signed, denied, expired or
    failed."""

    __tablename__ = "phone_approvals"

    ref: Mapped[str] = mapped_column(String(64), primary_key=True)
    auth_req_id: Mapped[str] = mapped_column(String(255))
    session_id: Mapped[str] = mapped_column(String(64))
    document_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    document_sha256: Mapped[str] = mapped_column(String(64))
    authorization_details: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    binding_message: Mapped[str] = mapped_column(String(64))
    interval: Mapped[int] = mapped_column(Integer)
    next_poll_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(16))


class KnownPerson(Base):
    """A person's names as the IdP last released them (userinfo with ``profile``), so pages
    show people by name in the page's language, never by ``sub``."""

    __tablename__ = "known_people"

    sub: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_th: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class KnownUnit(Base):
    """A disbursement unit's names as the IdP last released them (``gfms_directory``)."""

    __tablename__ = "known_units"

    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    name_th: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
