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
from gfms_portal.evidence import bound_to_token
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
    """Check a bundle offline against ``jwks``, the IdP's published key set obtained from the
    IdP itself (the copy archived in the bundle is for the record, never trusted)."""
    report = Report()
    if jwks is None:
        # Keys found in the file prove nothing about who signed it: whoever made the file
        # could have made them too.
        report.fail("no trusted IdP keys: give --jwks FILE (the IdP's published /jwks.json)")
        return report
    try:
        bundle = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
        if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
            raise ValueError("format")
        keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        content = bundle["document"]
        issuer, client_id = bundle["issuer"], bundle["client_id"]
        attachments, signatures = bundle["attachments"], bundle["signatures"]
        if not isinstance(content, dict) or not isinstance(signatures, list):
            raise TypeError("shape")
        if not all(isinstance(s, dict) for s in signatures):
            raise TypeError("shape")
    except (KeyError, TypeError, ValueError, JoseError) as exc:
        report.fail(f"not a readable bundle ({exc.__class__.__name__})")
        return report
    try:
        _check_bundle(report, bundle, content, attachments, signatures, keys,
                      issuer=issuer, client_id=client_id)  # fmt: skip
    except (KeyError, TypeError, ValueError, AttributeError, JoseError) as exc:
        report.fail(f"malformed bundle ({exc.__class__.__name__})")
    return report


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A key given twice reads one way to a person and another to a program: refused."""
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("a key appears twice")
    return dict(pairs)


def _check_bundle(
    report: Report, bundle: dict[str, Any], content: dict[str, Any], attachments: Any,
    signatures: list[dict[str, Any]], keys: KeySet, *, issuer: str, client_id: str,
) -> None:  # fmt: skip
    digest = document_sha256(content)
    if digest != bundle.get("document_sha256"):
        report.fail("document hash does not match the document")
    else:
        report.good(f"document {content.get('number')} sha256 {digest}")
    _check_attachments(report, content, attachments)
    actions = [s.get("action") for s in signatures]
    # In order, each once: withdrawal (approve-1) before payment (approve-2).
    if not signatures or actions != list(TRANSITIONS)[: len(actions)]:
        report.fail("unexpected, repeated or out-of-order signatures")
    signers = []
    for signature in signatures:
        signer = _check_signature(report, signature, content, keys, issuer=issuer,
                                  client_id=client_id)  # fmt: skip
        if signer:
            signers.append(signer)
    recorder = (content.get("recorder") or {}).get("sub")
    # Separation of duties, as the portal enforced it: the recorder never approves, one person
    # never gives both approvals, in person or as a substitute.
    people = [person for signer in signers for person in signer]
    if recorder in people or len(set(people)) != len(people):
        report.fail("separation of duties: one person in two roles of this document")


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
) -> tuple[str, ...] | None:  # fmt: skip
    """Report on one signature; return who gave it (the signer, and whom they acted for)."""
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
        return None
    except (KeyError, TypeError, ValueError, JoseError):
        report.fail(f"{action}: the IdP's signature on the token does not verify")
        return None
    # Archival: expiry does not matter, who issued it, for whom and what it confirmed does.
    problems = [
        name
        for name, good in (
            ("typ", str(decoded.header.get("typ", "")).lower() == "at+jwt"),
            ("iss", claims.get("iss") == issuer),
            ("aud", client_id in _audiences(claims.get("aud"))),
            ("binding", bound_to_token(evidence, claims)),
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
        return None
    acted_for = [
        str(role["substitute_for"]) for role in claims.get("gfms_roles") or []
        if isinstance(role, dict) and role.get("substitute_for")
    ]  # fmt: skip
    report.good(
        f"{action} by {claims.get('sub')} confirmed on the phone at {evidence['confirmed_at']}"
        f" (txn {evidence.get('txn')})"
    )
    return (str(claims.get("sub")), *acted_for)


def _audiences(aud: object) -> list[str]:
    """RFC 7519 §4.1.3: one string or a list of them; never a substring match."""
    if isinstance(aud, str):
        return [aud]
    return [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []
