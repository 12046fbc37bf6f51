"""The archive: a document with its signatures as one self-contained JSON bundle, checked
offline against the IdP's published keys and the device keys the evidence names.

Everything in a bundle is covered by a signature or checked against something that is:
the document (and each attachment's bytes, through its SHA-256) by the document hash that
every approver's phone signed inside the confirmed details; each signature's evidence by the
phone's key; each access token, binding the evidence to the signer, by the IdP's key.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from gfms_portal.documents import TRANSITIONS
from gfms_portal.documents import build_authorization_details
from gfms_portal.documents import document_content
from gfms_portal.documents import document_sha256
from gfms_portal.errors import EvidenceInvalidError
from gfms_portal.evidence import sha256_hex
from gfms_portal.evidence import verify_evidence
from gfms_portal.models import Document

FORMAT = "gfms-portal-bundle/1"
_ALGORITHMS = ["ES256", "RS256"]
EVIDENCE_FIELDS = ("txn", "sub", "client_id", "authorization_details", "confirmed_at",
                   "txn_hash", "device", "signed_answer")  # fmt: skip
_CLOCK_SKEW = 300


def export_bundle(document: Document, *, issuer: str, client_id: str,
                  jwks: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The document, its attachments (base64), every signature's token and evidence, and
    the IdP's key set as published at export time."""
    content = document_content(document)
    return {
        "format": FORMAT,
        "issuer": issuer,
        "client_id": client_id,
        "document": content,
        "document_sha256": document_sha256(content),
        "attachments": [
            {"sha256": a.sha256, "content": base64.b64encode(a.content).decode()}
            for a in document.attachments
        ],
        "signatures": [
            {
                "action": s.action,
                "access_token": s.access_token,
                "evidence": archived_evidence(s.evidence),
            }
            for s in document.signatures
        ],
        "idp_jwks": jwks,
    }


def archived_evidence(evidence: dict[str, Any]) -> dict[str, Any]:
    """Only what is signed or checked against something signed: the details and their hash,
    the phone's JWS and its public key, the ids the IdP's token binds, and the time (checked
    against the time inside the phone's answer)."""
    return {
        **{name: evidence[name] for name in EVIDENCE_FIELDS if name != "device"},
        "device": {"jwk": evidence["device"]["jwk"]},
    }


@dataclass
class Report:
    ok: bool = True
    lines: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.ok = False
        self.lines.append(f"FAIL {message}")

    def good(self, message: str) -> None:
        self.lines.append(f"ok   {message}")


def verify_bundle(data: bytes, *, jwks: dict[str, Any] | None = None) -> Report:
    """Check a bundle offline. ``jwks``: the IdP's published key set to trust (by default the
    one archived in the bundle, which must then be compared with the IdP's own record)."""
    report = Report()
    try:
        bundle = json.loads(data.decode("utf-8"))
        if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
            raise ValueError("format")
        keys = KeySet.import_key_set(jwks or bundle["idp_jwks"])  # type: ignore[arg-type]
        content = bundle["document"]
        issuer, client_id = bundle["issuer"], bundle["client_id"]
        attachments, signatures = bundle["attachments"], bundle["signatures"]
    except (KeyError, TypeError, ValueError, JoseError) as exc:
        report.fail(f"not a readable bundle ({exc.__class__.__name__})")
        return report
    digest = document_sha256(content)
    if digest != bundle.get("document_sha256"):
        report.fail("document hash does not match the document")
    else:
        report.good(f"document {content.get('number')} sha256 {digest}")
    _check_attachments(report, content, attachments)
    done = {s.get("action") for s in signatures if isinstance(s, dict)}
    if len(done) != len(signatures) or not done <= set(TRANSITIONS):
        report.fail("unexpected or repeated signatures")
    if not signatures:
        report.fail("no signatures")
    for signature in signatures:
        _check_signature(report, signature, content, keys, issuer=issuer, client_id=client_id)
    return report


def _only_archived_fields(evidence: dict[str, Any]) -> bool:
    return set(evidence) == set(EVIDENCE_FIELDS) and set(evidence["device"]) == {"jwk"}


def _check_attachments(report: Report, content: dict[str, Any], attachments: Any) -> None:
    listed = [a.get("sha256") for a in content.get("attachments", [])]
    if not isinstance(attachments, list) or len(attachments) != len(listed):
        report.fail("attachments do not match the document")
        return
    for expected, attachment in zip(listed, attachments, strict=True):
        try:
            actual = sha256_hex(base64.b64decode(attachment["content"], validate=True))
        except (KeyError, TypeError, binascii.Error):
            actual = ""
        if actual != expected or attachment.get("sha256") != expected:
            report.fail(f"attachment {expected} altered")
        else:
            report.good(f"attachment sha256 {expected}")


def _check_signature(
    report: Report, signature: dict[str, Any], content: dict[str, Any], keys: KeySet, *,
    issuer: str, client_id: str,
) -> None:  # fmt: skip
    action = str(signature.get("action"))
    try:
        expected = build_authorization_details(content, action)
        decoded = jwt.decode(signature["access_token"], keys, algorithms=_ALGORITHMS)
        claims = dict(decoded.claims)
        evidence = signature["evidence"]
        answer = verify_evidence(evidence)
        confirmed_at = datetime.fromisoformat(evidence["confirmed_at"]).timestamp()
    except EvidenceInvalidError as exc:
        report.fail(f"{action}: {exc.detail}")
        return
    except (KeyError, TypeError, ValueError, JoseError):
        report.fail(f"{action}: the IdP's signature on the token does not verify")
        return
    # Archival: expiry does not matter, who issued it, for whom and what it confirmed does.
    problems = [
        name
        for name, good in (
            ("typ", str(decoded.header.get("typ", "")).lower() == "at+jwt"),
            ("iss", claims.get("iss") == issuer),
            ("aud", claims.get("aud") == client_id or client_id in (claims.get("aud") or [])),
            ("txn", claims.get("txn") == evidence.get("txn")),
            ("sub", claims.get("sub") == evidence.get("sub")),
            ("acr", str(claims.get("acr", "")).endswith("/acr/aal2-softtoken-txn")),
            ("details", claims.get("authorization_details") == expected),
            ("evidence", evidence.get("authorization_details") == expected),
            ("client_id", evidence.get("client_id") == client_id),
            (
                "fields",
                set(evidence) == set(EVIDENCE_FIELDS) and set(evidence["device"]) == {"jwk"},
            ),
            ("confirmed_at", abs(confirmed_at - float(answer.get("iat", 0))) <= _CLOCK_SKEW),
        )
        if not good
    ]
    if problems:
        report.fail(f"{action}: does not match the document ({', '.join(problems)})")
        return
    report.good(
        f"{action} by {claims.get('sub')} confirmed on the phone at {evidence['confirmed_at']}"
        f" (txn {evidence.get('txn')})"
    )
