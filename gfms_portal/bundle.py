"""The archive: a document with its signatures as one self-contained JSON bundle, checked
offline against the IdP's published keys and the device keys the evidence names.

Everything in a bundle is covered by a signature or checked against something that is:
the document (and each attachment's bytes, through its SHA-256) by the document hash that
every approver's phone signed inside the confirmed details; each signature's evidence by the
phone's key; each access token, binding the evidence to the signer, and each ID token,
naming the signer, by the IdP's key valid when it was issued. The signers' names in a bundle
are read from those ID tokens; who trusted what is decided by the verifier's trust anchor.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from typing import Any

from joserfc import jws
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key
from joserfc.jwk import import_key

from gfms_portal.documents import SIGNING_RULES
from gfms_portal.documents import SigningRule
from gfms_portal.documents import build_authorization_details
from gfms_portal.documents import document_content
from gfms_portal.documents import document_sha256
from gfms_portal.documents import held_role
from gfms_portal.errors import EvidenceInvalidError
from gfms_portal.errors import UntrustedKeyError
from gfms_portal.evidence import bound_to_token
from gfms_portal.evidence import sha256_hex
from gfms_portal.evidence import verify_evidence
from gfms_portal.models import Document

FORMAT = "gfms-portal-bundle/2"
EXPORT_FORMAT = "gfms-portal-export/1"
_ALGORITHMS = ["ES256", "RS256"]
EVIDENCE_FIELDS = ("txn", "sub", "client_id", "authorization_details", "confirmed_at",
                   "txn_hash", "device", "signed_answer")  # fmt: skip
_CLOCK_SKEW = 300


def export_bundle(document: Document, *, issuer: str, client_id: str,
                  jwks: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The document, its attachments (base64), every signature's tokens and evidence with
    the signer's name and the rule that required it, and the IdP's key history at export
    time (``issuer``, ``client_id`` and ``idp_jwks`` are for the record: never trusted)."""
    content = document_content(document)
    reasons = {rule.action: rule.reason for rule in SIGNING_RULES}
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
                "rule": reasons.get(s.action, ""),
                "signer": {
                    "sub": s.signer_sub,
                    "name": s.signer_name,
                    "substitute_for": s.substitute_for,
                },
                "signed_at": _iso(s.signed_at),
                "access_token": s.access_token,
                "id_token": s.id_token,
                "evidence": archived_evidence(s.evidence),
            }
            for s in document.signatures
        ],
        "idp_jwks": jwks,
    }


def _iso(moment: datetime) -> str:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


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
    # Each signature's outcome, by "<document number> <action>".
    signatures: dict[str, bool] = field(default_factory=dict)
    # The signatures a document does not carry yet, by document number (it is still on its way).
    unsigned: dict[str, list[str]] = field(default_factory=dict)

    def fail(self, message: str) -> None:
        self.ok = False
        self.lines.append(f"FAIL {message}")

    def good(self, message: str) -> None:
        self.lines.append(f"ok   {message}")


@dataclass(frozen=True)
class HistoricKey:
    """One of the IdP's signing keys and the period it signed in (open-ended when unknown:
    a key from the plain ``/jwks.json``)."""

    kid: str
    key: Key
    signed_from: float | None
    signed_until: float | None

    def covers(self, iat: float) -> bool:
        return (self.signed_from is None or iat >= self.signed_from) and (
            self.signed_until is None or iat <= self.signed_until
        )


@dataclass(frozen=True)
class TrustAnchor:
    """What the verifier trusts, given by whoever runs it and never read from a bundle: the
    IdP (issuer and the history of its keys), the portal's client id, and the role each
    signature needs (the portal's own signing rules)."""

    issuer: str
    client_id: str
    keys: tuple[HistoricKey, ...]
    rules: tuple[SigningRule, ...] = SIGNING_RULES


def load_key_history(document: dict[str, Any]) -> tuple[HistoricKey, ...]:
    """The keys of a JWK Set: the IdP's ``/jwks/history.json`` (each key with
    ``signed_from`` and, once superseded, ``signed_until``) or its plain ``/jwks.json``.

    Raises:
        ValueError: not a JWK Set of public keys with kids and readable periods.
    """
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        raise ValueError("not a JWK Set")
    loaded = []
    for entry in keys:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            raise ValueError("a key without a kid")
        jwk = {k: v for k, v in entry.items() if k not in ("signed_from", "signed_until")}
        try:
            key = import_key(jwk)
        except JoseError as exc:
            raise ValueError(f"key {entry['kid']} is not readable") from exc
        if key.is_private:
            raise ValueError("a private key in the key set")
        loaded.append(HistoricKey(entry["kid"], key, _moment(entry.get("signed_from")),
                                  _moment(entry.get("signed_until"))))  # fmt: skip
    return tuple(loaded)


def _moment(value: object) -> float | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("a period is not an RFC 3339 time")
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("a period without a time zone")
    return moment.timestamp()


def verify_archive(data: bytes, *, trust: TrustAnchor | None) -> Report:
    """Check one bundle, or an export of many (``bundles``), offline against ``trust``.

    Nothing in the file is trusted that the file itself could have made up: issuer, client,
    keys and roles come from ``trust``; the IdP's key set archived in a bundle is for the
    record only.
    """
    report = Report()
    if trust is None:
        # Keys found in the file prove nothing about who signed it: whoever made the file
        # could have made them too.
        report.fail("no trusted IdP keys: give --jwks FILE (the IdP's /jwks/history.json)")
        return report
    try:
        parsed = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (TypeError, ValueError) as exc:
        report.fail(f"not a readable bundle ({exc.__class__.__name__})")
        return report
    if isinstance(parsed, dict) and parsed.get("format") == EXPORT_FORMAT:
        bundles = parsed.get("bundles")
        if not isinstance(bundles, list):
            report.fail("not a readable export")
            return report
        report.good(f"export of {len(bundles)} bundle(s), {parsed.get('period')}")
        for bundle in bundles:
            _verify_one(report, bundle, trust)
        return report
    _verify_one(report, parsed, trust)
    return report


def verify_bundle(data: bytes, *, trust: TrustAnchor | None) -> Report:
    """Check one bundle offline (see ``verify_archive``)."""
    return verify_archive(data, trust=trust)


def _verify_one(report: Report, bundle: Any, trust: TrustAnchor) -> None:
    try:
        if not isinstance(bundle, dict) or bundle.get("format") != FORMAT:
            raise ValueError("format")
        content = bundle["document"]
        attachments, signatures = bundle["attachments"], bundle["signatures"]
        if not isinstance(content, dict) or not isinstance(signatures, list):
            raise TypeError("shape")
        if not all(isinstance(s, dict) for s in signatures):
            raise TypeError("shape")
    except (KeyError, TypeError, ValueError) as exc:
        report.fail(f"not a readable bundle ({exc.__class__.__name__})")
        return
    try:
        _check_bundle(report, bundle, content, attachments, signatures, trust)
    except (KeyError, TypeError, ValueError, AttributeError, JoseError) as exc:
        report.fail(f"malformed bundle ({exc.__class__.__name__})")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A key given twice reads one way to a person and another to a program: refused."""
    keys = [key for key, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("a key appears twice")
    return dict(pairs)


def _check_bundle(
    report: Report, bundle: dict[str, Any], content: dict[str, Any], attachments: Any,
    signatures: list[dict[str, Any]], trust: TrustAnchor,
) -> None:  # fmt: skip
    digest = document_sha256(content)
    number = content.get("number")
    if digest != bundle.get("document_sha256"):
        report.fail(f"{number}: document hash does not match the document")
    else:
        report.good(f"document {number} sha256 {digest}")
    _check_attachments(report, content, attachments)
    actions = [s.get("action") for s in signatures]
    expected = [rule.action for rule in trust.rules]
    # In order, each once: the claim, the check, the withdrawal and the payment approval.
    if not signatures or actions != expected[: len(actions)]:
        report.fail(f"{number}: unexpected, repeated or out-of-order signatures")
    elif len(actions) < len(expected):
        report.unsigned[str(number)] = missing = expected[len(actions) :]
        report.lines.append(f"part {number}: not signed yet by {', '.join(missing)}")
    rules = {rule.action: rule for rule in trust.rules}
    signers = []
    for signature in signatures:
        rule = rules.get(str(signature.get("action")))
        if rule is None:
            continue
        signer = _check_signature(report, signature, content, rule, trust)
        report.signatures[f"{number} {rule.action}"] = signer is not None
        if signer:
            signers.append(signer)
    # Separation of duties: one person gives at most one signature of a document, in person
    # or as someone's substitute.
    people = [person for signer in signers for person in signer]
    if len(set(people)) != len(people):
        report.fail(f"{number}: separation of duties: one person gave two signatures")


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


def _decode(token: str, trust: TrustAnchor) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify the IdP's signature with the key of the token's ``kid``, and that the key
    signed at the time the token says it was issued.

    Raises:
        UntrustedKeyError, JoseError, ValueError
    """
    header = jws.extract_compact(token.encode()).protected
    kid = header.get("kid")
    found = [k for k in trust.keys if k.kid == kid]
    if not found:
        raise UntrustedKeyError(f"signed by key {kid}, which is not in the IdP's key history")
    decoded = jwt.decode(token, found[0].key, algorithms=_ALGORITHMS)
    claims = dict(decoded.claims)
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or not found[0].covers(float(iat)):
        raise UntrustedKeyError(f"signed by key {kid} outside the period it signed in")
    return dict(decoded.header), claims


def _check_signature(
    report: Report, signature: dict[str, Any], content: dict[str, Any], rule: SigningRule,
    trust: TrustAnchor,
) -> tuple[str, ...] | None:  # fmt: skip
    """Report on one signature; return who gave it (the signer, and whom they acted for)."""
    action = f"{content.get('number')} {rule.action}"
    try:
        expected = build_authorization_details(content, rule.action)
        header, claims = _decode(str(signature["access_token"]), trust)
        _, id_claims = _decode(str(signature["id_token"]), trust)
        evidence = signature["evidence"]
        answer = verify_evidence(evidence)
        confirmed_at = datetime.fromisoformat(evidence["confirmed_at"]).timestamp()
    except UntrustedKeyError as exc:
        report.fail(f"{action}: {exc.detail}")
        return None
    except EvidenceInvalidError as exc:
        report.fail(f"{action}: {exc.detail}")
        return None
    except (KeyError, TypeError, ValueError, JoseError):
        report.fail(f"{action}: the IdP's signature on the token does not verify")
        return None
    # Archival: expiry does not matter, who issued it, for whom and what it confirmed does.
    checks = (
        ("typ", str(header.get("typ", "")).lower() == "at+jwt"),
        ("iss", claims.get("iss") == trust.issuer and id_claims.get("iss") == trust.issuer),
        ("binding", bound_to_token(evidence, claims)),
        ("txn", claims.get("txn") == evidence.get("txn") == id_claims.get("txn")),
        ("sub", claims.get("sub") == evidence.get("sub") == id_claims.get("sub")),
        ("acr", str(claims.get("acr", "")).endswith("/acr/aal2-softtoken-txn")),
        ("details", claims.get("authorization_details") == expected),
        ("evidence", evidence.get("authorization_details") == expected),
        ("fields", set(evidence) == set(EVIDENCE_FIELDS) and set(evidence["device"]) == {"jwk"}),
        ("confirmed_at", abs(confirmed_at - float(answer.get("iat", 0))) <= _CLOCK_SKEW),
    )
    problems = [name for name, good in checks if not good]
    if problems:
        report.fail(f"{action}: does not match the document ({', '.join(problems)})")
        return None
    # SECURITY: the client comes from the verifier's trust anchor, never from the bundle: a
    # confirmation made through another relying party is not a signature in this portal.
    if not (client_id_of(claims) == id_claims.get("aud") == trust.client_id
            and evidence.get("client_id") == trust.client_id):  # fmt: skip
        report.fail(f"{action}: confirmed through another client, not {trust.client_id}")
        return None
    # SECURITY: the role comes from the IdP's token of that day, checked against the signing
    # rules: a confirmation by someone without the role is not this signature.
    held = held_role(claims, id_claims, content, rule)
    if held is None:
        report.fail(f"{action}: {rule.requirement(content)} when signing")
        return None
    name = id_claims.get("name") or "(no name in the ID token)"
    acting = f" as substitute for {held['substitute_for']}" if held.get("substitute_for") else ""
    # RFC 9449 §6.1: a DPoP-bound token names the key of the client it was issued to; said
    # for the record (who held the token then), not checked (no key of the client is trusted).
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    bound = f"; token bound to key {jkt}" if isinstance(jkt, str) else ""
    report.good(
        f"{action} by {name} ({claims.get('sub')}){acting}, confirmed on the phone at"
        f" {evidence['confirmed_at']} (txn {evidence.get('txn')}; {rule.reason}{bound})"
    )
    return (str(claims.get("sub")), *([held["substitute_for"]] if acting else []))


def client_id_of(claims: dict[str, Any]) -> str | None:
    """RFC 9068 §2.2: the client the access token was issued to, named by ``client_id`` and
    being its one audience (RFC 7519 §4.1.3: never a substring match)."""
    aud, client = claims.get("aud"), claims.get("client_id")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    return client if isinstance(client, str) and audiences == [client] else None
