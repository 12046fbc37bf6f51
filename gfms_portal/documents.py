"""Disbursement requests (e-Fiscal): recording, the document's hash, the transaction an
approver confirms on the phone, separation of duties per document and the signature that
moves a document on. Works on a SQLAlchemy ``Session``; never reads the request."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from decimal import Decimal
from decimal import InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

import thai_format
from gfms_portal.errors import ConfirmationMismatchError
from gfms_portal.errors import EditingClosedError
from gfms_portal.errors import InvalidDocumentError
from gfms_portal.errors import NotAllowedError
from gfms_portal.errors import SeparationOfDutiesError
from gfms_portal.evidence import bound_to_token
from gfms_portal.evidence import canonical_json
from gfms_portal.evidence import details_hash
from gfms_portal.evidence import sha256_hex
from gfms_portal.evidence import verify_evidence
from gfms_portal.filenames import keep_filename
from gfms_portal.i18n import translate
from gfms_portal.models import Attachment
from gfms_portal.models import Document
from gfms_portal.models import Signature
from gfms_portal.models import Status

# The e-Fiscal rule's kinds of disbursement request.
TYPES = (
    "travel",
    "meeting_allowance",
    "housing_rent",
    "medical_welfare",
    "child_education_welfare",
    "training",
    "overtime",
)
PAYMENT_APPROVAL = "gfmis_payment_approval"
APPROVE_1, APPROVE_2 = "approve-1", "approve-2"
# The one transition each approval makes (a state machine that refuses any other move).
TRANSITIONS = {
    APPROVE_1: (Status.RECORDED, Status.WITHDRAWAL_APPROVED),
    APPROVE_2: (Status.WITHDRAWAL_APPROVED, Status.PAYMENT_APPROVED),
}
_SHOWN_DESCRIPTION = 300
_AMOUNT = re.compile(r"[0-9]{1,12}(\.[0-9]{1,2})?")
_MAX_AMOUNT = Decimal("999999999999.99")
_SNIFF = ((b"%PDF-", "application/pdf"), (b"\x89PNG\r\n\x1a\n", "image/png"),
          (b"\xff\xd8\xff", "image/jpeg"))  # fmt: skip


@dataclass(frozen=True)
class Draft:
    type: str
    amount: str
    payee: str
    description: str
    unit: str


@dataclass(frozen=True)
class Upload:
    filename: str
    content: bytes


@dataclass(frozen=True)
class Person:
    sub: str
    name: str
    roles: tuple[dict[str, str], ...]

    def holds(self, role: str, unit: str) -> dict[str, str] | None:
        return next((r for r in self.roles if r.get("role") == role and r.get("unit") == unit),
                    None)  # fmt: skip

    def units(self) -> set[str]:
        return {r["unit"] for r in self.roles if "unit" in r}


def validate_draft(draft: Draft) -> Draft:
    """Canonical values or InvalidDocumentError: a known type, a positive THB amount as a
    decimal string with two places, a payee of 1-200 characters (spaces folded, as the IdP
    folds them in what the phone shows)."""
    if draft.type not in TYPES:
        raise InvalidDocumentError("type")
    raw = draft.amount.replace(",", "").strip()
    if not _AMOUNT.fullmatch(raw):
        raise InvalidDocumentError("amount")
    try:
        amount = Decimal(raw)
    except InvalidOperation as exc:
        raise InvalidDocumentError("amount") from exc
    if not Decimal(0) < amount <= _MAX_AMOUNT:
        raise InvalidDocumentError("amount")
    payee = " ".join(draft.payee.split())
    if not 1 <= len(payee) <= 200:
        raise InvalidDocumentError("payee")
    description = " ".join(draft.description.split())
    if len(description) > 1000:
        raise InvalidDocumentError("description")
    if not re.fullmatch(r"[0-9]{10}", draft.unit):
        raise InvalidDocumentError("unit")
    return Draft(draft.type, f"{amount:.2f}", payee, description, draft.unit)


def sniff(content: bytes) -> str:
    """The attachment's type by its bytes (PDF, PNG, JPEG), never by its name.

    Raises:
        InvalidDocumentError
    """
    for magic, kind in _SNIFF:
        if content.startswith(magic):
            return kind
    raise InvalidDocumentError("attachment_type")


def record_document(
    db: Session, person: Person, draft: Draft, uploads: list[Upload], *, now: datetime,
    max_bytes: int, form_id: str | None = None,
) -> Document:  # fmt: skip
    """A recorder records a request in one of their units; it gets its number at once.

    Raises:
        InvalidDocumentError, NotAllowedError
    """
    draft = validate_draft(draft)
    if person.holds("recorder", draft.unit) is None:
        raise NotAllowedError("recorder")
    document = Document(type=draft.type, unit=draft.unit, amount=draft.amount,
                        payee=draft.payee, description=draft.description,
                        recorder_sub=person.sub, recorder_name=person.name, form_id=form_id,
                        status=Status.RECORDED, created_at=now, updated_at=now)  # fmt: skip
    db.add(document)
    db.flush()
    # The Buddhist-era year of the day in Thailand; letters, digits and dashes only (what a
    # payment approval may carry).
    year = thai_format.in_thailand(now).year + thai_format.BE_OFFSET
    document.number = f"{draft.unit[-4:]}-{year}-{document.id:06d}"
    _attach(db, document, uploads, now=now, max_bytes=max_bytes)
    db.flush()
    return document


def recorded_from(db: Session, form_id: str, person: Person) -> Document | None:
    """The request this person already recorded from this form, if any (a double submit)."""
    return db.scalar(
        select(Document).where(Document.form_id == form_id, Document.recorder_sub == person.sub)
    )


def check_may_edit(document: Document, person: Person) -> None:
    """Its own recorder, before anybody approved it.

    Raises:
        NotAllowedError, EditingClosedError
    """
    # Only the one who recorded it corrects it: another recorder's change would make them the
    # document's author without the recorder's separation of duties.
    if person.holds("recorder", document.unit) is None or document.recorder_sub != person.sub:
        raise NotAllowedError("recorder")
    if document.status != Status.RECORDED or document.signatures:
        raise EditingClosedError("approved")


def edit_document(
    db: Session, document: Document, person: Person, draft: Draft, uploads: list[Upload], *,
    now: datetime, max_bytes: int,
) -> Document:  # fmt: skip
    """The recorder corrects a request nobody approved yet.

    Raises:
        InvalidDocumentError, NotAllowedError
    """
    draft = validate_draft(Draft(draft.type, draft.amount, draft.payee, draft.description,
                                 document.unit))  # fmt: skip
    check_may_edit(document, person)
    document.type, document.amount = draft.type, draft.amount
    document.payee, document.description = draft.payee, draft.description
    document.updated_at = now
    _attach(db, document, uploads, now=now, max_bytes=max_bytes)
    try:
        db.flush()  # the version column: an approval that landed meanwhile makes this stale
    except StaleDataError as exc:
        raise NotAllowedError("approved") from exc
    return document


def _attach(
    db: Session, document: Document, uploads: list[Upload], *, now: datetime, max_bytes: int
) -> None:
    for upload in uploads:
        if not upload.content:
            continue
        if len(upload.content) > max_bytes:
            raise InvalidDocumentError("attachment_size")
        name = keep_filename(upload.filename)
        db.add(Attachment(document=document, filename=name, content_type=sniff(upload.content),
                          size=len(upload.content), sha256=sha256_hex(upload.content),
                          content=upload.content, created_at=now))  # fmt: skip
    db.flush()


def document_content(document: Document) -> dict[str, Any]:
    """What an approver signs: every recorded field and each attachment's SHA-256 (never the
    status or the signatures, which the approvals add)."""
    return {
        "number": document.number,
        "type": document.type,
        "unit": document.unit,
        "amount": {"value": document.amount, "currency": "THB"},
        "payee": document.payee,
        "description": document.description,
        "recorder": {"sub": document.recorder_sub, "name": document.recorder_name},
        "created_at": _iso(document.created_at),
        "attachments": [
            {"filename": a.filename, "content_type": a.content_type, "size": a.size,
             "sha256": a.sha256}
            for a in document.attachments
        ],
    }  # fmt: skip


def _iso(moment: datetime) -> str:
    # SQLite hands back naive datetimes; the hash must not depend on the database.
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(microsecond=0).isoformat()


def document_sha256(content: dict[str, Any]) -> str:
    return sha256_hex(canonical_json(content))


def build_authorization_details(content: dict[str, Any], action: str) -> list[dict[str, Any]]:
    """The one transaction the approver confirms on the phone (RFC 9396): document number,
    amount, payee, unit and the action, the document's kind and description as the approver
    reads them, and the hash of the whole document, so the phone's signature covers every
    field and attachment too."""
    detail: dict[str, Any] = {
        "type": PAYMENT_APPROVAL,
        "actions": [action],
        "document_number": content["number"],
        "amount": content["amount"],
        "payee": content["payee"],
        "unit": content["unit"],
        # In Thai, the language the document is kept in.
        "kind": translate(f"type:{content['type']}", "th"),
        "document_sha256": document_sha256(content),
    }
    if content["description"]:
        detail["description"] = _shown(content["description"])
    return [detail]


def _shown(description: str) -> str:
    # What a phone can show (the IdP takes up to 300 characters); the hash binds the rest.
    if len(description) <= _SHOWN_DESCRIPTION:
        return description
    return description[: _SHOWN_DESCRIPTION - 1].rstrip() + "…"


def check_separation_of_duties(document: Document, person: Person, action: str,
                               role: dict[str, str]) -> None:  # fmt: skip
    """Per document: the recorder never approves it, and one person never gives both
    approvals, neither themselves nor as someone's substitute (nor for someone who did).

    Raises:
        SeparationOfDutiesError
    """
    acting = {person.sub, role.get("substitute_for")} - {None}
    if document.recorder_sub in acting:
        raise SeparationOfDutiesError("recorder")
    for signature in document.signatures:
        if signature.action == action:
            continue
        signed = {signature.signer_sub, signature.substitute_for} - {None}
        if acting & signed:
            raise SeparationOfDutiesError("both_approvals")


def check_may_approve(document: Document, person: Person, action: str) -> dict[str, str]:
    """The approver holds the action's role in the document's unit, the document waits for
    this approval, and separation of duties allows it. Returns the role held.

    Raises:
        NotAllowedError, SeparationOfDutiesError
    """
    if action not in TRANSITIONS:
        raise NotAllowedError("action")
    role = person.holds(action, document.unit)
    if role is None:
        raise NotAllowedError("role")
    if document.status != TRANSITIONS[action][0]:
        raise NotAllowedError("status")
    check_separation_of_duties(document, person, action, role)
    return role


def record_signature(
    db: Session,
    document: Document,
    *,
    action: str,
    requested_sha256: str,
    requested_details: list[dict[str, Any]],
    access_claims: dict[str, Any],
    access_token: str,
    evidence: dict[str, Any],
    signer_name: str,
    now: datetime,
) -> Signature:
    """Keep the approver's electronic signature and move the document on, once everything
    the phone confirmed is what the portal holds now.

    Raises:
        ConfirmationMismatchError, EvidenceInvalidError, NotAllowedError,
        SeparationOfDutiesError
    """
    content = document_content(document)
    # SECURITY: a document changed after the approver was asked (amount, payee, an
    # attachment) is not what the phone confirmed.
    if document_sha256(content) != requested_sha256:
        raise ConfirmationMismatchError("document_changed")
    expected = build_authorization_details(content, action)
    if requested_details != expected or access_claims.get("authorization_details") != expected:
        raise ConfirmationMismatchError("details")
    answer = verify_evidence(evidence)
    if (
        not bound_to_token(evidence, access_claims)
        or not str(access_claims.get("acr", "")).endswith("/acr/aal2-softtoken-txn")
        or evidence.get("authorization_details") != expected
        or evidence.get("txn") != access_claims.get("txn")
        or evidence.get("sub") != access_claims.get("sub")
        or evidence.get("client_id") != access_claims.get("client_id", evidence.get("client_id"))
        or not answer
    ):
        raise ConfirmationMismatchError("evidence")
    sub = str(access_claims["sub"])
    roles = tuple(access_claims.get("gfms_roles") or ())
    person = Person(sub=sub, name=signer_name, roles=roles)
    role = check_may_approve(document, person, action)
    before, after = TRANSITIONS[action]
    # One transition per document and action, even for two callbacks racing, and only for
    # the version the hash was taken of: an edit that landed meanwhile wins the race.
    moved = db.execute(
        update(Document)
        .where(Document.id == document.id, Document.status == before,
               Document.version == document.version)
        .values(status=after, updated_at=now, version=document.version + 1)
    )  # fmt: skip
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise NotAllowedError("status")
    signature = Signature(
        document_id=document.id, action=action, signer_sub=sub, signer_name=signer_name,
        substitute_for=role.get("substitute_for"), access_token=access_token,
        evidence=evidence, txn_hash=details_hash(expected),
        document_sha256=requested_sha256, signed_at=now,
    )  # fmt: skip
    db.add(signature)
    db.flush()
    db.refresh(document)
    return signature


def documents_for(db: Session, units: set[str]) -> list[Document]:
    if not units:
        return []
    query = select(Document).where(Document.unit.in_(sorted(units))).order_by(Document.id.desc())
    return list(db.scalars(query))
