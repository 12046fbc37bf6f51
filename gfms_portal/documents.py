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

# The kinds of expense of ข้อ ๑.๑ (the letter says "such as" (เช่น): "other" is allowed too).
TYPES = (
    "travel",
    "meeting_allowance",
    "housing_rent",
    "medical_welfare",
    "child_education_welfare",
    "training",
    "overtime",
    "other",
)
PAYMENT_APPROVAL = "gfmis_payment_approval"
CLAIM, CHECK, APPROVE_1, APPROVE_2 = "claim", "check", "approve-1", "approve-2"
CLAIMANT = "claimant"  # not an IdP role: the person the request names as entitled to claim
# The one transition each signature makes (a state machine that refuses any other move).
TRANSITIONS: dict[str, tuple[tuple[Status, ...], Status]] = {
    CLAIM: ((Status.RECORDED, Status.RETURNED), Status.SUBMITTED),
    CHECK: ((Status.SUBMITTED,), Status.CHECKED),
    APPROVE_1: ((Status.CHECKED,), Status.WITHDRAWAL_APPROVED),
    APPROVE_2: ((Status.WITHDRAWAL_APPROVED,), Status.PAYMENT_APPROVED),
}
EDITABLE = (Status.RECORDED, Status.RETURNED)


@dataclass(frozen=True)
class SigningRule:
    """One signature a document needs: who may give it and which rule requires it."""

    action: str
    role: str  # the IdP role held in the document's unit, or CLAIMANT
    reason: str

    def requirement(self, content: dict[str, Any]) -> str:
        if self.role == CLAIMANT:
            claimant = (content.get("claimant") or {}).get("username")
            return (f"the signer is not the claimant named in the document ({claimant})"
                    f" of unit {content.get('unit')}")  # fmt: skip
        return f"the signer did not hold the {self.role} role in unit {content.get('unit')}"


# The Ministry of Finance's letter กค 0402.2/ว 3 (6 January 2025) on e-Fiscal documents: the
# four signatures of every request, in this order.
SIGNING_RULES = (
    SigningRule(CLAIM, CLAIMANT,
                "กค 0402.2/ว 3 ข้อ 1.2: the person entitled submits and signs the request"
                " (ผู้มีสิทธิยื่นคำขอเบิกลงลายมือชื่ออิเล็กทรอนิกส์)"),
    SigningRule(CHECK, "recorder",
                "กค 0402.2/ว 3 ข้อ 1.3: the finance officer signs that it was checked"
                " (เจ้าหน้าที่การเงินตรวจสอบความถูกต้อง)"),
    SigningRule(APPROVE_1, "approve-1",
                "กค 0402.2/ว 3 ข้อ 2: approval of the withdrawal (อนุมัติการเบิกเงิน)"),
    SigningRule(APPROVE_2, "approve-2",
                "กค 0402.2/ว 3 ข้อ 2: approval of the payment (อนุมัติการจ่ายเงิน)"),
)  # fmt: skip
RULES = {rule.action: rule for rule in SIGNING_RULES}


def held_role(
    claims: dict[str, Any], id_claims: dict[str, Any], content: dict[str, Any], rule: SigningRule
) -> dict[str, str] | None:
    """What the IdP's tokens say the signer was when they were issued, for this signature:
    the role held in the document's unit (``substitute_for`` when acting for someone), or for
    the claim the claimant named in the document, an account of that unit. None if not."""
    unit = content.get("unit")
    if rule.role == CLAIMANT:
        claimant = (content.get("claimant") or {}).get("username")
        if (claimant and id_claims.get("preferred_username") == claimant
                and id_claims.get("gfms_unit") == unit):  # fmt: skip
            return {"role": CLAIMANT, "unit": str(unit)}
        return None
    roles = claims.get("gfms_roles")
    for role in roles if isinstance(roles, list) else []:
        if isinstance(role, dict) and role.get("role") == rule.role and role.get("unit") == unit:
            return {k: str(v) for k, v in role.items()}
    return None


_USERNAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
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
    username: str = ""
    unit: str | None = None  # the unit the account was issued for

    def holds(self, role: str, unit: str) -> dict[str, str] | None:
        return next((r for r in self.roles if r.get("role") == role and r.get("unit") == unit),
                    None)  # fmt: skip

    def units(self) -> set[str]:
        return {r["unit"] for r in self.roles if "unit" in r}

    def may_see(self, document: Document) -> bool:
        """A unit's documents to those with a role there; a claim to its claimant."""
        return document.unit in self.units() or (
            bool(self.username) and document.claimant_username == self.username
        )


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
    max_bytes: int, form_id: str | None = None, claimant: str = "",
) -> Document:  # fmt: skip
    """A civil servant keys in their own request in their unit, or a recorder keys one in for
    a claimant of one of their units; it gets its number at once and becomes a claim only
    when the claimant signs it.

    Raises:
        InvalidDocumentError, NotAllowedError
    """
    draft = validate_draft(draft)
    claimant = claimant.strip() or person.username
    if not _USERNAME.fullmatch(claimant):
        raise InvalidDocumentError("claimant")
    if claimant == person.username and person.unit == draft.unit:
        pass  # their own claim, in the unit their account was issued for
    elif person.holds("recorder", draft.unit) is None:
        raise NotAllowedError("recorder")
    document = Document(type=draft.type, unit=draft.unit, amount=draft.amount,
                        payee=draft.payee, description=draft.description,
                        recorder_sub=person.sub, recorder_name=person.name,
                        claimant_username=claimant, form_id=form_id,
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
    """The one who keyed it in, or its claimant, while it is not yet a claim or was sent back
    and nobody signed it since.

    Raises:
        NotAllowedError, EditingClosedError
    """
    # Only its author or its claimant corrects it: another recorder's change would put words
    # in the claimant's mouth that the claimant then signs unawares.
    keyed = document.recorder_sub == person.sub
    if not (keyed or (bool(person.username) and document.claimant_username == person.username)):
        raise NotAllowedError("recorder")
    if document.status not in EDITABLE or document.signatures:
        raise EditingClosedError("approved")


def edit_document(
    db: Session, document: Document, person: Person, draft: Draft, uploads: list[Upload], *,
    now: datetime, max_bytes: int,
) -> Document:  # fmt: skip
    """The one who keyed it in, or its claimant, corrects a request not yet a claim or sent
    back for correction.

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


def may_edit(document: Document, person: Person) -> bool:
    try:
        check_may_edit(document, person)
    except NotAllowedError:
        return False
    return True


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
    """What every signer signs: every recorded field and each attachment's SHA-256 (never the
    status or the signatures, which the approvals add)."""
    return {
        "number": document.number,
        "type": document.type,
        "unit": document.unit,
        "amount": {"value": document.amount, "currency": "THB"},
        "payee": document.payee,
        "description": document.description,
        "recorder": {"sub": document.recorder_sub, "name": document.recorder_name},
        "claimant": {"username": document.claimant_username},
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
    """Per document, one person gives at most one of the four signatures: neither themselves
    nor as someone's substitute (nor for someone who gave another one).

    Raises:
        SeparationOfDutiesError
    """
    acting = {person.sub, role.get("substitute_for")} - {None}
    for signature in document.signatures:
        if signature.action == action:
            continue
        signed = {signature.signer_sub, signature.substitute_for} - {None}
        if acting & signed:
            raise SeparationOfDutiesError(signature.action)


def check_may_sign(document: Document, person: Person, action: str) -> dict[str, str]:
    """The signer is who the signing rule names (the claimant; or a holder of the role in
    the document's unit), the document waits for this signature, and separation of duties
    allows it. Returns the role held.

    Raises:
        NotAllowedError, SeparationOfDutiesError
    """
    rule = RULES.get(action)
    if rule is None:
        raise NotAllowedError("action")
    if rule.role == CLAIMANT:
        if not person.username or person.username != document.claimant_username:
            raise NotAllowedError("claimant")
        if person.unit != document.unit:
            raise NotAllowedError("unit")
        role: dict[str, str] | None = {"role": CLAIMANT, "unit": document.unit}
    else:
        role = person.holds(rule.role, document.unit)
    if role is None:
        raise NotAllowedError("role")
    if document.status not in TRANSITIONS[action][0]:
        raise NotAllowedError("status")
    check_separation_of_duties(document, person, action, role)
    return role


def send_back(db: Session, document: Document, person: Person, reason: str, *,
              now: datetime) -> Document:  # fmt: skip
    """The finance officer returns a signed claim for correction, saying why; the claim
    signature stays on file, superseded, and the claimant signs again after correcting.

    Raises:
        InvalidDocumentError, NotAllowedError, SeparationOfDutiesError
    """
    reason = " ".join(reason.split())
    if not 1 <= len(reason) <= 500:
        raise InvalidDocumentError("reason")
    # The same checks as for signing "checked": only the one who may check may send back.
    check_may_sign(document, person, CHECK)
    moved = db.execute(
        update(Document)
        .where(Document.id == document.id, Document.status == Status.SUBMITTED,
               Document.version == document.version)
        .values(status=Status.RETURNED, return_reason=reason, returned_by_name=person.name,
                returned_at=now, updated_at=now, version=document.version + 1)
    )  # fmt: skip
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise NotAllowedError("status")
    db.execute(
        update(Signature)
        .where(Signature.document_id == document.id, Signature.superseded_at.is_(None))
        .values(superseded_at=now)
    )
    db.flush()
    db.refresh(document)
    return document


def record_signature(
    db: Session,
    document: Document,
    *,
    action: str,
    requested_sha256: str,
    requested_details: list[dict[str, Any]],
    access_claims: dict[str, Any],
    access_token: str,
    id_token: str,
    id_claims: dict[str, Any],
    evidence: dict[str, Any],
    signer_name: str,
    now: datetime,
) -> Signature:
    """Keep the signer's electronic signature and move the document on, once everything the
    phone confirmed is what the portal holds now.

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
    person = Person(sub=sub, name=signer_name, roles=roles,
                    username=str(id_claims.get("preferred_username") or ""),
                    unit=id_claims.get("gfms_unit"))  # fmt: skip
    role = check_may_sign(document, person, action)
    before, after = TRANSITIONS[action]
    # One transition per document and action, even for two callbacks racing, and only for
    # the version the hash was taken of: an edit that landed meanwhile wins the race.
    moved = db.execute(
        update(Document)
        .where(Document.id == document.id, Document.status.in_(before),
               Document.version == document.version)
        .values(status=after, updated_at=now, version=document.version + 1)
    )  # fmt: skip
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise NotAllowedError("status")
    signature = Signature(
        document_id=document.id, action=action, signer_sub=sub, signer_name=signer_name,
        substitute_for=role.get("substitute_for") or None, access_token=access_token,
        id_token=id_token, evidence=evidence, txn_hash=details_hash(expected),
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


def claims_of(db: Session, username: str) -> list[Document]:
    if not username:
        return []
    query = select(Document).where(Document.claimant_username == username)
    return list(db.scalars(query.order_by(Document.id.desc())))
