"""Rich authorization requests (RFC 9396) for transaction confirmation: what a relying app asks
the user to approve on the phone, e.g. one payment approval in GFMIS.

The types are strict (RFC 9396 §5: unknown types and malformed objects are refused with
``invalid_authorization_details``), because what the phone shows and signs must be exactly what
the app will act on.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from decimal import InvalidOperation
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error

PAYMENT_APPROVAL = "gfmis_payment_approval"
SUPPORTED_TYPES = (PAYMENT_APPROVAL,)
MAX_DETAILS = 5

_DOCUMENT_NUMBER = re.compile(r"[A-Za-z0-9][A-Za-z0-9/-]{0,31}")
_UNIT_CODE = re.compile(r"[0-9]{10}")
# claim and check: the claimant's and the finance officer's e-signatures (กค 0402.2/ว 3).
_ACTIONS = frozenset({"approve", "approve-1", "approve-2", "claim", "check"})
_PAYMENT_FIELDS = frozenset(
    {
        "type",
        "actions",
        "document_number",
        "amount",
        "payee",
        "unit",
        "kind",
        "description",
        "document_sha256",
    }
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MAX_AMOUNT = Decimal("999999999999.99")


class InvalidAuthorizationDetailsError(OAuth2Error):
    error = "invalid_authorization_details"  # RFC 9396 §5


def parse_authorization_details(value: str | None) -> list[dict[str, Any]] | None:
    """The request's ``authorization_details``, checked and in canonical form, or None.

    Raises:
        InvalidAuthorizationDetailsError
    """
    if value is None:
        return None
    try:
        details = json.loads(value)
    except ValueError as exc:
        raise InvalidAuthorizationDetailsError("'authorization_details' is not JSON.") from exc
    if not isinstance(details, list) or not 1 <= len(details) <= MAX_DETAILS:
        raise InvalidAuthorizationDetailsError(
            f"'authorization_details' must be an array of 1 to {MAX_DETAILS} objects."
        )
    return [_checked(item) for item in details]


def _checked(item: object) -> dict[str, Any]:
    if not isinstance(item, dict) or item.get("type") not in SUPPORTED_TYPES:
        raise InvalidAuthorizationDetailsError("Unknown authorization details type.")
    unknown = set(item) - _PAYMENT_FIELDS
    if unknown:
        raise InvalidAuthorizationDetailsError(f"Unknown fields: {', '.join(sorted(unknown))}.")
    document = item.get("document_number")
    payee = item.get("payee")
    actions = item.get("actions", ["approve"])
    if not isinstance(document, str) or not _DOCUMENT_NUMBER.fullmatch(document):
        raise InvalidAuthorizationDetailsError("'document_number' is missing or malformed.")
    if not isinstance(payee, str) or not 1 <= len(payee.strip()) <= 200:
        raise InvalidAuthorizationDetailsError("'payee' is missing or too long.")
    if not isinstance(actions, list) or not actions or not set(actions) <= _ACTIONS:
        raise InvalidAuthorizationDetailsError("'actions' holds an unknown action.")
    checked: dict[str, Any] = {
        "type": PAYMENT_APPROVAL,
        "actions": sorted(set(actions)),
        "document_number": document,
        "amount": _amount(item.get("amount")),
        "payee": " ".join(payee.split()),
    }
    unit = item.get("unit")
    if unit is not None:
        if not isinstance(unit, str) or not _UNIT_CODE.fullmatch(unit):
            raise InvalidAuthorizationDetailsError("'unit' must be a 10-digit unit code.")
        checked["unit"] = unit
    # What the person reads before approving (the document's kind, in words) and the hash of
    # the whole document that the phone's signature binds to it.
    kind = item.get("kind")
    if kind is not None:
        if not isinstance(kind, str) or not 1 <= len(kind.strip()) <= 100:
            raise InvalidAuthorizationDetailsError("'kind' is empty or too long.")
        checked["kind"] = " ".join(kind.split())
    digest = item.get("document_sha256")
    if digest is not None:
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise InvalidAuthorizationDetailsError("'document_sha256' must be 64 hex digits.")
        checked["document_sha256"] = digest
    description = item.get("description")
    if description is not None:
        if not isinstance(description, str) or len(description) > 300:
            raise InvalidAuthorizationDetailsError("'description' is too long.")
        checked["description"] = " ".join(description.split())
    return checked


def _amount(value: object) -> dict[str, str]:
    """Amounts are decimal strings in THB (never floats: 0.1 + 0.2 is not money)."""
    if not isinstance(value, dict) or set(value) != {"value", "currency"}:
        raise InvalidAuthorizationDetailsError("'amount' must be {value, currency}.")
    if value["currency"] != "THB":
        raise InvalidAuthorizationDetailsError("Only amounts in THB are supported.")
    raw = value["value"]
    if not isinstance(raw, str) or not re.fullmatch(r"[0-9]{1,12}(\.[0-9]{1,2})?", raw):
        raise InvalidAuthorizationDetailsError("'amount.value' must be a decimal string.")
    try:
        amount = Decimal(raw)
    except InvalidOperation as exc:
        raise InvalidAuthorizationDetailsError("'amount.value' is not a number.") from exc
    if not Decimal(0) < amount <= _MAX_AMOUNT:
        raise InvalidAuthorizationDetailsError("'amount.value' is out of range.")
    return {"value": f"{amount:.2f}", "currency": "THB"}
